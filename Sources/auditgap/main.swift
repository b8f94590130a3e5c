// The auditgap command-line entry point: dispatches to subcommands (DESIGN.md section 2).
import Foundation
import Numerics

let usage = """
auditgap: audit what a language model is, not only what it says.

usage:
  \(ModelCommand.usage)
  \(BenchCommand.usage)
\(PipelineCommands.usageLines)
  \(KindsCommand.usage)

exit codes: 0 success, 1 a stage or check failed, 2 bad usage or bad input
"""

func main() -> Int32 {
    let argv = Array(CommandLine.arguments.dropFirst())
    guard let command = argv.first else {
        print(usage)
        return 2
    }
    let rest = Array(argv.dropFirst())
    do {
        switch command {
        case "bench" where rest.first == "pipeline": return try PipelineBench.run(Array(rest.dropFirst()))
        case "bench": return try BenchCommand.run(rest)
        case "model": return try ModelCommand.run(rest)
        case "kinds": return try KindsCommand.run(rest)
        case "run", "status", "dag", "show", "verify", "gc", "export", "import":
            return try PipelineCommands.dispatch(command, rest)
        case "-h", "--help", "help":
            print(usage)
            return 0
        default:
            throw UsageError("unknown command '\(command)'")
        }
    } catch let error as UsageError {
        FileHandle.standardError.write(Data("error: \(error.description)\n\(usage)\n".utf8))
        return 2
    } catch {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        return 1
    }
}

/// Restarts the process once with OPENBLAS_CORETYPE set when OpenBLAS fell back to generic
/// kernels on a vector CPU (`BLASCore`); a set OPENBLAS_CORETYPE is left alone.
func restartWithVectorBLASKernelsIfNeeded() {
    guard ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil,
          let core = BLASCore.overrideForThisMachine() else { return }
    setenv("OPENBLAS_CORETYPE", core, 1)
    // The binary's own path rather than /proc/self/exe, so the process keeps its name.
    let path = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? "/proc/self/exe"
    execv(path, CommandLine.unsafeArgv)
    // execv returned: it failed; go on with the kernels OpenBLAS chose.
}

restartWithVectorBLASKernelsIfNeeded()
exit(main())
