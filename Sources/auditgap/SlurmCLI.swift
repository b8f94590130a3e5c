// The `--executor slurm` options of `auditgap run` (`--slurm-*`, `--detach`), parsed into SlurmOptions.
import Foundation
import Pipeline

enum SlurmCLI {
    static let valued: Set<String> = ["--slurm-partition", "--slurm-account", "--slurm-time", "--slurm-mem", "--slurm-cpus",
                                      "--slurm-gres", "--slurm-arg", "--slurm-poll", "--slurm-probe-timeout"]
    static let flags: Set<String> = ["--detach", "--slurm-no-probe"]

    /// The Slurm options, or nil for the local executor (where any Slurm option is a usage error).
    static func options(_ args: Arguments, enabled: Bool) throws -> SlurmOptions? {
        guard enabled else {
            let given = valued.filter { args.value($0) != nil } + flags.filter { args.flag($0) }
            if let first = given.sorted().first { throw UsageError("\(first) needs --executor slurm") }
            return nil
        }
        var o = SlurmOptions(executable: executablePath())
        func check(_ name: String, _ problem: String?) throws {
            if let problem { throw UsageError("\(name): \(problem)") }
        }
        var d = SlurmResources()
        if let v = args.value("--slurm-partition") { try check("--slurm-partition", SlurmResources.nameProblem(v, what: "partition")); d.partition = v }
        if let v = args.value("--slurm-account") { try check("--slurm-account", SlurmResources.nameProblem(v, what: "account")); d.account = v }
        if let v = args.value("--slurm-time") { try check("--slurm-time", SlurmResources.timeProblem(v)); d.time = v }
        if let v = args.value("--slurm-mem") { try check("--slurm-mem", SlurmResources.memoryProblem(v)); d.mem = v }
        if let v = args.value("--slurm-gres") { try check("--slurm-gres", SlurmResources.gresProblem(v)); d.gres = v }
        if let v = try args.int("--slurm-cpus") {
            guard v > 0 else { throw UsageError("--slurm-cpus needs a positive integer, got \(v)") }
            d.cpus = v
        }
        for a in args.values("--slurm-arg") { try check("--slurm-arg", SlurmResources.sbatchArgProblem(a)); d.sbatchArgs.append(a) }
        o.defaults = d
        o.detach = args.flag("--detach")
        o.probe = !args.flag("--slurm-no-probe")
        if let v = args.value("--slurm-poll") {
            guard let x = Double(v), x > 0 else { throw UsageError("--slurm-poll needs a positive number of seconds, got '\(v)'") }
            o.pollInterval = x
        }
        if let v = args.value("--slurm-probe-timeout") {
            guard let x = Double(v), x > 0 else { throw UsageError("--slurm-probe-timeout needs a positive number of seconds, got '\(v)'") }
            o.probeTimeout = x
        }
        return o
    }

    /// The running auditgap binary (what the jobs run on the compute nodes).
    static func executablePath() -> String {
        if let p = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return p }
        return Bundle.main.executablePath ?? CommandLine.arguments[0]
    }
}
