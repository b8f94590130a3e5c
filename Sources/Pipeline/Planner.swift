// Cache keys and per-instance status (fresh / stale / missing) with reasons.
import Foundation

/// What an instance's cache key is computed from.
public struct KeyMaterial: Sendable {
    public var kind: String
    public var kindVersion: String
    public var params: [String: Value]
    /// Input name -> content hashes of its sources (nil entries: upstream not computed yet).
    public var inputs: [String: [String?]]
    /// Input name -> readable labels of its sources (`file data.jsonl`, `pgd[eps=0.1]`).
    public var labels: [String: [String]]
    public var seed: Int
    public var outputs: [String]

    /// Whether every input hash is known.
    public var complete: Bool { inputs.values.allSatisfy { $0.allSatisfy { $0 != nil } } }

    /// The canonical encoding hashed into the key (independent of YAML order and formatting).
    public var canonical: Value {
        .map(["v": .int(1), "kind": .string(kind), "kind_version": .string(kindVersion), "params": .map(params),
              "inputs": .map(inputs.mapValues { .list($0.map { .string($0 ?? "?") }) }),
              "seed": .int(seed), "outputs": .list(outputs.map { .string($0) })])
    }

    /// SHA-256 of the canonical encoding; nil while an upstream hash is unknown.
    public var key: String? { complete ? SHA256.hex(of: canonical.canonicalBytes) : nil }

    /// The refs record: the material plus labels, key and time.
    func record(key: String, contentHash: String) -> Value {
        .map(["key": .string(key), "content_hash": .string(contentHash), "kind": .string(kind),
              "kind_version": .string(kindVersion), "params": .map(params), "seed": .int(seed),
              "inputs": .map(inputs.mapValues { .list($0.map { .string($0 ?? "?") }) }),
              "labels": .map(labels.mapValues { .list($0.map { .string($0) }) }),
              "outputs": .list(outputs.map { .string($0) }),
              "time": .string(ISO8601DateFormatter().string(from: Date()))])
    }

    /// Why this material differs from a previous record, in words.
    func differences(from record: Value) -> [String] {
        var out: [String] = []
        if let k = record["kind"]?.stringValue, k != kind { out.append("kind changed \(k) -> \(kind)") } else if let v = record["kind_version"]?.stringValue, v != kindVersion {
            out.append("kind version \(v) -> \(kindVersion)")
        }
        let old = record["params"]?.mapValue ?? [:]
        for name in Set(old.keys).union(params.keys).sorted() {
            switch (old[name], params[name]) {
            case let (a?, b?) where a != b: out.append("param \(name) changed \(Planner.short(a)) -> \(Planner.short(b))")
            case let (nil, b?): out.append("param \(name) added (\(Planner.short(b)))")
            case let (a?, nil): out.append("param \(name) removed (was \(Planner.short(a)))")
            default: break
            }
        }
        if let s = record["seed"]?.intValue, s != seed { out.append("seed \(s) -> \(seed)") }
        let oldInputs = record["inputs"]?.mapValue ?? [:]
        let oldLabels = record["labels"]?.mapValue ?? [:]
        for name in Set(oldInputs.keys).union(inputs.keys).sorted() {
            let now = inputs[name], was = oldInputs[name]?.listValue?.compactMap(\.stringValue)
            let label = (labels[name] ?? []).joined(separator: ", ")
            if now == nil { out.append("input \(name) removed"); continue }
            guard let was else { out.append("input \(name) added (\(label))"); continue }
            let wasLabels = oldLabels[name]?.listValue?.compactMap(\.stringValue) ?? []
            let nowLabels = labels[name] ?? []
            if wasLabels != nowLabels {
                let added = nowLabels.filter { !wasLabels.contains($0) }, removed = wasLabels.filter { !nowLabels.contains($0) }
                var parts: [String] = []
                if !added.isEmpty { parts.append("added " + Planner.list(added)) }
                if !removed.isEmpty { parts.append("removed " + Planner.list(removed)) }
                out.append("input \(name): " + (parts.isEmpty ? "sources reordered" : parts.joined(separator: ", ")))
                continue
            }
            guard let now, now.allSatisfy({ $0 != nil }) else { continue }  // upstream reruns: reported separately
            let changed = zip(now, was).enumerated().filter { $0.element.0 != $0.element.1 }.map { labels[name]?[$0.offset] ?? name }
            if !changed.isEmpty { out.append("input \(name) changed (\(changed.joined(separator: ", ")))") }
        }
        let oldOutputs = record["outputs"]?.listValue?.compactMap(\.stringValue) ?? []
        if oldOutputs != outputs { out.append("outputs changed [\(oldOutputs.joined(separator: ", "))] -> [\(outputs.joined(separator: ", "))]") }
        return out
    }
}

/// The state of one instance.
public enum InstanceState: String, Sendable {
    case fresh, stale, missing
}

/// Status of one instance: state, reasons, and (when known) key and manifest.
public struct InstanceStatus: Sendable {
    public var index: Int
    public var name: String
    public var state: InstanceState
    public var reasons: [String]
    public var key: String?
    public var manifest: Manifest?
    public var material: KeyMaterial
}

/// Computes keys and statuses over a graph and a store.
public struct Planner: Sendable {
    public let graph: PipelineGraph
    public let store: ArtifactStore
    public let pipelineID: String

    public init(graph: PipelineGraph, store: ArtifactStore) {
        self.graph = graph
        self.store = store
        pipelineID = String(SHA256.hex(of: graph.spec.absolutePath).prefix(16))
    }

    /// At most five names, then "and N more".
    static func list(_ names: [String]) -> String {
        names.prefix(5).joined(separator: ", ") + (names.count > 5 ? " and \(names.count - 5) more" : "")
    }

    static func short(_ v: Value) -> String {
        let s = v.canonicalJSON
        return s.count > 60 ? String(s.prefix(57)) + "..." : s
    }

    /// The key material of an instance given what is known of its upstreams' manifests.
    public func material(_ i: Int, upstream: (Int) -> Manifest?) throws -> KeyMaterial {
        let inst = graph.instances[i]
        var inputs: [String: [String?]] = [:]
        var labels: [String: [String]] = [:]
        for input in inst.inputs {
            var hashes: [String?] = []
            var ls: [String] = []
            for source in input.sources {
                switch source {
                case let .file(path, label):
                    do { hashes.append("file:" + (try store.statCache.contentHash(path))) } catch {
                        throw PipelineError.spec(.fileNotFound, input.location, key: "stages.\(inst.stage).inputs.\(input.name)",
                                                 message: "input file '\(label)' is unreadable: \(error)")
                    }
                    ls.append("file " + label)
                case let .stage(up, output):
                    let upName = graph.instances[up].name
                    if let m = upstream(up) {
                        if let output {
                            hashes.append(m.files.first { $0.path == output }.map { "out:" + $0.sha256 } ?? "out:absent")
                        } else {
                            hashes.append("obj:" + m.contentHash)
                        }
                    } else {
                        hashes.append(nil)
                    }
                    ls.append(output.map { "\(upName)/\($0)" } ?? upName)
                }
            }
            inputs[input.name] = hashes
            labels[input.name] = ls
        }
        return KeyMaterial(kind: inst.kind.name, kindVersion: inst.kind.version, params: inst.params, inputs: inputs,
                           labels: labels, seed: inst.seed, outputs: inst.outputs)
    }

    /// Status of every instance in topological order. `forced` instances are reported stale.
    public func status(forced: Set<Int> = []) throws -> [InstanceStatus] {
        var result: [InstanceStatus] = []
        result.reserveCapacity(graph.instances.count)
        var manifests: [Manifest?] = Array(repeating: nil, count: graph.instances.count)
        var rerun = [Bool](repeating: false, count: graph.instances.count)
        for i in graph.instances.indices {
            let inst = graph.instances[i]
            let mat = try material(i, upstream: { manifests[$0] })
            var reasons: [String] = []
            var state = InstanceState.fresh
            let key = mat.key
            if let key, !forced.contains(i) {
                switch store.quickCheck(key) {
                case let .ok(m):
                    manifests[i] = m
                    result.append(InstanceStatus(index: i, name: inst.name, state: .fresh, reasons: [], key: key, manifest: m, material: mat))
                    continue
                case let .corrupt(problems):
                    reasons.append("artifact \(key.prefix(12)) corrupted (\(problems.joined(separator: "; "))); will recompute")
                case .absent:
                    break
                }
            }
            rerun[i] = true
            let record = store.readRef(pipelineID: pipelineID, instance: inst.name)
            if forced.contains(i) { reasons.insert("forced (--force)", at: 0) }
            if let record { reasons += mat.differences(from: record) }
            let upstreamStale = inst.deps.filter { rerun[$0] }.map { graph.instances[$0].name }
            for u in upstreamStale.prefix(5) { reasons.append("upstream \(u) will rerun") }
            if upstreamStale.count > 5 { reasons.append("and \(upstreamStale.count - 5) more upstream instances will rerun") }
            if record == nil && !reasons.contains(where: { $0.contains("corrupted") }) {
                state = .missing
                reasons.insert("never computed", at: 0)
            } else {
                state = .stale
                if reasons.isEmpty { reasons.append("artifact missing from the store (deleted or never published)") }
            }
            result.append(InstanceStatus(index: i, name: inst.name, state: state, reasons: reasons, key: key, manifest: nil, material: mat))
        }
        return result
    }
}
