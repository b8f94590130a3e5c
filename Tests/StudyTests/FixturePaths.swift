import Foundation
import XCTest

/// Paths of the committed StudyTests fixtures.
enum Fixture {
    /// The Fixtures directory copied into the test bundle.
    static var directory: URL {
        get throws {
            let base = try XCTUnwrap(Bundle.module.resourceURL, "test bundle has no resources")
            return base.appendingPathComponent("Fixtures")
        }
    }

    /// `Fixtures/data/<name>` as a path.
    static func data(_ name: String) throws -> String {
        try directory.appendingPathComponent("data").appendingPathComponent(name).path
    }

    /// `Fixtures/<name>` as a path.
    static func path(_ name: String) throws -> String {
        try directory.appendingPathComponent(name).path
    }

    /// A fresh temporary directory.
    static func tempDir() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("studytests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
