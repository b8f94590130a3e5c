// Runs a pipeline: plan, skip fresh instances, run stale ones on N workers, publish, record refs.
import Foundation

/// Options of `auditgap run`.
public struct RunOptions: Sendable {
    /// Parallel workers.
    public var jobs = 1
    /// Print the plan with reasons; run nothing.
    public var dryRun = false
    /// Selectors of instances to recompute even when fresh.
    public var force: [String] = []
    /// Selectors of the only instances to run (their upstreams must be fresh).
    public var only: [String] = []
    /// After a failure, keep running branches that do not depend on it.
    public var keepGoing = false
    /// Where stage progress bars go.
    public var progress: ProgressSink = .standardError

    public init() {}
}

/// What a run did.
public struct RunSummary: Sendable {
    public var ran: [String] = []
    /// Instances whose key turned out fresh once upstream outputs were known (early cutoff).
    public var cutoff: [String] = []
    /// Instances another process computed while we waited for the lock.
    public var reused: [String] = []
    public var fresh = 0
    public var failed: [(name: String, message: String)] = []
    public var skipped: [String] = []
    /// The plan (statuses before running).
    public var plan: [InstanceStatus] = []

    public var exitCode: Int32 { failed.isEmpty ? 0 : 1 }
}

/// Executes stage instances over an artifact store.
public final class Scheduler: @unchecked Sendable {
    // Immutable configuration; the mutable run state lives in `RunState`, guarded by its condition.
    public let planner: Planner
    private let emitLock = NSLock()
    private let emitLine: @Sendable (String) -> Void

    public init(planner: Planner, output: @escaping @Sendable (String) -> Void = { print($0) }) {
        self.planner = planner
        emitLine = output
    }

    private var graph: PipelineGraph { planner.graph }
    private var store: ArtifactStore { planner.store }

    private func emit(_ s: String) {
        emitLock.lock()
        emitLine(s)
        emitLock.unlock()
    }

    /// Resolves selectors (`stage`, `stage[k=v]`) to instance indices.
    public func resolve(_ selectors: [String]) throws -> Set<Int> {
        var out = Set<Int>()
        for s in selectors { out.formUnion(try graph.select(s)) }
        return out
    }

    /// Plans and runs.
    public func run(_ options: RunOptions) throws -> RunSummary {
        let forced = try resolve(options.force)
        let onlySet: Set<Int>? = options.only.isEmpty ? nil : try resolve(options.only)
        if !options.dryRun { store.clearDebris() }
        var summary = RunSummary()
        let plan = try planner.status(forced: forced)
        summary.plan = plan
        var toRun = Set(plan.filter { $0.state != .fresh && (onlySet?.contains($0.index) ?? true) }.map(\.index))
        summary.fresh = plan.filter { $0.state == .fresh && (onlySet?.contains($0.index) ?? true) }.count
        if let onlySet {
            for i in toRun.sorted() {
                for d in graph.instances[i].deps where !onlySet.contains(d) && plan[d].state != .fresh {
                    throw PipelineError.usage("--only \(graph.instances[i].name): upstream \(graph.instances[d].name) is \(plan[d].state) ("
                                              + plan[d].reasons.joined(separator: "; ") + "); run it first or add it to --only")
                }
            }
        }
        if options.dryRun {
            for i in toRun.sorted() {
                emit("would run \(plan[i].name): " + plan[i].reasons.joined(separator: "; "))
            }
            emit("\(toRun.count) to run, \(summary.fresh) fresh")
            return summary
        }
        guard !toRun.isEmpty else {
            emit("nothing to run: \(summary.fresh) instance\(summary.fresh == 1 ? "" : "s") fresh")
            store.statCache.save()
            return summary
        }
        try store.requireWritable()
        // Reading an artifact checks it: fresh upstreams of what will run are re-hashed (stat cache
        // trusted for unchanged files); a corrupted one is quarantined and recomputed.
        var manifests = plan.map(\.manifest)
        var checked = Set<Int>()
        var worklist = toRun.sorted()
        while let i = worklist.popLast() {
            for d in graph.instances[i].deps where !toRun.contains(d) && !checked.contains(d) {
                checked.insert(d)
                guard let key = plan[d].key else { continue }
                let problems = store.verify(key, useStatCache: true)
                guard !problems.isEmpty else { continue }
                emit("corrupted \(plan[d].name) (\(key.prefix(12))): \(problems.joined(separator: "; ")); moved to quarantine, recomputing")
                try store.quarantine(key)
                if let onlySet, !onlySet.contains(d) {
                    throw PipelineError.corruptObject(key: key, problems: problems + ["upstream \(plan[d].name) of --only \(plan[i].name) must be recomputed first"])
                }
                manifests[d] = nil
                toRun.insert(d)
                worklist.append(d)
            }
        }
        let state = RunState(toRun: toRun, graph: graph, manifests: manifests)
        let total = toRun.count
        let workers = max(1, min(options.jobs, total))
        let group = DispatchGroup()
        for _ in 0..<workers {
            group.enter()
            let t = Thread { [self] in
                self.workerLoop(state: state, forced: forced, options: options, total: total)
                group.leave()
            }
            t.stackSize = 8 << 20
            t.start()
        }
        group.wait()
        store.statCache.save()
        summary.ran = state.ran
        summary.cutoff = state.cutoff
        summary.reused = state.reused
        summary.failed = state.failed.map { (graph.instances[$0.0].name, $0.1) }
        let failedSet = Set(state.failed.map(\.0))
        for i in toRun.sorted() where !state.finished.contains(i) && !failedSet.contains(i) {
            let up = graph.instances[i].deps.first { failedSet.contains($0) || state.skipped.contains($0) }
            state.skipped.insert(i)
            let why = up.map { "upstream \(graph.instances[$0].name) \(failedSet.contains($0) ? "failed" : "was skipped")" } ?? "run stopped after a failure"
            summary.skipped.append(graph.instances[i].name)
            emit("skipped \(graph.instances[i].name) (\(why))")
        }
        var line = "\(summary.ran.count) ran, \(summary.fresh + summary.cutoff.count) fresh"
        if !summary.reused.isEmpty { line += ", \(summary.reused.count) reused from a concurrent run" }
        if !summary.failed.isEmpty { line += ", \(summary.failed.count) failed" }
        if !summary.skipped.isEmpty { line += ", \(summary.skipped.count) skipped" }
        emit(line)
        return summary
    }

    private func workerLoop(state: RunState, forced: Set<Int>, options: RunOptions, total: Int) {
        while true {
            state.cond.lock()
            while !state.stop && state.ready.isEmpty && state.active > 0 { state.cond.wait() }
            if state.stop || state.ready.isEmpty {
                state.cond.broadcast()
                state.cond.unlock()
                return
            }
            let i = state.ready.removeFirst()
            state.active += 1
            state.started += 1
            let n = state.started
            let snapshot = state.manifests
            state.cond.unlock()

            let outcome = process(i, upstream: snapshot, forced: forced.contains(i), options: options, tag: "[\(n)/\(total)]")

            state.cond.lock()
            state.active -= 1
            switch outcome {
            case let .success(m, how):
                state.manifests[i] = m
                state.finished.insert(i)
                switch how {
                case .ran: state.ran.append(graph.instances[i].name)
                case .cutoff: state.cutoff.append(graph.instances[i].name)
                case .reused: state.reused.append(graph.instances[i].name)
                }
                for d in graph.dependents[i] where state.remaining[d] != nil {
                    state.remaining[d]! -= 1
                    if state.remaining[d] == 0 {
                        let pos = state.ready.firstIndex { $0 > d } ?? state.ready.endIndex
                        state.ready.insert(d, at: pos)
                    }
                }
            case let .failure(message):
                state.failed.append((i, message))
                if !options.keepGoing { state.stop = true }
            }
            state.cond.broadcast()
            state.cond.unlock()
        }
    }

    enum How { case ran, cutoff, reused }
    enum Outcome { case success(Manifest, How), failure(String) }

    private func process(_ i: Int, upstream: [Manifest?], forced: Bool, options: RunOptions, tag: String) -> Outcome {
        let inst = graph.instances[i]
        do {
            let mat = try planner.material(i, upstream: { upstream[$0] })
            guard let key = mat.key else { return .failure("internal: upstream of \(inst.name) not computed") }
            if !forced, case let .ok(m) = store.quickCheck(key) {
                emit("\(tag) fresh \(inst.name) (upstream outputs unchanged)")
                store.writeRef(pipelineID: planner.pipelineID, instance: inst.name, record: mat.record(key: key, contentHash: m.contentHash))
                return .success(m, .cutoff)
            }
            let lock = try store.lock(key, onWait: { self.emit("\(tag) waiting for \(inst.name) (another run holds its lock)") })
            defer { lock.release() }
            switch store.quickCheck(key) {
            case let .ok(m) where !forced:
                emit("\(tag) reused \(inst.name) (computed by another run)")
                store.writeRef(pipelineID: planner.pipelineID, instance: inst.name, record: mat.record(key: key, contentHash: m.contentHash))
                return .success(m, .reused)
            case .corrupt:
                try store.quarantine(key)
            default:
                break
            }
            emit("\(tag) start \(inst.name)")
            let t0 = Date()
            let temp = try store.makeTemp(key)
            let logger = StageLogger(path: store.logPath(key))
            logger.log("=== \(inst.name) key \(key) pid \(getpid()) host \(ProcessInfo.processInfo.hostName)")
            var inputURLs: [String: [InputArtifact]] = [:]
            var lineageInputs: [String: Value] = [:]
            for input in inst.inputs {
                var urls: [InputArtifact] = []
                var entries: [Value] = []
                for (j, source) in input.sources.enumerated() {
                    let hash = mat.inputs[input.name]?[j] ?? nil
                    switch source {
                    case let .file(path, label):
                        urls.append(InputArtifact(url: URL(fileURLWithPath: path), instance: nil, matrix: [:]))
                        entries.append(.map(["file": .string(label), "hash": .string(hash ?? "")]))
                    case let .stage(up, output):
                        guard let m = upstream[up] else { return .failure("internal: upstream \(graph.instances[up].name) missing") }
                        let dir = store.outputDir(m.key)
                        urls.append(InputArtifact(url: URL(fileURLWithPath: output.map { dir + "/" + $0 } ?? dir),
                                                  instance: graph.instances[up].name, matrix: graph.instances[up].matrix))
                        entries.append(.map(["instance": .string(graph.instances[up].name), "key": .string(m.key),
                                             "output": output.map { .string($0) } ?? .null, "hash": .string(hash ?? "")]))
                    }
                }
                inputURLs[input.name] = urls
                lineageInputs[input.name] = .list(entries)
            }
            let outDir = URL(fileURLWithPath: temp + "/out")
            let context = StageContext(instanceName: inst.name, stageName: inst.stage, matrix: inst.matrix,
                                       params: StageParams(inst.params, instance: inst.name), seed: inst.seed,
                                       outputDirectory: outDir, workingDirectory: URL(fileURLWithPath: graph.spec.directory),
                                       logger: logger, inputs: inputURLs, progressSink: options.progress)
            do {
                try inst.kind.run(context)
                let missing = inst.outputs.filter { !FileManager.default.fileExists(atPath: outDir.path + "/" + $0) }
                if !missing.isEmpty {
                    throw PipelineError.stageFailed(instance: inst.name, message: "did not produce declared output(s) " + missing.joined(separator: ", "),
                                                    log: logger.path)
                }
            } catch {
                FileTree.remove(temp)
                let message: String
                if case let PipelineError.stageFailed(_, m, _) = error { message = m } else { message = "\(error)" }
                logger.log("FAILED: \(message)")
                emit("\(tag) FAILED \(inst.name): \(message)\n        log: \(logger.path)")
                return .failure(message)
            }
            let t1 = Date()
            let iso = ISO8601DateFormatter()
            let lineage: Value = .map([
                "instance": .string(inst.name), "stage": .string(inst.stage), "pipeline": .string(graph.spec.absolutePath),
                "spec": .string(inst.location.description),
                "kind": .string(inst.kind.name), "kind_version": .string(inst.kind.version), "params": .map(inst.params),
                "matrix": .map(inst.matrix), "seed": .int(inst.seed), "inputs": .map(lineageInputs),
                "outputs": .list(inst.outputs.map { .string($0) }), "key": .string(key),
                "started": .string(iso.string(from: t0)), "finished": .string(iso.string(from: t1)),
                "duration_s": .double((t1.timeIntervalSince(t0) * 1000).rounded() / 1000),
                "host": .string(ProcessInfo.processInfo.hostName), "pid": .int(Int(getpid())),
                "user": .string(ProcessInfo.processInfo.environment["USER"] ?? ""),
            ])
            let m: Manifest
            do { m = try store.publish(temp: temp, key: key, lineage: lineage, replace: forced) } catch {
                FileTree.remove(temp)
                throw error
            }
            store.writeRef(pipelineID: planner.pipelineID, instance: inst.name, record: mat.record(key: key, contentHash: m.contentHash))
            logger.log("published \(key) in \(String(format: "%.3f", t1.timeIntervalSince(t0))) s")
            emit("\(tag) done  \(inst.name) (\(String(format: "%.2f", t1.timeIntervalSince(t0))) s)")
            return .success(m, .ran)
        } catch {
            emit("\(tag) FAILED \(inst.name): \(error)")
            return .failure("\(error)")
        }
    }
}

/// Mutable state of one run, guarded by `cond`.
private final class RunState: @unchecked Sendable {
    // Every field is read and written with `cond` locked.
    let cond = NSCondition()
    var ready: [Int] = []
    var remaining: [Int: Int] = [:]
    var manifests: [Manifest?]
    var active = 0
    var started = 0
    var stop = false
    var finished = Set<Int>()
    var skipped = Set<Int>()
    var failed: [(Int, String)] = []
    var ran: [String] = []
    var cutoff: [String] = []
    var reused: [String] = []

    init(toRun: Set<Int>, graph: PipelineGraph, manifests: [Manifest?]) {
        self.manifests = manifests
        for i in toRun.sorted() {
            let n = graph.instances[i].deps.filter { toRun.contains($0) }.count
            remaining[i] = n
            if n == 0 { ready.append(i) }
        }
    }
}
