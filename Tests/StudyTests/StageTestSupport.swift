// Helpers for stage-kind tests: a temporary pipeline directory and store, runs through the real
// engine with the study kinds registered, and the shared tiny model.
import Foundation
import XCTest
import Pipeline
@testable import Study

/// A temp directory with a pipeline file and a store, removed at deinit.
final class StageSandbox: @unchecked Sendable {
    let dir: URL
    var store: String { dir.appendingPathComponent("Artifacts").path }

    init() {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("studystages-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: dir) }

    static var registry: KindRegistry { StudyKinds.registry() }

    /// Writes `text` to `name` inside the sandbox; returns its path.
    @discardableResult
    func write(_ name: String, _ text: String) throws -> URL {
        let url = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
        return url
    }

    /// Runs `yaml` as pipeline.yaml; fails the test with the failure messages when a stage fails.
    @discardableResult
    func run(_ yaml: String, file: StaticString = #filePath, line: UInt = #line) throws -> RunSummary {
        try write("pipeline.yaml", yaml)
        let graph = try PipelineGraph(spec: PipelineSpec.load(path: dir.appendingPathComponent("pipeline.yaml").path),
                                      registry: Self.registry)
        let scheduler = Scheduler(planner: Planner(graph: graph, store: ArtifactStore(root: store)), output: { _ in })
        var options = RunOptions()
        options.progress = .silent
        let summary = try scheduler.run(options)
        if !summary.failed.isEmpty {
            XCTFail("stages failed: \(summary.failed.map { "\($0.name): \($0.message)" })", file: file, line: line)
        }
        return summary
    }

    /// The error reading `yaml` as pipeline.yaml gives before anything runs (the kinds'
    /// plan-time checks), or "" when it reads.
    func planError(_ yaml: String) throws -> String {
        try write("pipeline.yaml", yaml)
        do {
            _ = try PipelineGraph(spec: PipelineSpec.load(path: dir.appendingPathComponent("pipeline.yaml").path), registry: Self.registry)
            return ""
        } catch let e as PipelineError {
            return e.description
        }
    }

    /// Runs `yaml` expecting `stage` to fail; returns its message.
    func runFailing(_ yaml: String, stage: String) throws -> String {
        try write("pipeline.yaml", yaml)
        let graph = try PipelineGraph(spec: PipelineSpec.load(path: dir.appendingPathComponent("pipeline.yaml").path),
                                      registry: Self.registry)
        let scheduler = Scheduler(planner: Planner(graph: graph, store: ArtifactStore(root: store)), output: { _ in })
        var options = RunOptions()
        options.progress = .silent
        options.keepGoing = true
        let summary = try scheduler.run(options)
        return summary.failed.first { $0.name == stage }?.message ?? ""
    }

    /// The output directory of a stage instance of the last-run pipeline.
    func output(_ instance: String) throws -> URL {
        let graph = try PipelineGraph(spec: PipelineSpec.load(path: dir.appendingPathComponent("pipeline.yaml").path),
                                      registry: Self.registry)
        let st = try Planner(graph: graph, store: ArtifactStore(root: store)).status()
        let key = try XCTUnwrap(st.first { $0.name == instance }?.key, "no instance \(instance)")
        return URL(fileURLWithPath: ArtifactStore(root: store).outputDir(key))
    }

    /// Text of a stage's output file.
    func text(_ instance: String, _ file: String) throws -> String {
        try String(contentsOf: try output(instance).appendingPathComponent(file), encoding: .utf8)
    }

    /// Parsed JSON object of a stage's output file.
    func json(_ instance: String, _ file: String) throws -> [String: Any] {
        let data = try Data(contentsOf: try output(instance).appendingPathComponent(file))
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// JSONL objects of a stage's output file.
    func rows(_ instance: String, _ file: String) throws -> [[String: Any]] {
        try text(instance, file).split(separator: "\n").map {
            try XCTUnwrap(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }
}

/// One tiny model directory shared by the tests of a process (written once).
enum SharedTinyModel {
    nonisolated(unsafe) private static var cached: [String: URL] = [:]
    private static let lock = NSLock()

    /// A tiny model of `architecture` (hidden 32, 2 layers).
    static func url(_ architecture: String = "llama") throws -> URL {
        lock.lock()
        defer { lock.unlock() }
        if let u = cached[architecture] { return u }
        var o = TinyModelOptions()
        o.architecture = .init(rawValue: architecture) ?? .llama
        o.seed = 7
        let u = try TinyModelFactory.temporary(o, name: "shared-\(architecture)")
        if cached.isEmpty { atexit { SharedTinyModel.removeAll() } }
        cached[architecture] = u
        return u
    }

    /// Deletes the shared model directories (at process exit).
    static func removeAll() {
        lock.lock()
        defer { lock.unlock() }
        for u in cached.values { try? FileManager.default.removeItem(at: u) }
        cached = [:]
    }
}
