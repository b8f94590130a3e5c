import Foundation
import Pipeline
@testable import Study

/// Runs a stage kind directly with a hand-built context (no store), for the stage tests.
enum StageHarness {
    /// Runs `kind` with `params` and `inputs`; returns the output directory.
    @discardableResult
    static func run(_ kind: any StageKind, params: [String: Value], inputs: [String: [URL]], in dir: URL,
                    name: String = "stage", seed: Int = 0) throws -> URL {
        let out = dir.appendingPathComponent("\(name)/out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let context = StageContext(instanceName: name, stageName: name, matrix: [:], params: StageParams(params, instance: name),
                                   seed: seed, outputDirectory: out, workingDirectory: dir,
                                   logger: StageLogger(path: dir.appendingPathComponent("\(name).log").path), inputs: inputs.mapValues { $0.map { InputArtifact(url: $0, instance: nil, matrix: [:]) } },
                                   progressSink: .silent)
        try kind.run(context)
        if case let .fixed(files) = kind.outputs {
            for f in files where !FileManager.default.fileExists(atPath: out.appendingPathComponent(f).path) {
                throw StudyError.invalidConfiguration("\(kind.name) did not write \(f)")
            }
        }
        // lineage.json next to out/, as the store writes it.
        let lineage: Value = .map(["stage": .string(name), "instance": .string(name), "kind": .string(kind.name), "key": .string("key-\(name)"),
                                   "params": .map(params)])
        try Data(lineage.prettyJSON.utf8).write(to: dir.appendingPathComponent("\(name)/lineage.json"))
        return out
    }
}
