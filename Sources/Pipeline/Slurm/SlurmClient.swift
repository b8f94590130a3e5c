// Runs Slurm's command-line tools (sbatch, squeue, scontrol, sacct, scancel) and parses their output.
import Foundation

/// The state of one Slurm job or array task as the tools report it.
public struct SlurmJobState: Sendable, Equatable {
    /// `PENDING`, `RUNNING`, `COMPLETED`, `FAILED`, `CANCELLED`, `TIMEOUT`, ...
    public var state: String
    /// squeue's reason (`Dependency`, `Resources`, `DependencyNeverSatisfied`, ...), if any.
    public var reason: String?

    /// Whether the job has left the queue for good.
    public var isTerminal: Bool { SlurmJobState.terminal.contains(state) }
    static let terminal: Set<String> = ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED",
                                        "BOOT_FAIL", "DEADLINE", "REVOKED", "SPECIAL_EXIT", "UNKNOWN"]
    /// The word `auditgap status` shows: queued, running, or the lower-cased Slurm state.
    public var statusWord: String {
        switch state {
        case "PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "RESV_DEL_HOLD", "SUSPENDED": return "queued"
        case "RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING": return "running"
        default: return state.lowercased()
        }
    }
}

/// The Slurm command-line tools found on PATH.
public struct SlurmClient: Sendable {
    public let sbatch: String
    let squeue: String?
    let scontrol: String?
    let scancel: String?
    let sacct: String?
    /// Seconds before a hung Slurm command is killed.
    var commandTimeout: Double = 60

    /// Finds the tools on `PATH`; a missing `sbatch` is an error naming what to do.
    public static func locate(path: String? = ProcessInfo.processInfo.environment["PATH"]) throws -> SlurmClient {
        let dirs = (path ?? "").split(separator: ":").map(String.init).filter { !$0.isEmpty }
        func find(_ tool: String) -> String? {
            dirs.lazy.map { $0 + "/" + tool }.first { FileManager.default.isExecutableFile(atPath: $0) }
        }
        guard let sbatch = find("sbatch") else {
            throw PipelineError.cluster("sbatch not found on PATH (\(path ?? "unset")); --executor slurm needs Slurm's client tools "
                                        + "(run on a login node of the cluster, or install slurm-client and point it at the cluster)")
        }
        guard let squeue = find("squeue") else {
            throw PipelineError.cluster("squeue not found on PATH next to sbatch (\(sbatch)); the submitter needs it to follow its jobs")
        }
        return SlurmClient(sbatch: sbatch, squeue: squeue, scontrol: find("scontrol"), scancel: find("scancel"), sacct: find("sacct"))
    }

    /// Whether Slurm's tools can be found (without failing).
    public static var available: Bool { (try? locate()) != nil }

    /// Output of one command.
    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
        var message: String {
            let e = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            return e.isEmpty ? stdout.trimmingCharacters(in: .whitespacesAndNewlines) : e
        }
    }

    /// Runs a tool and collects its output; kills it after `commandTimeout` seconds.
    func execute(_ tool: String, _ args: [String]) throws -> Output {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch {
            throw PipelineError.cluster("cannot run \(tool): \(error)")
        }
        // Both pipes are drained concurrently so a chatty tool cannot block on a full pipe.
        let box = OutputBox()
        let group = DispatchGroup()
        for (pipe, isOut) in [(out, true), (err, false)] {
            group.enter()
            DispatchQueue.global().async {
                let d = pipe.fileHandleForReading.readDataToEndOfFile()
                box.set(d, isOut: isOut)
                group.leave()
            }
        }
        let timeout = commandTimeout
        let timer = DispatchWorkItem { if p.isRunning { p.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: timer)
        p.waitUntilExit()
        timer.cancel()
        group.wait()
        let (o, e) = box.get()
        if p.terminationReason == .uncaughtSignal {
            throw PipelineError.cluster("\((tool as NSString).lastPathComponent) \(args.joined(separator: " ")) did not finish within \(Int(timeout)) s (killed)")
        }
        return Output(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    /// Submits a batch script; returns the job id. A rejection throws with Slurm's own message.
    func submit(script: String, options: [String], what: String, arguments: [String]) throws -> String {
        let r = try execute(sbatch, ["--parsable"] + options + [script] + arguments)
        guard r.status == 0 else {
            throw PipelineError.cluster("Slurm rejected the submission of \(what): \(r.message)\n  sbatch \((options + [script]).joined(separator: " "))")
        }
        // --parsable prints "jobid" or "jobid;cluster".
        let id = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ";").first.map(String.init) ?? ""
        guard !id.isEmpty, id.allSatisfy(\.isNumber) else {
            throw PipelineError.cluster("sbatch accepted \(what) but printed no job id: '\(r.stdout)' \(r.stderr)")
        }
        return id
    }

    /// States of the given jobs (array tasks expanded, keys `id` or `id_task`) that are still known
    /// to the controller; jobs that have left it are absent. nil when squeue itself failed.
    func queueStates(_ jobIDs: [String]) -> [String: SlurmJobState]? {
        guard let squeue, !jobIDs.isEmpty else { return [:] }
        guard let r = try? execute(squeue, ["-h", "-r", "--states=all", "-j", jobIDs.joined(separator: ","), "-o", "%i|%T|%r"]) else { return nil }
        if r.status != 0 {
            // Every id unknown (purged after MinJobAge) is reported as an error by squeue.
            return r.message.contains("Invalid job id") ? [:] : nil
        }
        var out: [String: SlurmJobState] = [:]
        for line in r.stdout.split(separator: "\n") {
            let f = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            guard f.count >= 2 else { continue }
            let reason = f.count > 2 && f[2] != "None" && !f[2].isEmpty ? f[2] : nil
            out[f[0]] = SlurmJobState(state: f[1].split(separator: " ").first.map(String.init) ?? f[1], reason: reason)
        }
        return out
    }

    /// The exit code (`N:signal` as Slurm prints it) and state of a job or task from `scontrol show job`, or
    /// from `sacct` when the controller has forgotten it and accounting is enabled.
    func exitCode(_ id: String) -> (state: String?, exitCode: String?) {
        if let scontrol, let r = try? execute(scontrol, ["show", "job", "-o", id]), r.status == 0 {
            var state: String?, code: String?
            for field in r.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
                if field.hasPrefix("JobState=") { state = String(field.dropFirst(9)) }
                if field.hasPrefix("ExitCode=") { code = String(field.dropFirst(9)) }
            }
            if state != nil { return (state, code) }
        }
        if let sacct, let r = try? execute(sacct, ["-n", "-P", "-X", "-j", id, "-o", "JobID,State,ExitCode"]), r.status == 0 {
            for line in r.stdout.split(separator: "\n") {
                let f = line.split(separator: "|").map(String.init)
                if f.count == 3, f[0] == id { return (f[1].split(separator: " ").first.map(String.init), f[2]) }
            }
        }
        return (nil, nil)
    }

    /// Cancels jobs (only their queued tasks when `pendingOnly`); returns Slurm's message when scancel failed.
    @discardableResult
    func cancel(_ jobIDs: [String], pendingOnly: Bool = false) -> String? {
        guard !jobIDs.isEmpty else { return nil }
        guard let scancel else { return "scancel not found on PATH; cancel by hand: scancel \(jobIDs.joined(separator: " "))" }
        guard let r = try? execute(scancel, (pendingOnly ? ["--state=PENDING"] : []) + jobIDs) else { return "scancel did not run" }
        return r.status == 0 ? nil : r.message
    }
}

/// Collects a process's two output streams from two reader threads.
private final class OutputBox: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var out = Data(), err = Data()
    func set(_ d: Data, isOut: Bool) { lock.lock(); if isOut { out = d } else { err = d }; lock.unlock() }
    func get() -> (Data, Data) { lock.lock(); defer { lock.unlock() }; return (out, err) }
}
