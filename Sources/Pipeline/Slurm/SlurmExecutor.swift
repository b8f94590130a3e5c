// `run --executor slurm`: plan, probe the store from a compute node, submit every stale instance as
// sbatch jobs chained with afterok (one job array per matrix stage), then follow them to the end.
import Foundation

/// Options of the Slurm executor (`--slurm-*`, `--detach`).
public struct SlurmOptions: Sendable {
    /// Command-line resource defaults (lowest precedence).
    public var defaults = SlurmResources()
    /// Submit and exit without following or cancelling.
    public var detach = false
    /// Run a probe job first that checks the compute nodes see the store.
    public var probe = true
    /// Seconds the probe job may take (queueing included) before the run gives up.
    public var probeTimeout: Double = 300
    /// Seconds between squeue polls while following.
    public var pollInterval: Double = 2
    /// The auditgap executable the jobs run (must be reachable from the compute nodes).
    public var executable: String
    /// Largest job array submitted at once (Slurm's default MaxArraySize is 1001); a bigger
    /// matrix stage is split into several arrays.
    public var maxArrayTasks = 1000
    /// Paths searched for sbatch and friends (default: `$PATH`).
    public var path: String? = ProcessInfo.processInfo.environment["PATH"]

    public init(executable: String) { self.executable = executable }
}

/// One sbatch submission planned from the pipeline: instances of one stage with equal resources.
struct SlurmJobPlan {
    var stage: String
    var array: Bool
    var instances: [Int]
    var resources: SlurmResources
}

/// Submits a pipeline's stale instances to Slurm and follows them.
public final class SlurmExecutor: @unchecked Sendable {
    // Immutable configuration; mutable state lives in locals of `run` and in `SlurmFollower`.
    public let planner: Planner
    let options: SlurmOptions
    let emitLine: @Sendable (String) -> Void

    public init(planner: Planner, options: SlurmOptions, output: @escaping @Sendable (String) -> Void = { print($0) }) {
        self.planner = planner
        self.options = options
        emitLine = output
    }

    var graph: PipelineGraph { planner.graph }
    var store: ArtifactStore { planner.store }
    func emit(_ s: String) { emitLine(s) }

    /// The resources of one instance: instance overrides > stage > kind (top-level `resources:`) >
    /// the kind's own `defaultResources` > command line.
    public func resources(of i: Int) -> SlurmResources {
        let inst = graph.instances[i]
        let spec = graph.spec
        var r = inst.kind.defaultResources.over(options.defaults)
        if let k = spec.kindResources[inst.kind.name] { r = k.over(r) }
        if let s = spec.stages.first(where: { $0.name == inst.stage })?.resources { r = s.resolve(matrix: inst.matrix).over(r) }
        return r
    }

    /// Groups instances into submissions: per stage in DAG order; a matrix stage becomes one job
    /// array per distinct resource set (normally one; split beyond `maxArrayTasks`), any other
    /// instance a single job.
    func jobPlans(_ toRun: Set<Int>) -> [SlurmJobPlan] {
        var plans: [SlurmJobPlan] = []
        var byStage: [String: [Int]] = [:]
        var order: [String] = []
        for i in toRun.sorted() {
            let s = graph.instances[i].stage
            if byStage[s] == nil { order.append(s) }
            byStage[s, default: []].append(i)
        }
        for stage in order {
            let isMatrix = !(graph.spec.stages.first { $0.name == stage }?.matrix.isEmpty ?? true)
            var groups: [(SlurmResources, [Int])] = []
            for i in byStage[stage] ?? [] {
                let r = resources(of: i)
                if isMatrix, let g = groups.firstIndex(where: { $0.0 == r }) { groups[g].1.append(i) } else { groups.append((r, [i])) }
            }
            let chunk = max(1, options.maxArrayTasks)
            for (r, members) in groups {
                for start in stride(from: 0, to: members.count, by: chunk) {
                    plans.append(SlurmJobPlan(stage: stage, array: isMatrix, instances: Array(members[start..<min(members.count, start + chunk)]), resources: r))
                }
            }
        }
        return plans
    }

    /// Plans, probes, submits and (unless detached) follows. Returns the exit code.
    public func run(_ runOptions: RunOptions) throws -> Int32 {
        var forced = Set<Int>()
        for s in runOptions.force { forced.formUnion(try graph.select(s)) }
        var onlySet: Set<Int>?
        if !runOptions.only.isEmpty {
            var o = Set<Int>()
            for s in runOptions.only { o.formUnion(try graph.select(s)) }
            onlySet = o
        }
        let plan = try planner.status(forced: forced)
        let toRun = Set(plan.filter { $0.state != .fresh && (onlySet?.contains($0.index) ?? true) }.map(\.index))
        let fresh = plan.filter { $0.state == .fresh && (onlySet?.contains($0.index) ?? true) }.count
        if let onlySet {
            for i in toRun.sorted() {
                for d in graph.instances[i].deps where !onlySet.contains(d) && plan[d].state != .fresh {
                    throw PipelineError.usage("--only \(graph.instances[i].name): upstream \(graph.instances[d].name) is \(plan[d].state); add it to --only")
                }
            }
        }
        guard !toRun.isEmpty else {
            emit("nothing to run: \(fresh) instance\(fresh == 1 ? "" : "s") fresh; nothing submitted")
            store.statCache.save()
            return 0
        }
        let jobPlans = jobPlans(toRun)
        if runOptions.dryRun {
            for p in jobPlans {
                let names = p.instances.map { graph.instances[$0].name }
                emit("would submit \(p.array ? "array of \(names.count)" : "job") \(p.stage) [\(p.resources.summary)]: " + names.joined(separator: ", "))
            }
            emit("\(toRun.count) to run in \(jobPlans.count) submission\(jobPlans.count == 1 ? "" : "s"), \(fresh) fresh")
            return 0
        }
        let client = try SlurmClient.locate(path: options.path)
        try store.requireWritable()
        guard FileManager.default.isExecutableFile(atPath: options.executable) else {
            throw PipelineError.cluster("the auditgap executable '\(options.executable)' the jobs would run is not executable")
        }
        let interrupt = InterruptFlag()
        interrupt.install()
        defer { interrupt.uninstall() }

        let fmt = DateFormatter()
        fmt.locale = Locale(identifier: "en_US_POSIX")
        fmt.timeZone = TimeZone(identifier: "UTC")
        fmt.dateFormat = "yyyyMMdd-HHmmss"
        let runID = "\(fmt.string(from: Date()))-\(getpid())"
        let runDir = SlurmRunRecord.directory(store) + "/" + runID
        for d in [runDir, runDir + "/logs", runDir + "/exit"] {
            do { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) } catch {
                throw PipelineError.io(path: d, message: "cannot create the run's job directory: \(error)")
            }
        }
        var record = SlurmRunRecord(run: runID, pipeline: graph.spec.absolutePath, store: store.root,
                                    submitted: ISO8601DateFormatter().string(from: Date()), host: ProcessInfo.processInfo.hostName,
                                    pid: Int(getpid()), detached: options.detach, state: "submitting")
        emit("slurm run \(runID): \(toRun.count) instance\(toRun.count == 1 ? "" : "s") to run in \(jobPlans.count) submission\(jobPlans.count == 1 ? "" : "s"), \(fresh) fresh; jobs in \(runDir)")

        if options.probe {
            do { try probe(client: client, runDir: runDir, resources: jobPlans[0].resources, interrupt: interrupt) } catch {
                guard interrupt.fired else { throw error }
                emit("interrupted while waiting for the probe job (cancelled); nothing submitted")
                return 130
            }
        }
        if interrupt.fired {
            emit("interrupted before submitting; nothing submitted")
            return 130
        }

        // Submit in DAG order, each submission depending (afterok) on the jobs of its upstream instances.
        let script = runDir + "/job.sh"
        try writeScript(script, jobScript())
        var jobOf: [Int: String] = [:]
        var seq = 0
        for (g, p) in jobPlans.enumerated() {
            var deps = Set<String>()
            for i in p.instances { for d in graph.instances[i].deps { if let j = jobOf[d] { deps.insert(j) } } }
            let depList = deps.sorted { Int($0) ?? 0 < Int($1) ?? 0 }
            let base = "\(runDir)/\(g)-\(p.stage)"
            var index = ""
            var exitFiles: [String] = []
            for i in p.instances {
                let exitFile = "\(runDir)/exit/\(seq)"
                seq += 1
                exitFiles.append(exitFile)
                index += "\(exitFile)\t\(forced.contains(i) ? "force" : "-")\t\(graph.instances[i].name)\n"
            }
            try writeScript(base + ".index", index, executable: false)
            let logPattern = "\(runDir)/logs/\(p.stage)-" + (p.array ? "%A_%a.out" : "%j.out")
            var opts = ["--job-name=auditgap:\(p.stage)", "--chdir=\(graph.spec.directory)", "--output=\(logPattern)",
                        "--kill-on-invalid-dep=yes"]
            if p.array { opts.append("--array=0-\(p.instances.count - 1)") }
            if !depList.isEmpty { opts.append("--dependency=afterok:" + depList.joined(separator: ":")) }
            opts += p.resources.sbatchOptions
            let what = p.array ? "job array \(p.stage) (\(p.instances.count) task\(p.instances.count == 1 ? "" : "s"))" : graph.instances[p.instances[0]].name
            let jobID: String
            do {
                jobID = try client.submit(script: script, options: opts, what: what, arguments: [base + ".index"])
            } catch {
                let submitted = record.jobs.map(\.jobID)
                if !submitted.isEmpty {
                    let msg = client.cancel(submitted)
                    emit("cancelled the \(submitted.count) job\(submitted.count == 1 ? "" : "s") already submitted (scancel \(submitted.joined(separator: " ")))"
                         + (msg.map { ": \($0)" } ?? ""))
                }
                record.state = "rejected"
                try? record.save(store)
                throw error
            }
            for i in p.instances { jobOf[i] = jobID }
            let tasks = p.instances.enumerated().map { k, i in
                SlurmRunRecord.Task(index: k, instance: graph.instances[i].name, state: "SUBMITTED", reason: nil, exitCode: nil,
                                    log: logPattern.replacingOccurrences(of: "%A", with: jobID).replacingOccurrences(of: "%a", with: String(k))
                                        .replacingOccurrences(of: "%j", with: jobID),
                                    exitFile: exitFiles[k])
            }
            record.jobs.append(.init(jobID: jobID, stage: p.stage, array: p.array, dependsOn: depList, resources: p.resources.summary, tasks: tasks))
            emit("submitted \(p.array ? "array" : "job") \(jobID) \(what)"
                 + (depList.isEmpty ? "" : " after \(depList.joined(separator: ","))") + " [\(p.resources.summary)]")
            try record.save(store)
        }
        record.state = "submitted"
        try record.save(store)
        let ids = record.jobs.map(\.jobID)
        if options.detach && !interrupt.fired {
            emit("detached: \(ids.count) job\(ids.count == 1 ? "" : "s") submitted (\(ids.joined(separator: " "))); "
                 + "`auditgap status` shows their instances; cancel with: scancel \(ids.joined(separator: " "))")
            return 0
        }
        let follower = SlurmFollower(client: client, store: store, record: record, pollInterval: options.pollInterval,
                                     keepGoing: runOptions.keepGoing, emit: emitLine)
        return follower.follow(interrupt: interrupt)
    }

    /// Submits a tiny job that writes a token into the store; fails unless the token appears.
    func probe(client: SlurmClient, runDir: String, resources: SlurmResources, interrupt: InterruptFlag) throws {
        let token = String(SHA256.hex(of: "\(runDir) \(Date().timeIntervalSince1970) \(UInt64.random(in: 0...UInt64.max))").prefix(24))
        let tokenFile = runDir + "/probe.token"
        let script = runDir + "/probe.sh"
        try writeScript(script, """
        #!/bin/sh
        # auditgap store probe: proves a compute node can write into the store and run auditgap.
        if [ -x \(shq(options.executable)) ]; then exe=ok; else exe=missing; fi
        printf '%s %s %s\\n' \(shq(token)) "$exe" "$(hostname)" > \(shq(tokenFile)).tmp.$$ && mv \(shq(tokenFile)).tmp.$$ \(shq(tokenFile))

        """)
        var opts = ["--job-name=auditgap:probe", "--output=/dev/null", "--time=5", "--cpus-per-task=1"]
        if let p = resources.partition { opts.append("--partition=\(p)") }
        if let a = resources.account { opts.append("--account=\(a)") }
        opts += resources.sbatchArgs
        let id = try client.submit(script: script, options: opts, what: "the store probe job", arguments: [])
        emit("probe job \(id): checking that compute nodes see the store \(store.root)")
        let deadline = Date().addingTimeInterval(options.probeTimeout)
        var last = SlurmJobState(state: "SUBMITTED", reason: nil)
        var misses = 0
        while true {
            if interrupt.fired {
                client.cancel([id])
                throw PipelineError.cluster("interrupted while waiting for the probe job \(id) (cancelled); nothing else was submitted")
            }
            if let states = client.queueStates([id]) {
                if let s = states[id] { last = s; misses = 0 } else { misses += 1 }
                if last.isTerminal || misses >= 3 { break }
            }
            if Date() > deadline {
                client.cancel([id])
                throw PipelineError.cluster("the probe job \(id) was still \(last.state)\(last.reason.map { " (\($0))" } ?? "") after \(Int(options.probeTimeout)) s; "
                                            + "cancelled it and submitted nothing. Check the partition and account (--slurm-partition, --slurm-account), "
                                            + "or allow more time with --slurm-probe-timeout")
            }
            InterruptFlag.sleep(0.25, interrupt)
        }
        // The token may take a moment to show up through a network filesystem's attribute cache.
        var content: String?
        for _ in 0..<(last.state == "FAILED" ? 1 : 20) {
            if let d = FileManager.default.contents(atPath: tokenFile) { content = String(decoding: d, as: UTF8.self); break }
            usleep(250_000)
        }
        let fields = content?.split(separator: " ").map(String.init) ?? []
        guard fields.first == token else {
            let (state, code) = client.exitCode(id)
            throw PipelineError.cluster("the compute nodes cannot reach the store \(store.root): probe job \(id) ended \(state ?? last.state)"
                                        + (code.map { " (exit code \($0))" } ?? "") + " without writing \(tokenFile). "
                                        + "Put the store on a filesystem the login and compute nodes both see (--store DIR or AUDITGAP_STORE)")
        }
        let node = fields.count > 2 ? fields[2].trimmingCharacters(in: .whitespacesAndNewlines) : "?"
        guard fields.count > 1, fields[1] == "ok" else {
            throw PipelineError.cluster("compute node \(node) sees the store but cannot execute \(options.executable); "
                                        + "install auditgap on a path both sides see")
        }
        emit("probe job \(id) on \(node): store reachable")
    }

    /// The batch script every job runs: the line SLURM_ARRAY_TASK_ID+1 of the index file (its
    /// first argument) names the exit-status file, whether to force, and the instance.
    func jobScript() -> String {
        """
        #!/bin/sh
        # auditgap Slurm job: runs one pipeline instance with `auditgap run --only`. The index file ($1)
        # has one line per array task: exit-status file, force flag, instance name (tab-separated).
        index="$1"
        task="${SLURM_ARRAY_TASK_ID:-0}"
        line=$(sed -n "$((task + 1))p" "$index")
        if [ -z "$line" ]; then echo "auditgap job: no line $((task + 1)) in $index (store not visible here?)" >&2; exit 3; fi
        tab=$(printf '\\t')
        exitfile=${line%%"$tab"*}
        rest=${line#*"$tab"}
        force=${rest%%"$tab"*}
        instance=${rest#*"$tab"}
        echo "auditgap job ${SLURM_JOB_ID:-?} (array ${SLURM_ARRAY_JOB_ID:--} task $task) on $(hostname): $instance"
        if [ "$force" = force ]; then set -- --force "$instance"; else set --; fi
        \(shq(options.executable)) run \(shq(graph.spec.absolutePath)) --only "$instance" --store \(shq(store.root)) "$@"
        rc=$?
        printf '%s\\n' "$rc" > "$exitfile.tmp.$$" && mv "$exitfile.tmp.$$" "$exitfile"
        exit $rc

        """
    }

    func writeScript(_ path: String, _ text: String, executable: Bool = true) throws {
        do {
            try FileTree.atomicWrite(Data(text.utf8), to: path)
            if executable { chmod(path, 0o755) }
        } catch {
            throw PipelineError.io(path: path, message: "cannot write: \(error)")
        }
    }

    /// Single-quotes a string for /bin/sh.
    func shq(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
}

/// Set by SIGINT or SIGTERM while the executor runs (the default handlers are restored after).
final class InterruptFlag: @unchecked Sendable {
    // `value` is guarded by `lock`; the sources are touched only by install/uninstall on one thread.
    private let lock = NSLock()
    private var value = false
    private var sources: [DispatchSourceSignal] = []

    var fired: Bool { lock.lock(); defer { lock.unlock() }; return value }

    func install() {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler { [weak self] in
                guard let self else { return }
                self.lock.lock()
                self.value = true
                self.lock.unlock()
            }
            s.resume()
            sources.append(s)
        }
    }

    func uninstall() {
        for s in sources { s.cancel() }
        sources = []
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }

    /// Sleeps up to `seconds`, waking early when the flag is set.
    static func sleep(_ seconds: Double, _ flag: InterruptFlag) {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end && !flag.fired { usleep(50_000) }
    }
}
