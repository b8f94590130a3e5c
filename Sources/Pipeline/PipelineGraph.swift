// Expands a spec into stage instances (matrix, interpolation, references, validation) in DAG order.
import Foundation

/// Where an input comes from.
public enum InputSource: Sendable, Hashable {
    /// A file or directory outside the store, hashed by content.
    case file(path: String, label: String)
    /// Another instance's whole output directory (`output == nil`) or one of its files.
    case stage(instance: Int, output: String?)
}

/// One resolved input of an instance.
public struct InstanceInput: Sendable {
    public var name: String
    public var sources: [InputSource]
    public var location: SourceLocation
}

/// One stage instance: a stage with one matrix combination, fully resolved and validated.
public struct StageInstance: Sendable {
    /// `stage` or `stage[k=v,...]` (keys sorted).
    public var name: String
    public var stage: String
    public var matrix: [String: Value]
    public var kind: any StageKind
    public var params: [String: Value]
    public var inputs: [InstanceInput]
    /// Declared output files.
    public var outputs: [String]
    public var seed: Int
    public var location: SourceLocation
    /// Upstream instance indices (unique, sorted).
    public var deps: [Int]
}


/// The expanded pipeline: instances in topological order (every dependency before its users).
public struct PipelineGraph: Sendable {
    public let spec: PipelineSpec
    public private(set) var instances: [StageInstance] = []
    /// Instance name -> index.
    public private(set) var index: [String: Int] = [:]
    /// Stage name -> its instance indices (matrix order).
    public private(set) var stageInstances: [String: [Int]] = [:]
    /// Index -> indices of instances that consume it.
    public private(set) var dependents: [[Int]] = []
    /// Stage -> full selector text (`k=v,...`, keys sorted) -> instance, for O(1) reference lookup.
    private var selectorIndex: [String: [String: Int]] = [:]

    /// Expands and validates `spec` against the kinds in `registry`.
    public init(spec: PipelineSpec, registry: KindRegistry) throws {
        self.spec = spec
        let byName = Dictionary(spec.stages.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        // 1. Kinds and matrix combinations.
        var kinds: [String: any StageKind] = [:]
        var combos: [String: [[String: Value]]] = [:]
        let globalScope = InterpolationScope(params: spec.params, matrix: [:])
        for stage in spec.stages {
            guard let kind = registry.kind(named: stage.kind) else {
                throw PipelineError.spec(.unknownStageKind, stage.kindLocation, key: "stages.\(stage.name).kind",
                                         message: "unknown stage kind '\(stage.kind)'" + Suggest.hint(stage.kind, registry.names)
                                             + "; available: " + registry.names.joined(separator: ", "))
            }
            kinds[stage.name] = kind
            combos[stage.name] = try PipelineGraph.expandMatrix(stage, scope: globalScope)
        }
        for (kind, loc) in spec.defaultsLocations.sorted(by: { $0.key < $1.key }) where registry.kind(named: kind) == nil {
            throw PipelineError.spec(.unknownStageKind, loc, key: "defaults.\(kind)",
                                     message: "defaults for unknown stage kind '\(kind)'" + Suggest.hint(kind, registry.names)
                                         + "; available: " + registry.names.joined(separator: ", "))
        }
        // 2. Stage-level references, missing stages, cycles.
        var stageDeps: [String: [(String, SourceLocation)]] = [:]
        for stage in spec.stages {
            var deps: [(String, SourceLocation)] = []
            for input in stage.inputs {
                for ref in input.refs {
                    let text = ref.scalarText ?? ""
                    if text.hasPrefix("file:") { continue }
                    let name = InputReference.stageName(of: text)
                    guard byName[name] != nil else {
                        throw PipelineError.spec(.missingReference, ref.location, key: "stages.\(stage.name).inputs.\(input.name)",
                                                 message: "reference to missing stage '\(name)'" + Suggest.hint(name, byName.keys)
                                                     + " (file inputs are written file:PATH)")
                    }
                    deps.append((name, ref.location))
                }
            }
            stageDeps[stage.name] = deps
        }
        let order = try PipelineGraph.topologicalStages(spec.stages, deps: stageDeps)
        // 3. Instances in stage order (missing input files are collected, then reported together).
        var missing: [(location: SourceLocation, key: String, message: String)] = []
        for stageName in order {
            guard let stage = byName[stageName], let kind = kinds[stageName] else { continue }
            for combo in combos[stageName] ?? [[:]] {
                let inst = try makeInstance(stage, kind: kind, matrix: combo, byName: byName, kinds: kinds, missing: &missing)
                index[inst.name] = instances.count
                selectorIndex[stageName, default: [:]][PipelineGraph.selectorText(inst.matrix)] = instances.count
                stageInstances[stageName, default: []].append(instances.count)
                instances.append(inst)
            }
        }
        if let first = missing.first {
            // Every missing file once (a matrix stage repeats its inputs), with its place in the spec.
            var seen = Set<String>()
            let lines = missing.filter { seen.insert($0.message).inserted }.map { "  \($0.location) \($0.key): \($0.message)" }
            let message = lines.count == 1 ? first.message
                : "\(lines.count) input files not found:\n" + lines.joined(separator: "\n")
            throw PipelineError.spec(.fileNotFound, first.location, key: first.key, message: message)
        }
        dependents = Array(repeating: [], count: instances.count)
        for (i, inst) in instances.enumerated() {
            for d in inst.deps { dependents[d].append(i) }
        }
    }

    /// Every instance index downstream of `roots` (excluding the roots), in topological order.
    public func descendants(of roots: Set<Int>) -> [Int] {
        var marked = roots
        var out: [Int] = []
        for i in instances.indices where !roots.contains(i) {
            if instances[i].deps.contains(where: { marked.contains($0) }) {
                marked.insert(i)
                out.append(i)
            }
        }
        return out
    }

    /// Instance indices matching a selector: `stage`, `stage[k=v,...]`, or `stage[*]`.
    public func select(_ selector: String) throws -> [Int] {
        let name = InputReference.stageName(of: selector)
        guard let all = stageInstances[name] else {
            throw PipelineError.usage("no stage or instance '\(selector)'" + Suggest.hint(name, stageInstances.keys))
        }
        guard let open = selector.firstIndex(of: "[") else { return all }
        guard selector.hasSuffix("]") else { throw PipelineError.usage("malformed instance selector '\(selector)'; expected NAME[k=v,...]") }
        let body = String(selector[selector.index(after: open)..<selector.index(before: selector.endIndex)])
        let filter = try InputReference.parseSelector(body)
        let out = all.filter { InputReference.matches(instances[$0].matrix, filter) }
        if out.isEmpty {
            throw PipelineError.usage("no instance of '\(name)' matches [\(body)]; instances: "
                                      + all.map { instances[$0].name }.joined(separator: ", "))
        }
        return out
    }

    static func selectorText(_ matrix: [String: Value]) -> String {
        matrix.keys.sorted().map { "\($0)=\(matrix[$0]!.description)" }.joined(separator: ",")
    }

    /// Renders `stage[k=v,...]` with sorted keys.
    public static func instanceName(_ stage: String, _ matrix: [String: Value]) -> String {
        if matrix.isEmpty { return stage }
        return stage + "[" + matrix.keys.sorted().map { "\($0)=\(matrix[$0]!.description)" }.joined(separator: ",") + "]"
    }

    private static func expandMatrix(_ stage: StageSpec, scope: InterpolationScope) throws -> [[String: Value]] {
        var result: [[String: Value]] = [[:]]
        for axis in stage.matrix.sorted(by: { $0.key < $1.key }) {
            let key = "stages.\(stage.name).matrix.\(axis.key)"
            let v = try scope.resolve(axis.values, key: key)
            guard let values = v.listValue, !values.isEmpty else {
                throw PipelineError.spec(.wrongType, axis.values.location, key: key, message: "expected a non-empty list of values, got \(v.typeName)")
            }
            var seen = Set<String>()
            for value in values {
                switch value {
                case .string, .int, .double, .bool: break
                default:
                    throw PipelineError.spec(.wrongType, axis.values.location, key: key, message: "matrix values must be scalars, got \(value.typeName)")
                }
                if !seen.insert(value.description).inserted {
                    throw PipelineError.spec(.duplicateName, axis.values.location, key: key, message: "duplicate matrix value '\(value)'")
                }
            }
            result = result.flatMap { partial in values.map { var p = partial; p[axis.key] = $0; return p } }
        }
        return result
    }

    private static func topologicalStages(_ stages: [StageSpec], deps: [String: [(String, SourceLocation)]]) throws -> [String] {
        // Depth-first search in declaration order; a back edge is a cycle, printed in full.
        var state: [String: Int] = [:]  // 1 visiting, 2 done
        var order: [String] = []
        var path: [String] = []
        func visit(_ name: String) throws {
            if state[name] == 2 { return }
            path.append(name)
            state[name] = 1
            for (d, loc) in deps[name] ?? [] {
                if state[d] == 1 {
                    let start = path.firstIndex(of: d) ?? 0
                    let cycle = Array(path[start...]) + [d]
                    throw PipelineError.spec(.cycle, loc, key: "stages.\(name).inputs",
                                             message: "dependency cycle: " + cycle.joined(separator: " -> "))
                }
                try visit(d)
            }
            state[name] = 2
            path.removeLast()
            order.append(name)
        }
        for s in stages { try visit(s.name) }
        return order
    }

    private func makeInstance(_ stage: StageSpec, kind: any StageKind, matrix: [String: Value],
                              byName: [String: StageSpec], kinds: [String: any StageKind],
                              missing: inout [(location: SourceLocation, key: String, message: String)]) throws -> StageInstance {
        let scope = InterpolationScope(params: spec.params, matrix: matrix)
        let name = PipelineGraph.instanceName(stage.name, matrix)
        let base = "stages.\(stage.name)"
        // Params: kind defaults from the spec, then the stage's own; validated against the schema.
        var raw: [(String, YAMLNode.Pair)] = []
        for p in (spec.defaults[stage.kind] ?? []) + stage.params {
            let k = p.key.scalarText ?? ""
            raw.removeAll { $0.0 == k }
            raw.append((k, p))
        }
        let schema = kind.paramsSchema
        var params: [String: Value] = [:]
        for (k, p) in raw {
            let key = "\(base).params.\(k)"
            guard let ps = schema.spec(k) else {
                if schema.allowsExtra {
                    params[k] = try scope.resolve(p.value, key: key)
                    continue
                }
                let names = schema.params.map(\.name)
                throw PipelineError.spec(.unknownKey, p.key.location, key: key,
                                         message: "unknown param '\(k)' for kind '\(kind.name)'" + Suggest.hint(k, names)
                                             + (names.isEmpty ? " (this kind takes no params)" : "; expected one of: " + names.joined(separator: ", ")))
            }
            var v = try scope.resolve(p.value, key: key)
            if case .string = ps.type, InterpolationScope.mayInterpolate(p.value.scalarText ?? "") {
                switch v {
                case .int, .double, .bool: v = .string(v.description)  // "${params.n}" into a string param
                default: break
                }
            }
            guard ps.type.accepts(v) || (v == .null && !ps.required) else {
                throw PipelineError.spec(.wrongType, p.value.location, key: key,
                                         message: "expected \(ps.type), got \(v.typeName) \(v.canonicalJSON)")
            }
            if let choices = ps.choices, let s = v.stringValue, !choices.contains(s) {
                throw PipelineError.spec(.invalidValue, p.value.location, key: key,
                                         message: "expected one of \(choices.joined(separator: ", ")), got '\(s)'" + Suggest.hint(s, choices))
            }
            params[k] = v
        }
        for ps in schema.params where params[ps.name] == nil {
            if let d = ps.defaultValue { params[ps.name] = d } else if ps.required {
                throw PipelineError.spec(.missingKey, stage.location, key: "\(base).params",
                                         message: "missing required param '\(ps.name)' (\(ps.type)) for kind '\(kind.name)'")
            }
        }
        // Outputs.
        var outputs: [String]
        switch kind.outputs {
        case let .fixed(names):
            if let loc = stage.outputsLocation {
                throw PipelineError.spec(.unknownKey, loc, key: "\(base).outputs",
                                         message: "kind '\(kind.name)' declares its own outputs (\(names.joined(separator: ", "))); remove 'outputs'")
            }
            outputs = names
        case .declaredByStage:
            guard let outs = stage.outputs else {
                throw PipelineError.spec(.missingKey, stage.location, key: "\(base).outputs",
                                         message: "kind '\(kind.name)' needs 'outputs': the list of files the stage writes into $AUDITGAP_OUT")
            }
            outputs = try outs.map { node in
                let v = try scope.resolve(node, key: "\(base).outputs")
                return v.description
            }
        }
        outputs = Array(Set(outputs)).sorted()
        // Inputs.
        var inputs: [InstanceInput] = []
        var deps = Set<Int>()
        for decl in stage.inputs {
            let key = "\(base).inputs.\(decl.name)"
            var sources: [InputSource] = []
            for ref in decl.refs {
                let text = try scope.resolve(ref, key: key).description
                if text.hasPrefix("file:") {
                    let rel = String(text.dropFirst(5))
                    guard !rel.isEmpty else {
                        throw PipelineError.spec(.invalidValue, ref.location, key: key, message: "expected file:PATH, got an empty path")
                    }
                    let abs = PipelineSpec.absolute(rel.hasPrefix("/") ? rel : stage.directory + "/" + rel)
                    guard FileManager.default.fileExists(atPath: abs) else {
                        missing.append((ref.location, key, "input file '\(rel)' not found (resolved to \(abs))"))
                        sources.append(.file(path: abs, label: rel))
                        continue
                    }
                    sources.append(.file(path: abs, label: rel))
                    continue
                }
                let r = try InputReference.parse(text, at: ref.location, key: key)
                guard let upstream = stageInstances[r.stage], let upKind = kinds[r.stage] else {
                    throw PipelineError.spec(.missingReference, ref.location, key: key, message: "reference to missing stage '\(r.stage)'")
                }
                var matched = upstream
                if let filter = r.filter {
                    let axes = Set(byName[r.stage]?.matrix.map(\.key) ?? [])
                    for (k, _) in filter where !axes.contains(k) {
                        throw PipelineError.spec(.missingReference, ref.location, key: key,
                                                 message: "stage '\(r.stage)' has no matrix key '\(k)'" + Suggest.hint(k, axes)
                                                     + (axes.isEmpty ? " (it has no matrix)" : "; matrix keys: " + axes.sorted().joined(separator: ", ")))
                    }
                    let exact = filter.count == axes.count ? filter.sorted { $0.0 < $1.0 }.map { "\($0.0)=\($0.1)" }.joined(separator: ",") : nil
                    if let exact, let hit = selectorIndex[r.stage]?[exact] {
                        matched = [hit]
                    } else {
                        matched = upstream.filter { InputReference.matches(instances[$0].matrix, filter) }
                    }
                    guard !matched.isEmpty else {
                        throw PipelineError.spec(.missingReference, ref.location, key: key,
                                                 message: "no instance of '\(r.stage)' matches '\(text)'; instances: "
                                                     + upstream.prefix(8).map { instances[$0].name }.joined(separator: ", ")
                                                     + (upstream.count > 8 ? ", ..." : ""))
                    }
                }
                if let out = r.output {
                    let declared = instances[matched[0]].outputs
                    guard declared.contains(out) else {
                        throw PipelineError.spec(.missingOutput, ref.location, key: key,
                                                 message: "stage '\(r.stage)' (kind \(upKind.name)) has no output '\(out)'" + Suggest.hint(out, declared)
                                                     + (declared.isEmpty ? "" : "; outputs: " + declared.joined(separator: ", ")))
                    }
                }
                for m in matched {
                    sources.append(.stage(instance: m, output: r.output))
                    deps.insert(m)
                }
            }
            inputs.append(InstanceInput(name: decl.name, sources: sources, location: decl.location))
        }
        if case let .named(specs) = kind.inputs {
            for input in inputs {
                guard let s = specs.first(where: { $0.name == input.name }) else {
                    let names = specs.map(\.name)
                    throw PipelineError.spec(.unknownKey, input.location, key: "\(base).inputs.\(input.name)",
                                             message: "unknown input '\(input.name)' for kind '\(kind.name)'" + Suggest.hint(input.name, names)
                                                 + "; expected: " + names.joined(separator: ", "))
                }
                if !s.multiple && input.sources.count > 1 {
                    throw PipelineError.spec(.wrongType, input.location, key: "\(base).inputs.\(input.name)",
                                             message: "input '\(input.name)' of kind '\(kind.name)' takes one artifact, got \(input.sources.count)")
                }
            }
            for s in specs where s.required && !inputs.contains(where: { $0.name == s.name }) {
                throw PipelineError.spec(.missingKey, stage.location, key: "\(base).inputs",
                                         message: "missing required input '\(s.name)' for kind '\(kind.name)'")
            }
        }
        do {
            try kind.check(StageParams(params, instance: name), inputNames: inputs.map(\.name))
        } catch {
            let (key, message): (String?, String)
            switch error {
            case let f as StageCheckFailure: (key, message) = (f.key, f.message)
            case let PipelineError.stageInput(_, param, text): (key, message) = (param, text)
            default: (key, message) = (nil, "\(error)")
            }
            // The place of the param or input the key starts with (`params.judges[0].kind`: judges).
            let parts = key.map { $0.split(separator: ".", maxSplits: 1).map(String.init) } ?? []
            let head = parts.count > 1 ? String(parts[1].prefix { $0 != "." && $0 != "[" }) : ""
            // A param's place is that of the deepest node the key names (`judges[0].kind`).
            let location = parts.first == "params"
                ? raw.last(where: { $0.0 == head })?.1.value.descendant(parts[1].dropFirst(head.count)).location
                : parts.first == "inputs" ? inputs.first(where: { $0.name == head })?.location : nil
            throw PipelineError.spec(.invalidValue, location ?? stage.location, key: key.map { "\(base).\($0)" } ?? base,
                                     message: message)
        }
        return StageInstance(name: name, stage: stage.name, matrix: matrix, kind: kind, params: params, inputs: inputs,
                             outputs: outputs, seed: stage.seed ?? spec.seed, location: stage.location, deps: deps.sorted())
    }
}

/// A parsed stage reference: `stage`, `stage[k=v,...]`, `stage[*]`, each optionally with `/output`.
struct InputReference {
    var stage: String
    /// nil: every instance.
    var filter: [(String, String)]?
    var output: String?

    static func stageName(of text: String) -> String {
        let end = text.firstIndex(where: { $0 == "[" || $0 == "/" }) ?? text.endIndex
        return String(text[..<end])
    }

    static func parseSelector(_ body: String) throws -> [(String, String)]? {
        let trimmed = trim(Substring(body))
        if trimmed == "*" { return nil }
        return try trimmed.split(separator: ",").map { part in
            guard let eq = part.firstIndex(of: "=") else {
                throw PipelineError.usage("malformed selector '\(part)'; expected key=value")
            }
            let k = trim(part[..<eq]), v = trim(part[part.index(after: eq)...])
            guard !k.isEmpty else { throw PipelineError.usage("malformed selector '\(part)'; expected key=value") }
            return (k, v)
        }
    }

    /// Strips spaces (cheaper than Foundation's trimming on this hot path).
    static func trim(_ s: Substring) -> String {
        var t = s
        while t.first == " " { t = t.dropFirst() }
        while t.last == " " { t = t.dropLast() }
        return String(t)
    }

    static func matches(_ matrix: [String: Value], _ filter: [(String, String)]?) -> Bool {
        guard let filter else { return true }
        return filter.allSatisfy { k, v in
            guard let m = matrix[k] else { return false }
            if m.description == v { return true }
            if let a = m.doubleValue, let b = Double(v) { return a == b }
            return false
        }
    }

    static func parse(_ text: String, at location: SourceLocation, key: String) throws -> InputReference {
        let name = stageName(of: text)
        var rest = Substring(text.dropFirst(name.count))
        var filter: [(String, String)]?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else {
                throw PipelineError.spec(.invalidValue, location, key: key, message: "unclosed '[' in reference '\(text)'; expected STAGE[k=v,...]")
            }
            do { filter = try parseSelector(String(rest[rest.index(after: rest.startIndex)..<close])) } catch {
                throw PipelineError.spec(.invalidValue, location, key: key, message: "\(error) in reference '\(text)'")
            }
            rest = rest[rest.index(after: close)...]
        }
        var output: String?
        if rest.hasPrefix("/") {
            output = String(rest.dropFirst())
        } else if !rest.isEmpty {
            throw PipelineError.spec(.invalidValue, location, key: key,
                                     message: "malformed reference '\(text)'; expected file:PATH, STAGE, STAGE[k=v,...] or STAGE[...]/OUTPUT")
        }
        return InputReference(stage: name, filter: filter, output: output)
    }
}
