// `auditgap run|status|dag|show|verify|gc|export|import`: the pipeline engine's commands (DESIGN.md section 2).
import Foundation
import Pipeline
import Study

enum PipelineCommands {
    static let usageLines = """
      auditgap run      [PIPELINE] [--store DIR] [-j N] [--dry-run] [--force STAGE]... [--only STAGE]... [--keep-going]
                        [--executor local|slurm] [--detach] [--slurm-partition P] [--slurm-account A] [--slurm-time T]
                        [--slurm-mem M] [--slurm-cpus N] [--slurm-gres G] [--slurm-arg ARG]... [--slurm-poll SECONDS]
                        [--slurm-probe-timeout SECONDS] [--slurm-no-probe]
      auditgap status   [PIPELINE] [--json] [--store DIR]
      auditgap dag      [PIPELINE] [--dot]
      auditgap show     STAGE [PIPELINE] [--json] [--store DIR]
      auditgap verify   [--store DIR]
      auditgap gc       [PIPELINE]... [--dry-run] [--store DIR]
      auditgap export   STAGE... --to FILE.tar [--pipeline PIPELINE] [--no-deps] [--store DIR]
      auditgap import   FILE.tar [--store DIR]
    """
    static let defaultPipeline = "pipeline.yaml"

    /// The kinds pipelines may use: the built-in `shell` plus the study's kinds.
    static func registry() -> KindRegistry { StudyKinds.registry() }

    /// Runs one pipeline command; spec and usage errors exit 2, failures exit 1.
    static func dispatch(_ command: String, _ argv: [String]) throws -> Int32 {
        do {
            switch command {
            case "run": return try run(argv)
            case "status": return try status(argv)
            case "dag": return try dag(argv)
            case "show": return try show(argv)
            case "verify": return try verify(argv)
            case "gc": return try gc(argv)
            case "export": return try export(argv)
            case "import": return try importArchive(argv)
            default: throw UsageError("unknown command '\(command)'")
            }
        } catch let error as PipelineError {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            switch error {
            case .spec, .usage: return 2
            default: return 1
            }
        }
    }

    static func store(_ args: Arguments) -> ArtifactStore {
        ArtifactStore(root: args.value("--store") ?? ArtifactStore.defaultRoot())
    }

    static func load(_ path: String?, registry: KindRegistry) throws -> PipelineGraph {
        let p = path ?? defaultPipeline
        guard FileManager.default.fileExists(atPath: p) else {
            throw PipelineError.usage("pipeline file '\(p)' not found" + (path == nil ? " (give PIPELINE or run where pipeline.yaml is)" : ""))
        }
        return try PipelineGraph(spec: PipelineSpec.load(path: p), registry: registry)
    }

    static func run(_ argv: [String]) throws -> Int32 {
        let args = try Arguments(argv, valued: Set(["--store", "-j", "--jobs", "--force", "--only", "--executor"]).union(SlurmCLI.valued),
                                 knownFlags: Set(["--dry-run", "--keep-going"]).union(SlurmCLI.flags))
        guard args.positionals.count <= 1 else { throw UsageError("run takes one PIPELINE, got \(args.positionals.joined(separator: " "))") }
        let executor = args.value("--executor") ?? "local"
        guard ["local", "slurm"].contains(executor) else { throw UsageError("--executor must be local or slurm, got '\(executor)'") }
        let slurmOptions = try SlurmCLI.options(args, enabled: executor == "slurm")
        let graph = try load(args.positionals.first, registry: registry())
        var options = RunOptions()
        options.jobs = try args.int("-j") ?? args.int("--jobs") ?? 1
        guard options.jobs >= 1 else { throw UsageError("-j needs a positive integer") }
        options.dryRun = args.flag("--dry-run")
        options.keepGoing = args.flag("--keep-going")
        options.force = args.values("--force")
        options.only = args.values("--only")
        if let slurmOptions {
            let slurm = SlurmExecutor(planner: Planner(graph: graph, store: store(args)), options: slurmOptions, output: { line in
                FileHandle.standardOutput.write(Data((line + "\n").utf8))
            })
            return try slurm.run(options)
        }
        let scheduler = Scheduler(planner: Planner(graph: graph, store: store(args)), output: { line in
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        })
        let summary = try scheduler.run(options)
        for f in summary.failed {
            FileHandle.standardError.write(Data("error: stage \(f.name) failed: \(f.message)\n".utf8))
        }
        if !options.dryRun && summary.failed.isEmpty { printFinalSummaries(scheduler.planner) }
        return summary.exitCode
    }

    /// Prints, for each final instance (no consumers) that wrote `summary.txt` (the `report`
    /// kind does), where its report is and the summary itself.
    static func printFinalSummaries(_ planner: Planner) {
        guard let statuses = try? planner.status() else { return }
        for s in statuses where planner.graph.dependents[s.index].isEmpty {
            guard let key = s.key else { continue }
            let out = planner.store.outputDir(key)
            guard let data = FileManager.default.contents(atPath: out + "/summary.txt") else { continue }
            var text = "\n== \(s.name) ==\n"
            if FileManager.default.fileExists(atPath: out + "/report.html") { text += "HTML report: \(out)/report.html\n" }
            text += String(decoding: data, as: UTF8.self)
            FileHandle.standardOutput.write(Data((text + "\n").utf8))
        }
    }

    static func status(_ argv: [String]) throws -> Int32 {
        let args = try Arguments(argv, valued: ["--store"], knownFlags: ["--json"])
        guard args.positionals.count <= 1 else { throw UsageError("status takes one PIPELINE") }
        let profile = ProcessInfo.processInfo.environment["AUDITGAP_PROFILE"] != nil
        var t = DispatchTime.now().uptimeNanoseconds
        func lap(_ what: String) {
            guard profile else { return }
            let now = DispatchTime.now().uptimeNanoseconds
            FileHandle.standardError.write(Data(String(format: "%@: %.1f ms\n", what, Double(now - t) / 1e6).utf8))
            t = now
        }
        let spec = try PipelineSpec.load(path: args.positionals.first ?? defaultPipeline)
        lap("parse")
        let graph = try PipelineGraph(spec: spec, registry: registry())
        lap("graph")
        let planner = Planner(graph: graph, store: store(args))
        lap("store")
        let statuses = try planner.status()
        lap("status")
        planner.store.statCache.save()
        // Instances queued or running on Slurm (job records of `run --executor slurm` in the store).
        let jobs = SlurmInstanceJob.active(store: planner.store, pipeline: spec.absolutePath,
                                           instances: Set(statuses.filter { $0.state != .fresh }.map(\.name)))
        if args.flag("--json") {
            let stages: [Value] = statuses.map {
                var m: [String: Value] = ["name": .string($0.name), "stage": .string(graph.instances[$0.index].stage), "state": .string($0.state.rawValue),
                      "reasons": .list($0.reasons.map { .string($0) }), "key": $0.key.map { .string($0) } ?? .null]
                if let j = jobs[$0.name] {
                    m["slurm"] = .map(["job": .string(j.taskID), "state": .string(j.state.state), "status": .string(j.state.statusWord),
                                       "run": .string(j.run), "log": .string(j.log)])
                }
                return .map(m)
            }
            print(Value.map(["stages": .list(stages)]).canonicalJSON)
            return 0
        }
        var out = ""
        let width = min(48, statuses.map(\.name.count).max() ?? 0)
        var counts: [InstanceState: Int] = [:]
        var onSlurm = 0
        for s in statuses {
            counts[s.state, default: 0] += 1
            let pad = String(repeating: " ", count: max(0, width - s.name.count))
            var word = s.state.rawValue, reasons = s.reasons
            if let j = jobs[s.name] {
                word = j.state.statusWord
                reasons.insert("slurm job \(j.taskID) \(j.state.state)" + (j.state.reason.map { " (\($0))" } ?? "") + (j.live ? "" : " as last recorded"), at: 0)
                onSlurm += 1
            }
            out += word + String(repeating: " ", count: max(1, 8 - word.count)) + s.name
            out += reasons.isEmpty ? "\n" : pad + "  " + reasons.joined(separator: "; ") + "\n"
        }
        out += "\(counts[.fresh] ?? 0) fresh, \(counts[.stale] ?? 0) stale, \(counts[.missing] ?? 0) missing"
        out += onSlurm > 0 ? " (\(onSlurm) queued or running on Slurm)\n" : "\n"
        FileHandle.standardOutput.write(Data(out.utf8))
        return 0
    }

    static func dag(_ argv: [String]) throws -> Int32 {
        let args = try Arguments(argv, valued: [], knownFlags: ["--dot"])
        let graph = try load(args.positionals.first, registry: registry())
        var out = ""
        if args.flag("--dot") {
            out += "digraph pipeline {\n  rankdir=LR;\n  node [shape=box];\n"
            for inst in graph.instances { out += "  \(dotID(inst.name)) [label=\(dotID(inst.name + "\n" + inst.kind.name))];\n" }
            for inst in graph.instances {
                for d in inst.deps { out += "  \(dotID(graph.instances[d].name)) -> \(dotID(inst.name));\n" }
            }
            out += "}\n"
        } else {
            for inst in graph.instances {
                out += "\(inst.name) (\(inst.kind.name))"
                out += inst.deps.isEmpty ? "\n" : " <- " + inst.deps.map { graph.instances[$0].name }.joined(separator: ", ") + "\n"
            }
        }
        FileHandle.standardOutput.write(Data(out.utf8))
        return 0
    }

    static func dotID(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n") + "\""
    }

    static func show(_ argv: [String]) throws -> Int32 {
        let args = try Arguments(argv, valued: ["--store"], knownFlags: ["--json"])
        guard let selector = args.positionals.first else { throw UsageError("show needs a STAGE (name or name[k=v,...])") }
        let graph = try load(args.positionals.dropFirst().first, registry: registry())
        let planner = Planner(graph: graph, store: store(args))
        let indices = try graph.select(selector).sorted()
        let statuses = try planner.status()
        var items: [Value] = []
        for i in indices {
            let inst = graph.instances[i], s = statuses[i]
            var obj: [String: Value] = [
                "name": .string(inst.name), "stage": .string(inst.stage), "kind": .string(inst.kind.name),
                "kind_version": .string(inst.kind.version), "state": .string(s.state.rawValue),
                "reasons": .list(s.reasons.map { .string($0) }), "params": .map(inst.params), "matrix": .map(inst.matrix),
                "seed": .int(inst.seed), "key": s.key.map { .string($0) } ?? .null,
                "inputs": .map(Dictionary(uniqueKeysWithValues: s.material.labels.map { ($0.key, Value.list($0.value.map { .string($0) })) })),
                "outputs": .list(inst.outputs.map { .string($0) }),
            ]
            if let key = s.key, let m = s.manifest {
                let store = planner.store
                obj["path"] = .string(store.outputDir(key))
                obj["files"] = .list(m.files.map { .map(["path": .string($0.path), "size": .int($0.size), "sha256": .string($0.sha256)]) })
                obj["content_hash"] = .string(m.contentHash)
                if let metrics = try? JSON.read(store.outputDir(key) + "/metrics.json") { obj["metrics"] = metrics }
                if let lineage = try? JSON.read(store.objectDir(key) + "/lineage.json") { obj["lineage"] = lineage }
                obj["log"] = .string(store.logPath(key))
            }
            items.append(.map(obj))
        }
        if args.flag("--json") {
            print(items.count == 1 ? items[0].prettyJSON : Value.list(items).prettyJSON, terminator: "")
            return 0
        }
        for item in items {
            print("\(item["name"]!) (\(item["kind"]!) v\(item["kind_version"]!)): \(item["state"]!)")
            if let r = item["reasons"]?.listValue, !r.isEmpty { print("  why:     " + r.map(\.description).joined(separator: "; ")) }
            if let k = item["key"], k != .null { print("  key:     \(k)") }
            if let p = item["path"] { print("  path:    \(p)") }
            print("  seed:    \(item["seed"]!)")
            for (k, v) in (item["params"]?.mapValue ?? [:]).sorted(by: { $0.key < $1.key }) { print("  param    \(k) = \(v.canonicalJSON)") }
            for (k, v) in (item["inputs"]?.mapValue ?? [:]).sorted(by: { $0.key < $1.key }) {
                print("  input    \(k) <- " + (v.listValue ?? []).map(\.description).joined(separator: ", "))
            }
            for f in item["files"]?.listValue ?? [] { print("  output   \(f["path"]!) (\(f["size"]!) bytes, sha256 \(f["sha256"]!.description.prefix(12)))") }
            if let m = item["metrics"]?.mapValue {
                for (k, v) in m.sorted(by: { $0.key < $1.key }) { print("  metric   \(k) = \(v.canonicalJSON)") }
            }
            if let l = item["lineage"] {
                print("  lineage: computed \(l["finished"]?.description ?? "?") on \(l["host"]?.description ?? "?") in \(l["duration_s"]?.description ?? "?") s")
                for (k, v) in (l["inputs"]?.mapValue ?? [:]).sorted(by: { $0.key < $1.key }) {
                    for e in v.listValue ?? [] {
                        if let key = e["key"]?.stringValue { print("           \(k): \(e["instance"]?.description ?? "") key \(key.prefix(12))") }
                    }
                }
            }
            if let log = item["log"] { print("  log:     \(log)") }
        }
        return 0
    }

    static func verify(_ argv: [String]) throws -> Int32 {
        let args = try Arguments(argv, valued: ["--store"], knownFlags: ["--json"])
        let s = store(args)
        let (checked, problems) = s.verifyAll()
        for p in problems { print("corrupted \(p.key): " + p.problems.joined(separator: "; ")) }
        print(problems.isEmpty ? "verified \(checked) objects: all intact" : "verified \(checked) objects: \(problems.count) corrupted or incomplete (left in place)")
        return problems.isEmpty ? 0 : 1
    }

    static func gc(_ argv: [String]) throws -> Int32 {
        let args = try Arguments(argv, valued: ["--store"], knownFlags: ["--dry-run"])
        let s = store(args)
        let paths = args.positionals.isEmpty ? [defaultPipeline] : args.positionals
        let reg = registry()
        let planners = try paths.map { Planner(graph: try load($0, registry: reg), store: s) }
        let result = try s.gc(keeping: try s.referencedKeys(planners), dryRun: args.flag("--dry-run"))
        for k in result.removed { print((args.flag("--dry-run") ? "would remove " : "removed ") + k) }
        print("\(result.kept) objects kept, \(result.removed.count) \(args.flag("--dry-run") ? "would be " : "")removed")
        return 0
    }

    static func export(_ argv: [String]) throws -> Int32 {
        let args = try Arguments(argv, valued: ["--store", "--to", "--pipeline"], knownFlags: ["--no-deps"])
        guard let to = args.value("--to") else { throw UsageError("export needs --to FILE.tar") }
        guard !args.positionals.isEmpty else { throw UsageError("export needs at least one STAGE") }
        let graph = try load(args.value("--pipeline"), registry: registry())
        let s = store(args)
        let statuses = try Planner(graph: graph, store: s).status()
        var selected = Set<Int>()
        for sel in args.positionals { selected.formUnion(try graph.select(sel)) }
        if !args.flag("--no-deps") {
            for i in selected.sorted(by: >) { selected.formUnion(ancestors(i, graph)) }
        }
        var keys: [String] = []
        for i in selected.sorted() {
            guard statuses[i].state == .fresh, let k = statuses[i].key else {
                throw PipelineError.usage("\(statuses[i].name) is \(statuses[i].state) (\(statuses[i].reasons.joined(separator: "; "))); run it before exporting")
            }
            keys.append(k)
        }
        try s.export(keys: keys, to: to)
        print("exported \(keys.count) objects to \(to)")
        return 0
    }

    static func ancestors(_ i: Int, _ graph: PipelineGraph) -> Set<Int> {
        var out = Set<Int>()
        var stack = graph.instances[i].deps
        while let d = stack.popLast() {
            if out.insert(d).inserted { stack += graph.instances[d].deps }
        }
        return out
    }

    static func importArchive(_ argv: [String]) throws -> Int32 {
        let args = try Arguments(argv, valued: ["--store"], knownFlags: [])
        guard args.positionals.count == 1 else { throw UsageError("import needs one FILE.tar") }
        let r = try store(args).importArchive(args.positionals[0])
        for c in r.corrupted { print("corrupted \(c.key): " + c.problems.joined(separator: "; ") + " (not imported)") }
        print("imported \(r.imported.count) objects, \(r.alreadyPresent.count) already present, \(r.corrupted.count) corrupted")
        return r.corrupted.isEmpty ? 0 : 1
    }
}
