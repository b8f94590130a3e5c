import XCTest
@testable import Study

final class StudyModuleTests: XCTestCase {
    func testModuleLinks() { XCTAssertTrue(true) }
}
