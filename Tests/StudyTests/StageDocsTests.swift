// docs/stages.md is the output of `auditgap kinds --markdown`, and every kind documents itself.
import Foundation
import XCTest
import Pipeline
import Study

final class StageDocsTests: XCTestCase {
    /// The repository's docs/stages.md, found from this file's path.
    static var stagesDoc: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/stages.md")
    }

    static let regenerate = "run: .build/debug/auditgap kinds --markdown > docs/stages.md"

    /// The committed docs/stages.md equals the reference rendered from the registry.
    func testStagesDocMatchesTheRegistry() throws {
        let expected = KindReference.markdown(StudyKinds.registry())
        let committed = (try? String(contentsOf: Self.stagesDoc, encoding: .utf8)) ?? ""
        guard committed != expected else { return }
        XCTFail("docs/stages.md differs from `auditgap kinds --markdown`; \(Self.regenerate)\n"
                + Self.unifiedDiff(committed: committed, expected: expected))
    }

    /// Every kind has a description; kinds that accept any input names say which they read.
    func testEveryKindDescribesItselfAndItsInputs() {
        for kind in StudyKinds.registry().all {
            XCTAssertFalse(type(of: kind).kindDescription.isEmpty, "\(kind.name) has no kindDescription")
            if case .any = kind.inputs {
                XCTAssertFalse(type(of: kind).inputsDescription.isEmpty, "\(kind.name) accepts any inputs but has no inputsDescription")
            }
        }
    }

    /// The production registry holds the real kinds only.
    func testRegistryHasNoTestKinds() {
        let names = StudyKinds.registry().names
        XCTAssertTrue(names.contains("shell"), "\(names)")
        XCTAssertEqual(names.filter { $0.hasPrefix("test.") }, [])
    }

    /// A unified diff of the committed file against the expected text (`diff -u` when
    /// available, else the first differing line).
    static func unifiedDiff(committed: String, expected: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("stages-doc-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = dir.appendingPathComponent("stages.md.committed"), b = dir.appendingPathComponent("stages.md.generated")
        if (try? Data(committed.utf8).write(to: a)) != nil, (try? Data(expected.utf8).write(to: b)) != nil,
           FileManager.default.isExecutableFile(atPath: "/usr/bin/diff") {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/diff")
            p.arguments = ["-u", a.path, b.path]
            let pipe = Pipe()
            p.standardOutput = pipe
            if (try? p.run()) != nil {
                let out = pipe.fileHandleForReading.readDataToEndOfFile()
                p.waitUntilExit()
                return String(decoding: out, as: UTF8.self)
            }
        }
        let x = committed.components(separatedBy: "\n"), y = expected.components(separatedBy: "\n")
        let i = (0..<min(x.count, y.count)).first { x[$0] != y[$0] } ?? min(x.count, y.count)
        return "first difference at line \(i + 1):\n- \(i < x.count ? x[i] : "(end of file)")\n+ \(i < y.count ? y[i] : "(end of file)")"
    }
}
