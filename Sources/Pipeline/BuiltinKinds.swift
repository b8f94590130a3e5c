// The built-in stage kind `shell`: an external command as a pipeline stage.
import Foundation

/// Runs `cmd` with `/bin/sh -c` in the pipeline's directory.
public struct ShellKind: StageKind {
    public init() {}
    public var name: String { "shell" }
    public var version: String { "1" }
    public static let kindDescription = """
        Runs `cmd` with `/bin/sh -c` in the pipeline file's directory. Every other param is exported as \
        `AUDITGAP_PARAM_<NAME>` (upper-cased, non-alphanumerics to `_`; strings as-is, other values as JSON) \
        and can be interpolated into `cmd` as arguments; the output directory is `AUDITGAP_OUT`, and \
        `AUDITGAP_SEED` and `AUDITGAP_INSTANCE` are set too. Standard output and error go to the stage log. \
        The files listed under the stage's `outputs:` must all exist when the command succeeds; files the \
        command reads without declaring them as inputs are not tracked.
        """
    public static let inputsDescription = "Each input's paths are in `AUDITGAP_IN_<NAME>`, one per line for a fan-in."
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
