import Foundation
import XCTest

/// Locates committed fixture files in the test bundle.
enum Fixtures {
    static func url(_ relative: String) throws -> URL {
        guard let base = Bundle.module.resourceURL?.appendingPathComponent("Fixtures") else {
            throw XCTSkip("no resource bundle")
        }
        return base.appendingPathComponent(relative)
    }

    static func json(_ relative: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(contentsOf: url(relative)))
    }
}
