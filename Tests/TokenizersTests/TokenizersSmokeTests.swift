import XCTest
@testable import Tokenizers

final class TokenizersModuleTests: XCTestCase {
    func testModuleLinks() { XCTAssertTrue(true) }
}
