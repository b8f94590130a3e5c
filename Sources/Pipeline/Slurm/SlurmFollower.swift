// Follows submitted Slurm jobs: one line per state change, failures with job id, state, exit code
// and log, scancel on interrupt, job records in the store kept current.
import Foundation

/// Polls squeue (falling back to the jobs' exit files, scontrol and sacct) until every task ends.
final class SlurmFollower {
    let client: SlurmClient
    let store: ArtifactStore
    var record: SlurmRunRecord
    let pollInterval: Double
    /// Keep independent branches running after a failure (else queued jobs are cancelled).
    let keepGoing: Bool
    let emit: @Sendable (String) -> Void
    /// Set after the first failure when not `keepGoing`: queued jobs were cancelled.
    private var stopping = false
    static let stoppedReason = "run stopped after a failure"
    /// Consecutive polls a task was missing from squeue's answer.
    private var misses: [String: Int] = [:]

    init(client: SlurmClient, store: ArtifactStore, record: SlurmRunRecord, pollInterval: Double, keepGoing: Bool,
         emit: @escaping @Sendable (String) -> Void) {
        self.client = client
        self.store = store
        self.record = record
        self.pollInterval = pollInterval
        self.keepGoing = keepGoing
        self.emit = emit
    }

    /// Follows until every task has ended (exit 0 when all completed, 1 otherwise) or until
    /// interrupted (cancels everything, exit 130).
    func follow(interrupt: InterruptFlag) -> Int32 {
        let jobIDs = record.jobs.map(\.jobID)
        record.state = "running"
        save()
        while true {
            if interrupt.fired { return cancelAll(jobIDs) }
            let states = client.queueStates(jobIDs)
            var changed = false
            var open = 0
            for j in record.jobs.indices {
                for t in record.jobs[j].tasks.indices {
                    let job = record.jobs[j], task = job.tasks[t]
                    if SlurmJobState(state: task.state).isTerminal { continue }
                    let id = SlurmRunRecord.taskID(job, task)
                    guard var s = observe(id, task: task, states: states) else { open += 1; continue }
                    if s.state == "PENDING" && s.reason == "DependencyNeverSatisfied" {
                        // The cluster keeps such jobs queued (kill_invalid_depend not honoured): cancel it ourselves.
                        client.cancel([id])
                        s = SlurmJobState(state: "CANCELLED", reason: "DependencyNeverSatisfied")
                    }
                    if !s.isTerminal { open += 1 }
                    guard s.state != task.state else {
                        record.jobs[j].tasks[t].reason = s.reason
                        continue
                    }
                    changed = true
                    if stopping && s.state == "CANCELLED" && s.reason != "DependencyNeverSatisfied" && ["PENDING", "SUBMITTED"].contains(task.state) {
                        s.reason = SlurmFollower.stoppedReason
                    }
                    record.jobs[j].tasks[t].state = s.state
                    record.jobs[j].tasks[t].reason = s.reason
                    report(jobIndex: j, taskIndex: t, id: id, state: s, previous: task.state)
                }
            }
            if changed { save() }
            if open == 0 { break }
            InterruptFlag.sleep(pollInterval, interrupt)
        }
        return finish()
    }

    /// The current state of a task, or nil when unknown for now.
    private func observe(_ id: String, task: SlurmRunRecord.Task, states: [String: SlurmJobState]?) -> SlurmJobState? {
        guard let states else { return nil }  // squeue failed this time; try again next poll
        if let s = states[id] {
            misses[id] = 0
            return s
        }
        // Not known to the controller (yet, or any more): the job script's exit file says how it ended.
        if let code = exitFileCode(task.exitFile) {
            return SlurmJobState(state: code == "0" ? "COMPLETED" : "FAILED", reason: nil)
        }
        misses[id, default: 0] += 1
        guard misses[id, default: 0] >= 3 else { return nil }
        let (state, _) = client.exitCode(id)
        return SlurmJobState(state: state ?? "UNKNOWN", reason: state == nil ? "left the queue without an exit status" : nil)
    }

    private func exitFileCode(_ path: String) -> String? {
        guard !path.isEmpty, let d = FileManager.default.contents(atPath: path) else { return nil }
        let s = String(decoding: d, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return s.isEmpty ? nil : s
    }

    /// Prints one line for a state change; failures get the job id, state, exit code and log.
    private func report(jobIndex j: Int, taskIndex t: Int, id: String, state s: SlurmJobState, previous: String) {
        let task = record.jobs[j].tasks[t]
        let reason = s.reason.map { " (\($0))" } ?? ""
        switch s.state {
        case "COMPLETED":
            emit("done    \(task.instance) (job \(id))")
        case "CANCELLED" where s.reason == "DependencyNeverSatisfied":
            emit("skipped \(task.instance) (job \(id) cancelled by Slurm: an upstream job failed)")
        case "CANCELLED" where s.reason == SlurmFollower.stoppedReason:
            emit("skipped \(task.instance) (job \(id) cancelled: \(SlurmFollower.stoppedReason))")
        case _ where s.isTerminal:
            var code = exitFileCode(task.exitFile)
            if code == nil { code = client.exitCode(id).exitCode }
            record.jobs[j].tasks[t].exitCode = code
            emit("FAILED  \(task.instance): job \(id) state \(s.state)\(reason), exit code \(code ?? "unknown"); log: \(task.log)")
            if let detail = failureDetail(task.log) { emit("        " + detail) }
            if !keepGoing && !stopping {
                // Like a local run: stop launching work after a failure; running jobs finish.
                stopping = true
                let ids = record.jobs.map(\.jobID)
                let message = client.cancel(ids, pendingOnly: true)
                emit("stopping after this failure: cancelled the queued jobs (scancel --state=PENDING \(ids.joined(separator: " ")))"
                     + (message.map { ": \($0)" } ?? "") + "; --keep-going lets independent branches continue")
            }
        default:
            let change = previous == "SUBMITTED" ? s.state : "\(previous) -> \(s.state)"
            emit("\(s.statusWord.padding(toLength: 7, withPad: " ", startingAt: 0)) \(task.instance) (job \(id) \(change)\(reason))")
        }
    }

    /// The engine's error line and stage log path from the end of a job's Slurm log, if present.
    private func failureDetail(_ log: String) -> String? {
        guard let h = FileHandle(forReadingAtPath: log) else { return nil }
        defer { try? h.close() }
        let size = (try? h.seekToEnd()) ?? 0
        try? h.seek(toOffset: size > 16384 ? size - 16384 : 0)
        let text = String(decoding: h.readDataToEndOfFile(), as: UTF8.self)
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        let error = lines.last { $0.hasPrefix("error: ") }
        let stageLog = lines.last { $0.hasPrefix("log: ") }.map { "stage " + $0 }
        let parts = [error, stageLog].compactMap { $0 }
        return parts.isEmpty ? nil : parts.joined(separator: "; ")
    }

    /// Cancels every job of the run and waits (briefly) until Slurm has let go of them.
    private func cancelAll(_ jobIDs: [String]) -> Int32 {
        let message = client.cancel(jobIDs)
        emit("interrupted: cancelling \(jobIDs.count) job\(jobIDs.count == 1 ? "" : "s") (scancel \(jobIDs.joined(separator: " ")))" + (message.map { ": \($0)" } ?? ""))
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            guard let states = client.queueStates(jobIDs) else { break }
            var allEnded = true
            for j in record.jobs.indices {
                for t in record.jobs[j].tasks.indices {
                    let id = SlurmRunRecord.taskID(record.jobs[j], record.jobs[j].tasks[t])
                    if let s = states[id] {
                        record.jobs[j].tasks[t].state = s.state
                        record.jobs[j].tasks[t].reason = s.reason
                        if !s.isTerminal { allEnded = false }
                    } else if !SlurmJobState(state: record.jobs[j].tasks[t].state).isTerminal {
                        record.jobs[j].tasks[t].state = "CANCELLED"
                    }
                }
            }
            if allEnded { break }
            usleep(200_000)
        }
        record.state = "cancelled"
        save()
        emit("cancelled; job record: \(record.path(store))")
        return 130
    }

    /// Prints the summary line and returns the exit code.
    private func finish() -> Int32 {
        var completed = 0, failed = 0, skipped = 0
        for job in record.jobs {
            for task in job.tasks {
                switch task.state {
                case "COMPLETED": completed += 1
                case "CANCELLED" where task.reason == "DependencyNeverSatisfied" || task.reason == SlurmFollower.stoppedReason: skipped += 1
                default: failed += 1
                }
            }
        }
        record.state = failed + skipped == 0 ? "done" : "failed"
        save()
        var line = "slurm run \(record.run): \(completed) completed"
        if failed > 0 { line += ", \(failed) failed" }
        if skipped > 0 { line += ", \(skipped) skipped" }
        emit(line + " (job record: \(record.path(store)))")
        return failed + skipped == 0 ? 0 : 1
    }

    private func save() {
        do { try record.save(store) } catch { emit("warning: cannot write the job record \(record.path(store)): \(error)") }
    }
}
