// Helpers for pipeline tests: temp directories, loading specs, running, capturing output.
import Foundation
import XCTest
@testable import Pipeline

/// A temp directory with a pipeline file and a store, removed at deinit.
final class Sandbox: @unchecked Sendable {
    let dir: String
    var store: String { dir + "/Artifacts" }
    var pipeline: String { dir + "/pipeline.yaml" }

    init() {
        dir = NSTemporaryDirectory() + "auditgap-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: dir) }

    func write(_ name: String, _ text: String) {
        let path = dir + "/" + name
        try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try? Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    func read(_ name: String) -> String? {
        FileManager.default.contents(atPath: dir + "/" + name).map { String(decoding: $0, as: UTF8.self) }
    }

    func graph(_ yaml: String? = nil, registry: KindRegistry = .testing) throws -> PipelineGraph {
        if let yaml { write("pipeline.yaml", yaml) }
        return try PipelineGraph(spec: PipelineSpec.load(path: pipeline), registry: registry)
    }

    func planner(_ yaml: String? = nil, registry: KindRegistry = .testing) throws -> Planner {
        Planner(graph: try graph(yaml, registry: registry), store: ArtifactStore(root: store))
    }

    /// Runs the pipeline in-process; returns the summary and the printed lines.
    @discardableResult
    func run(_ yaml: String? = nil, registry: KindRegistry = .testing, _ configure: (inout RunOptions) -> Void = { _ in })
        throws -> (summary: RunSummary, lines: [String]) {
        let lines = LineCollector()
        let scheduler = Scheduler(planner: try planner(yaml, registry: registry), output: { lines.append($0) })
        var options = RunOptions()
        options.progress = .silent
        configure(&options)
        return (try scheduler.run(options), lines.lines)
    }

    func status(_ yaml: String? = nil, registry: KindRegistry = .testing) throws -> [String: InstanceStatus] {
        let s = try planner(yaml, registry: registry).status()
        return Dictionary(uniqueKeysWithValues: s.map { ($0.name, $0) })
    }
}

/// Collects output lines from worker threads.
final class LineCollector: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var storage: [String] = []
    func append(_ s: String) { lock.lock(); storage.append(s); lock.unlock() }
    var lines: [String] { lock.lock(); defer { lock.unlock() }; return storage }
}

/// The built `auditgap` executable next to the test bundle, if built.
func auditgapBinary() throws -> String {
    var candidates: [String] = []
    if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
        var d = (exe as NSString).deletingLastPathComponent
        for _ in 0..<4 {
            candidates.append(d + "/auditgap")
            d = (d as NSString).deletingLastPathComponent
        }
    }
    candidates.append(Bundle.main.bundlePath + "/auditgap")
    candidates.append(FileManager.default.currentDirectoryPath + "/.build/debug/auditgap")
    for c in candidates where FileManager.default.isExecutableFile(atPath: c) { return c }
    throw XCTSkip("auditgap executable not built next to the tests (run `swift build` first); looked in \(candidates)")
}

/// Starts the binary; output goes to files in `dir`.
func launch(_ exe: String, _ args: [String], cwd: String, log: String) throws -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = args
    p.currentDirectoryURL = URL(fileURLWithPath: cwd)
    FileManager.default.createFile(atPath: log, contents: nil)
    let h = FileHandle(forWritingAtPath: log)
    p.standardOutput = h
    p.standardError = h
    try p.run()
    return p
}
