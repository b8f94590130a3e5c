// Built-in stage kinds: `shell` (an external command) and small test kinds.
import Foundation

/// Runs `cmd` with `/bin/sh -c` in the pipeline's directory.
///
/// Environment: `AUDITGAP_OUT` (output directory), `AUDITGAP_IN_<NAME>` (input paths, one per
/// line), `AUDITGAP_PARAM_<NAME>` (every other param; strings as-is, others as JSON),
/// `AUDITGAP_SEED`, `AUDITGAP_INSTANCE`. Standard output and error go to the stage log.
public struct ShellKind: StageKind {
    public init() {}
    public var name: String { "shell" }
    public var version: String { "1" }
    public var paramsSchema: ParamsSchema {
        ParamsSchema([ParamSpec("cmd", .string, required: true, doc: "command for /bin/sh -c")], allowsExtra: true)
    }
    public var outputs: OutputsDeclaration { .declaredByStage }

    /// `NAME` -> `NAME` upper-cased with every non-alphanumeric character replaced by `_`.
    public static func envName(_ name: String) -> String {
        String(name.uppercased().unicodeScalars.map { CharacterSet.alphanumerics.contains($0) && $0.isASCII ? Character($0) : "_" })
    }

    public func run(_ context: StageContext) throws {
        let cmd = try context.params.string("cmd")
        var env = ProcessInfo.processInfo.environment
        env["AUDITGAP_OUT"] = context.outputDirectory.path
        env["AUDITGAP_SEED"] = String(context.seed)
        env["AUDITGAP_INSTANCE"] = context.instanceName
        for (k, v) in context.params.values where k != "cmd" {
            env["AUDITGAP_PARAM_" + Self.envName(k)] = v.description
        }
        for (k, urls) in context.inputMap {
            env["AUDITGAP_IN_" + Self.envName(k)] = urls.map(\.path).joined(separator: "\n")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", cmd]
        process.environment = env
        process.currentDirectoryURL = context.workingDirectory
        if let h = context.logger.fileHandle {
            process.standardOutput = h
            process.standardError = h
        }
        process.standardInput = FileHandle.nullDevice
        context.log("$ \(cmd)")
        do { try process.run() } catch {
            throw PipelineError.stageFailed(instance: context.instanceName, message: "cannot start /bin/sh: \(error)",
                                            log: context.logger.path)
        }
        process.waitUntilExit()
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            let how = process.terminationReason == .exit ? "exited with status \(process.terminationStatus)"
                                                         : "was killed by signal \(process.terminationStatus)"
            throw PipelineError.stageFailed(instance: context.instanceName, message: "command \(how)",
                                            log: context.logger.path)
        }
    }
}

/// Small in-process kinds for tests and benchmarks.
public enum TestKinds {
    public static let all: [any StageKind] = [Echo(), Concat(), Fail(), Loop()]

    /// `test.echo`: writes `value` (any param value) as JSON to `value.json`.
    public struct Echo: StageKind {
        public var name: String { "test.echo" }
        public var version: String { "1" }
        public var paramsSchema: ParamsSchema { ParamsSchema([ParamSpec("value", .any, required: true)]) }
        public var outputs: OutputsDeclaration { .fixed(["value.json"]) }
        public func run(_ context: StageContext) throws {
            try Data(try context.params.value("value").canonicalJSON.utf8).write(to: context.output("value.json"))
        }
    }

    /// `test.concat`: concatenates every input file (directories: their files in path order) into `out.txt`.
    public struct Concat: StageKind {
        public var name: String { "test.concat" }
        public var version: String { "1" }
        public var paramsSchema: ParamsSchema { ParamsSchema([ParamSpec("prefix", .string, default: .string(""))]) }
        public var outputs: OutputsDeclaration { .fixed(["out.txt"]) }
        public func run(_ context: StageContext) throws {
            var out = Data(try context.params.string("prefix").utf8)
            for name in context.inputNames {
                for url in try context.inputs(name) {
                    for file in FileTree.files(under: url) where !file.hasSuffix("metrics.json") {
                        out.append(FileManager.default.contents(atPath: file) ?? Data())
                    }
                }
            }
            try out.write(to: context.output("out.txt"))
        }
    }

    /// `test.fail`: always fails with `message`.
    public struct Fail: StageKind {
        public var name: String { "test.fail" }
        public var version: String { "1" }
        public var paramsSchema: ParamsSchema { ParamsSchema([ParamSpec("message", .string, default: .string("failed on purpose"))]) }
        public var outputs: OutputsDeclaration { .fixed([]) }
        public func run(_ context: StageContext) throws {
            throw PipelineError.stageFailed(instance: context.instanceName, message: try context.params.string("message"),
                                            log: context.logger.path)
        }
    }

    /// `test.loop`: counts to `steps` with a progress reporter and writes the count to `count.txt`.
    public struct Loop: StageKind {
        public var name: String { "test.loop" }
        public var version: String { "1" }
        public var paramsSchema: ParamsSchema { ParamsSchema([ParamSpec("steps", .int, default: .int(10))]) }
        public var outputs: OutputsDeclaration { .fixed(["count.txt"]) }
        public func run(_ context: StageContext) throws {
            let steps = try context.params.int("steps")
            let p = context.progress("loop", total: steps)
            for _ in 0..<steps { p.advance() }
            p.finish()
            try Data(String(steps).utf8).write(to: context.output("count.txt"))
        }
    }
}
