// End-to-end: Pipelines/smoke.yaml through the engine (run, rerun with nothing to do, one PGD
// epsilon changed), and dry-run planning of the default and paper pipelines without their data.
import Foundation
import Pipeline
import XCTest
@testable import Study

final class SmokeStudyTests: XCTestCase {
    /// The repository's Pipelines directory (found from this file's path).
    static var pipelines: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Pipelines")
    }

    static var registry: KindRegistry {
        var r = KindRegistry.builtin()
        StudyKinds.register(into: &r)
        return r
    }

    /// A temp directory holding a copy of smoke.yaml and its fixture data.
    func sandbox() throws -> URL {
        let dir = try Fixture.tempDir()
        let fm = FileManager.default
        try fm.createDirectory(at: dir.appendingPathComponent("data"), withIntermediateDirectories: true)
        try fm.copyItem(at: Self.pipelines.appendingPathComponent("smoke.yaml"), to: dir.appendingPathComponent("smoke.yaml"))
        try fm.copyItem(at: Self.pipelines.appendingPathComponent("data/smoke"), to: dir.appendingPathComponent("data/smoke"))
        return dir
    }

    func run(_ dir: URL) throws -> RunSummary {
        let spec = try PipelineSpec.load(path: dir.appendingPathComponent("smoke.yaml").path)
        let graph = try PipelineGraph(spec: spec, registry: Self.registry)
        let planner = Planner(graph: graph, store: ArtifactStore(root: dir.appendingPathComponent("store").path))
        var options = RunOptions()
        options.progress = .silent
        return try Scheduler(planner: planner, output: { _ in }).run(options)
    }

    func testSmokeStudyRunsCachesAndRerunsOnlyWhatAnEpsilonChangeAffects() throws {
        let dir = try sandbox()
        defer { try? FileManager.default.removeItem(at: dir) }

        // 1. Everything runs.
        let first = try run(dir)
        XCTAssertEqual(first.failed.map(\.name), [], "\(first.failed)")
        let all = Set(first.ran)
        XCTAssertEqual(all.count, first.plan.count)
        XCTAssertEqual(all.filter { $0.hasPrefix("pgd_") }.count, 2 * 2 * 3 * 3, "2 models x 2 eps x 3 layers x 3 attacks")
        for stage in ["base", "evalset", "triples", "monitor", "audit", "dissociated", "harmful", "behavior_dissociated",
                      "audit_dissociated", "lvs", "report"] {
            XCTAssertTrue(all.contains(stage), "\(stage) did not run")
        }
        let reportDir = try XCTUnwrap(Self.outputDir(of: "report", in: dir))
        let html = try String(contentsOf: reportDir.appendingPathComponent("report.html"), encoding: .utf8)
        XCTAssertTrue(html.contains("<svg"), "report has no SVG figure")
        let table = try String(contentsOf: reportDir.appendingPathComponent("lvs_table.md"), encoding: .utf8)
        XCTAssertTrue(table.contains("dissociated") && table.contains("base"), table)

        // 2. A second run executes nothing.
        let second = try run(dir)
        XCTAssertEqual(second.ran, [])
        XCTAssertEqual(second.fresh, first.plan.count)

        // 3. One epsilon changed: only the PGD instances with it, LVS and the report rerun.
        let yamlURL = dir.appendingPathComponent("smoke.yaml")
        let yaml = try String(contentsOf: yamlURL, encoding: .utf8)
        let edited = yaml.replacingOccurrences(of: "epsilons: [0.05, 0.2]", with: "epsilons: [0.05, 0.3]")
        XCTAssertNotEqual(edited, yaml, "smoke.yaml no longer has the epsilons line this test edits")
        try Data(edited.utf8).write(to: yamlURL)
        let third = try run(dir)
        XCTAssertEqual(third.failed.map(\.name), [])
        let reran = Set(third.ran).union(third.cutoff)
        let changedPGD = reran.filter { $0.hasPrefix("pgd_") }
        XCTAssertEqual(changedPGD.count, 2 * 3 * 3, "\(changedPGD.sorted())")
        XCTAssertTrue(changedPGD.allSatisfy { $0.contains("epsilon=0.3") }, "\(changedPGD.sorted())")
        XCTAssertEqual(reran.subtracting(changedPGD), ["lvs", "report"])
        XCTAssertEqual(third.fresh, first.plan.count - reran.count)
    }

    /// The output directory of a stage's current object (from the store's refs).
    static func outputDir(of instance: String, in dir: URL) throws -> URL? {
        let spec = try PipelineSpec.load(path: dir.appendingPathComponent("smoke.yaml").path)
        let graph = try PipelineGraph(spec: spec, registry: registry)
        let planner = Planner(graph: graph, store: ArtifactStore(root: dir.appendingPathComponent("store").path))
        let statuses = try planner.status()
        guard let key = statuses.first(where: { $0.name == instance })?.key else { return nil }
        let out = dir.appendingPathComponent("store/objects/\(key.prefix(2))/\(key)/out")
        return FileManager.default.fileExists(atPath: out.path) ? out : nil
    }
}
