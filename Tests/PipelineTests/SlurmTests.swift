// The Slurm executor against a real single-node Slurm (scripts/slurm-local.sh): same artifacts as a
// local run, nothing resubmitted, failures reported with job id and log, Ctrl-C cancels.
import Foundation
import XCTest
@testable import Pipeline

/// A small study: a chain into a matrix stage and a fan-in, with a file input.
let slurmStudy = """
stages:
  prep:
    kind: shell
    inputs: {data: "file:data.txt"}
    params: {cmd: "tr a-z A-Z < $AUDITGAP_IN_DATA > $AUDITGAP_OUT/prep.txt"}
    outputs: [prep.txt]
  sweep:
    kind: shell
    matrix: {eps: [1, 2, 3]}
    inputs: {prep: prep/prep.txt}
    resources: {cpus: 1, mem: 64M, time: "2", instances: {"eps=3": {time: "00:03:00"}}}
    params: {cmd: "cat $AUDITGAP_IN_PREP > $AUDITGAP_OUT/s.txt; echo eps=${matrix.eps} >> $AUDITGAP_OUT/s.txt"}
    outputs: [s.txt]
  table:
    kind: shell
    inputs: {rows: "sweep[*]/s.txt"}
    params: {cmd: "cat $AUDITGAP_IN_ROWS > $AUDITGAP_OUT/table.txt"}
    outputs: [table.txt]
"""

final class SlurmTests: XCTestCase {
    /// Whether the local cluster is up (checked once per test process); nil until checked.
    nonisolated(unsafe) static var clusterProblem: String??  // written once from the serial XCTest thread

    /// Skips when Slurm is not installed at all; fails (does not hang) when it is installed but no
    /// cluster answers and scripts/slurm-local.sh cannot start one.
    func requireCluster() throws {
        guard let sbatch = which("sbatch") else {
            throw XCTSkip("Slurm is not installed (no sbatch on PATH); CI installs slurmctld slurmd slurm-client munge and runs scripts/slurm-local.sh start")
        }
        _ = sbatch
        if SlurmTests.clusterProblem == nil {
            SlurmTests.clusterProblem = .some(startCluster())
        }
        if let problem = SlurmTests.clusterProblem ?? nil { XCTFail(problem); throw XCTSkip("no Slurm cluster: \(problem)") }
    }

    private func startCluster() -> String? {
        if nodeUp() { return nil }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/slurm-local.sh").path
        let r = runTool("/bin/bash", [script, "start"], timeout: 90)
        if r.status == 0 && nodeUp() { return nil }
        return "Slurm is installed but no cluster answers and `scripts/slurm-local.sh start` failed (status \(r.status)): \(r.output)"
    }

    private func nodeUp() -> Bool {
        let r = runTool(which("sinfo") ?? "/usr/bin/sinfo", ["-h", "-o", "%T"], timeout: 15)
        return r.status == 0 && r.output.split(separator: "\n").contains { ["idle", "mixed", "allocated", "completing"].contains(String($0).trimmingCharacters(in: .whitespaces)) }
    }

    func testSlurmRunMatchesLocalRunAndSecondRunSubmitsNothing() throws {
        try requireCluster()
        let exe = try auditgapBinary()
        let local = Sandbox(), remote = Sandbox()
        for box in [local, remote] {
            box.write("pipeline.yaml", slurmStudy)
            box.write("data.txt", "hello cluster\n")
        }
        let t0 = Date()
        let l = runTool(exe, ["run", "--store", local.store], cwd: local.dir, timeout: 60)
        XCTAssertEqual(l.status, 0, l.output)
        let r = runTool(exe, ["run", "--executor", "slurm", "--store", remote.store, "--slurm-poll", "0.3"], cwd: remote.dir, timeout: 90)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("probe job"), r.output)
        XCTAssertTrue(r.output.contains("job array sweep (2 tasks)") && r.output.contains("job array sweep (1 task)"), r.output)
        XCTAssertTrue(r.output.contains("5 completed"), r.output)
        print("slurm run of the 5-instance study: \(String(format: "%.1f", Date().timeIntervalSince(t0))) s (with the local run)")

        // Same instances, keys and output hashes.
        let a = try local.status(), b = try remote.status()
        XCTAssertEqual(Set(a.keys), ["prep", "sweep[eps=1]", "sweep[eps=2]", "sweep[eps=3]", "table"])
        for (name, s) in a {
            XCTAssertEqual(s.state, .fresh, name)
            XCTAssertEqual(b[name]?.state, .fresh, name)
            XCTAssertEqual(s.key, b[name]?.key, name)
            XCTAssertNotNil(s.manifest, name)
            XCTAssertEqual(s.manifest?.contentHash, b[name]?.manifest?.contentHash, name)
            XCTAssertEqual(s.manifest?.files.map(\.sha256), b[name]?.manifest?.files.map(\.sha256), name)
        }
        // The job record lists every instance as completed.
        let records = SlurmRunRecord.load(ArtifactStore(root: remote.store), pipeline: PipelineSpec.absolute(remote.pipeline))
        XCTAssertEqual(records.count, 1)
        XCTAssertEqual(records.first?.state, "done")
        XCTAssertEqual(records.first?.jobs.flatMap(\.tasks).map(\.state), Array(repeating: "COMPLETED", count: 5))

        // A second run submits nothing and writes no new record.
        let again = runTool(exe, ["run", "--executor", "slurm", "--store", remote.store], cwd: remote.dir, timeout: 30)
        XCTAssertEqual(again.status, 0, again.output)
        XCTAssertTrue(again.output.contains("nothing to run: 5 instances fresh; nothing submitted"), again.output)
        XCTAssertFalse(again.output.contains("submitted job") || again.output.contains("submitted array") || again.output.contains("probe job"), again.output)
        XCTAssertEqual(SlurmRunRecord.load(ArtifactStore(root: remote.store), pipeline: PipelineSpec.absolute(remote.pipeline)).count, 1)
    }

    func testLocalAndSlurmRunsOnOneStoreComputeEachInstanceOnce() throws {
        try requireCluster()
        let exe = try auditgapBinary()
        let box = Sandbox()
        let counter = box.dir + "/count.txt"
        box.write("pipeline.yaml", """
        stages:
          gate:
            kind: shell
            params: {cmd: "echo gate >> \(counter); sleep 1; echo g > $AUDITGAP_OUT/g.txt"}
            outputs: [g.txt]
          work:
            kind: shell
            matrix: {i: [1, 2, 3]}
            inputs: {g: gate}
            params: {cmd: "echo $AUDITGAP_INSTANCE >> \(counter); sleep 0.3; echo ${matrix.i} > $AUDITGAP_OUT/o.txt"}
            outputs: [o.txt]
        """)
        let submit = runTool(exe, ["run", "--executor", "slurm", "--detach", "--store", box.store], cwd: box.dir, timeout: 60)
        XCTAssertEqual(submit.status, 0, submit.output)
        XCTAssertTrue(submit.output.contains("detached"), submit.output)
        // While the jobs are queued or running, status shows them from the job record.
        let st = runTool(exe, ["status", "--store", box.store], cwd: box.dir, timeout: 30)
        XCTAssertTrue(st.output.contains("slurm job"), st.output)
        // A local run on the same store at the same time: the per-key locks let each instance be computed once.
        let local = runTool(exe, ["run", "--store", box.store, "-j", "2"], cwd: box.dir, timeout: 60)
        XCTAssertEqual(local.status, 0, local.output)
        let deadline = Date().addingTimeInterval(60)
        var done = false
        while Date() < deadline && !done {
            let store = ArtifactStore(root: box.store)
            let rec = SlurmRunRecord.load(store, pipeline: PipelineSpec.absolute(box.pipeline)).first
            let ids = rec?.jobs.map(\.jobID) ?? []
            let q = runTool(which("squeue") ?? "squeue", ["-h", "-j", ids.joined(separator: ","), "-o", "%T"], timeout: 15)
            done = q.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty || q.output.contains("Invalid job id")
            if !done { usleep(300_000) }
        }
        XCTAssertTrue(done, "slurm jobs did not finish within 60 s")
        let lines = (box.read("count.txt") ?? "").split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.sorted(), ["gate", "work[i=1]", "work[i=2]", "work[i=3]"], "each instance computed exactly once:\n\(lines)\n\(local.output)")
        // Jobs whose instance was already fresh exited at once without computing.
        let logs = (try? FileManager.default.subpathsOfDirectory(atPath: box.store + "/jobs"))?.filter { $0.hasSuffix(".out") } ?? []
        let texts = logs.compactMap { FileManager.default.contents(atPath: box.store + "/jobs/" + $0) }.map { String(decoding: $0, as: UTF8.self) }
        XCTAssertEqual(texts.count, 4, "\(logs)")
        XCTAssertTrue(texts.allSatisfy { $0.contains("ran") || $0.contains("nothing to run") || $0.contains("reused") }, texts.joined(separator: "\n---\n"))
        XCTAssertTrue(try box.status().values.allSatisfy { $0.state == .fresh })
    }

    func testFailingStageIsReportedWithJobIDAndLogAndDependentsNeverStart() throws {
        try requireCluster()
        let exe = try auditgapBinary()
        let box = Sandbox()
        let marker = box.dir + "/after-ran"
        box.write("pipeline.yaml", """
        stages:
          bad:
            kind: shell
            matrix: {n: [1, 2]}
            params: {cmd: "test ${matrix.n} = 1 || { echo boom >&2; exit 3; }; echo ok > $AUDITGAP_OUT/o.txt"}
            outputs: [o.txt]
          after:
            kind: shell
            inputs: {b: bad}
            params: {cmd: "touch \(marker); echo x > $AUDITGAP_OUT/x.txt"}
            outputs: [x.txt]
        """)
        // --keep-going: only Slurm's own dependency handling keeps `after` from starting.
        let r = runTool(exe, ["run", "--executor", "slurm", "--keep-going", "--store", box.store, "--slurm-poll", "0.3"], cwd: box.dir, timeout: 90)
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertFalse(r.output.contains("stopping after this failure"), r.output)
        let failLine = r.output.split(separator: "\n").map(String.init).first { $0.hasPrefix("FAILED  bad[n=2]") }
        XCTAssertNotNil(failLine, r.output)
        let line = failLine ?? ""
        XCTAssertTrue(line.range(of: #"job [0-9]+_1 state FAILED"#, options: .regularExpression) != nil, line)
        XCTAssertTrue(line.contains("exit code 1"), line)
        let log = line.components(separatedBy: "log: ").last ?? ""
        let logText = FileManager.default.contents(atPath: log).map { String(decoding: $0, as: UTF8.self) } ?? ""
        XCTAssertTrue(logText.contains("bad[n=2] failed"), "log \(log): \(logText)")
        XCTAssertTrue(r.output.contains("command exited with status 3"), r.output)
        XCTAssertTrue(r.output.contains("skipped after"), r.output)
        XCTAssertTrue(r.output.contains("1 completed, 1 failed, 1 skipped"), r.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker), "the dependent of a failed stage ran")
        let rec = SlurmRunRecord.load(ArtifactStore(root: box.store), pipeline: PipelineSpec.absolute(box.pipeline)).first
        let after = rec?.jobs.flatMap(\.tasks).first { $0.instance == "after" }
        XCTAssertEqual(after?.state, "CANCELLED")
        XCTAssertFalse(FileManager.default.fileExists(atPath: after?.log ?? "/"), "the dependent's job started")
        let st = try box.status()
        XCTAssertEqual(st["bad[n=1]"]?.state, .fresh)
        XCTAssertEqual(st["bad[n=2]"]?.state, .missing)
    }

    func testAfterAFailureQueuedJobsAreCancelledUnlessKeepGoing() throws {
        try requireCluster()
        let exe = try auditgapBinary()
        let box = Sandbox()
        box.write("pipeline.yaml", """
        stages:
          bad: {kind: shell, params: {cmd: "echo deliberate >&2; exit 3"}, outputs: [o.txt]}
          slow:
            kind: shell
            params: {cmd: "sleep 2; echo s > $AUDITGAP_OUT/s.txt"}
            outputs: [s.txt]
          later:
            kind: shell
            inputs: {s: slow}
            params: {cmd: "cat $AUDITGAP_IN_S/s.txt > $AUDITGAP_OUT/out.txt"}
            outputs: [out.txt]
        """)
        let r = runTool(exe, ["run", "--executor", "slurm", "--store", box.store, "--slurm-poll", "0.3"], cwd: box.dir, timeout: 90)
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertTrue(r.output.contains("FAILED  bad: job"), r.output)
        XCTAssertTrue(r.output.contains("command exited with status 3"), r.output)
        XCTAssertTrue(r.output.contains("stopping after this failure"), r.output)
        // `slow` either was already running when `bad` failed (it then completes) or was still
        // queued (it is then cancelled like `later`): which one depends on when the cluster
        // scheduled it, so both are accepted, each with its consequences checked.
        let slowRan = r.output.contains("done    slow")
        XCTAssertTrue(slowRan || r.output.contains("skipped slow (job"), r.output)
        XCTAssertEqual(try box.status()["slow"]?.state, slowRan ? .fresh : .missing)
        XCTAssertTrue(r.output.contains("skipped later (job"), r.output)
        XCTAssertEqual(try box.status()["later"]?.state, .missing)
        // With --keep-going the independent branch completes; `bad` is resubmitted with it
        // (and `slow` too when the first run cancelled it).
        let k = runTool(exe, ["run", "--executor", "slurm", "--keep-going", "--store", box.store, "--slurm-poll", "0.3"], cwd: box.dir, timeout: 90)
        XCTAssertEqual(k.status, 1, k.output)
        XCTAssertTrue(k.output.contains(slowRan ? "2 instances to run" : "3 instances to run"), k.output)
        XCTAssertTrue(k.output.contains("done    later"), k.output)
        XCTAssertEqual(try box.status()["later"]?.state, .fresh)
    }

    func testInterruptCancelsSubmittedJobs() throws {
        try requireCluster()
        let exe = try auditgapBinary()
        let box = Sandbox()
        let marker = box.dir + "/after-ran"
        box.write("pipeline.yaml", """
        stages:
          slow:
            kind: shell
            matrix: {n: [1, 2]}
            params: {cmd: "sleep 20; echo ${matrix.n} > $AUDITGAP_OUT/o.txt"}
            outputs: [o.txt]
          after:
            kind: shell
            inputs: {s: slow}
            params: {cmd: "touch \(marker); echo x > $AUDITGAP_OUT/x.txt"}
            outputs: [x.txt]
        """)
        let p = try launch(exe, ["run", "--executor", "slurm", "--store", box.store, "--slurm-poll", "0.3"], cwd: box.dir, log: box.dir + "/submit.log")
        defer { if p.isRunning { p.terminate() } }
        let deadline = Date().addingTimeInterval(45)
        while Date() < deadline && p.isRunning && !(box.read("submit.log") ?? "").contains("running slow") { usleep(100_000) }
        XCTAssertTrue((box.read("submit.log") ?? "").contains("running slow"), box.read("submit.log") ?? "")
        let rec0 = SlurmRunRecord.load(ArtifactStore(root: box.store), pipeline: PipelineSpec.absolute(box.pipeline)).first
        let ids = rec0?.jobs.map(\.jobID) ?? []
        XCTAssertEqual(ids.count, 2)
        kill(p.processIdentifier, SIGINT)
        let end = Date().addingTimeInterval(30)
        while p.isRunning && Date() < end { usleep(100_000) }
        XCTAssertFalse(p.isRunning, "the submitter did not exit within 30 s of SIGINT")
        let out = box.read("submit.log") ?? ""
        XCTAssertEqual(p.isRunning ? -1 : p.terminationStatus, 130, out)
        XCTAssertTrue(out.contains("interrupted: cancelling 2 jobs"), out)
        let q = runTool(which("squeue") ?? "squeue", ["-h", "-r", "-j", ids.joined(separator: ","), "-o", "%i %T"], timeout: 15)
        XCTAssertEqual(q.output.trimmingCharacters(in: .whitespacesAndNewlines), "", "jobs still queued or running after Ctrl-C")
        let rec = SlurmRunRecord.load(ArtifactStore(root: box.store), pipeline: PipelineSpec.absolute(box.pipeline)).first
        XCTAssertEqual(rec?.state, "cancelled")
        XCTAssertTrue(rec?.jobs.flatMap(\.tasks).allSatisfy { $0.state == "CANCELLED" } ?? false, "\(String(describing: rec?.jobs))")
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker))
    }

    func testStoreTheComputeNodesCannotWriteIsDetectedByTheProbe() throws {
        try requireCluster()
        // One machine cannot hide a directory from itself; a job running as `nobody` cannot write
        // into root's store, which the probe must catch the same way before submitting anything.
        try XCTSkipIf(getuid() != 0, "needs root to submit a job as another user (sbatch --uid)")
        let exe = try auditgapBinary()
        let box = Sandbox()
        box.write("pipeline.yaml", "stages:\n  a: {kind: shell, params: {cmd: \"echo 1 > $AUDITGAP_OUT/o.txt\"}, outputs: [o.txt]}\n")
        let r = runTool(exe, ["run", "--executor", "slurm", "--store", box.store, "--slurm-arg=--uid=nobody", "--slurm-probe-timeout", "30"],
                        cwd: box.dir, timeout: 60)
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertTrue(r.output.contains("the compute nodes cannot reach the store \(PipelineSpec.absolute(box.store))"), r.output)
        XCTAssertFalse(r.output.contains("submitted job"), r.output)
        let rec = SlurmRunRecord.load(ArtifactStore(root: box.store), pipeline: PipelineSpec.absolute(box.pipeline))
        XCTAssertTrue(rec.allSatisfy { $0.jobs.isEmpty }, "jobs were submitted after a failed probe")
    }

    func testRejectedSubmissionShowsSlurmsMessage() throws {
        try requireCluster()
        let exe = try auditgapBinary()
        let box = Sandbox()
        box.write("pipeline.yaml", "stages:\n  a: {kind: shell, params: {cmd: \"echo 1 > $AUDITGAP_OUT/o.txt\"}, outputs: [o.txt]}\n")
        let r = runTool(exe, ["run", "--executor", "slurm", "--store", box.store, "--slurm-partition", "no-such-partition"], cwd: box.dir, timeout: 30)
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertTrue(r.output.contains("Slurm rejected the submission"), r.output)
        XCTAssertTrue(r.output.lowercased().contains("partition"), r.output)
    }
}

/// The first executable named `tool` on PATH (or in the usual sbin directories).
func which(_ tool: String) -> String? {
    let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/bin:/usr/sbin:/usr/local/bin"
    return path.split(separator: ":").map { "\($0)/\(tool)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
}

/// Runs a program with a time limit (killed and reported when exceeded); stdout and stderr merged.
func runTool(_ exe: String, _ args: [String], cwd: String? = nil, timeout: Double, env: [String: String]? = nil) -> (status: Int32, output: String) {
    let log = NSTemporaryDirectory() + "auditgap-tool-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log"
    FileManager.default.createFile(atPath: log, contents: nil)
    defer { try? FileManager.default.removeItem(atPath: log) }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = args
    if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    if let env { p.environment = env }
    guard let h = FileHandle(forWritingAtPath: log) else { return (-1, "cannot open \(log)") }
    p.standardOutput = h
    p.standardError = h
    p.standardInput = FileHandle.nullDevice
    do { try p.run() } catch { return (-1, "cannot run \(exe): \(error)") }
    let deadline = Date().addingTimeInterval(timeout)
    while p.isRunning && Date() < deadline { usleep(20_000) }
    var timedOut = false
    if p.isRunning {
        timedOut = true
        p.interrupt()
        usleep(500_000)
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        let end = Date().addingTimeInterval(5)
        while p.isRunning && Date() < end { usleep(20_000) }
    }
    // No waitUntilExit: it can block for as long as a daemon the child started holds inherited descriptors.
    try? h.close()
    let out = FileManager.default.contents(atPath: log).map { String(decoding: $0, as: UTF8.self) } ?? ""
    let status: Int32 = timedOut || p.isRunning ? -2 : p.terminationStatus
    return (status, (timedOut ? "TIMED OUT after \(Int(timeout)) s: \(exe) \(args.joined(separator: " "))\n" : "") + out)
}
