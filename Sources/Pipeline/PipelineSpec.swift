// The typed pipeline spec read from YAML: params, defaults, includes, stages (with source positions).
import Foundation

/// One declared input of a stage: a name and one or more references (`file:PATH`, `STAGE`,
/// `STAGE[k=v,...]`, `STAGE[*]`, optionally followed by `/OUTPUT`).
public struct InputDecl: Sendable {
    public var name: String
    public var location: SourceLocation
    /// Scalar nodes holding the references (before interpolation).
    public var refs: [YAMLNode]
}

/// One matrix axis: a key and its values (a list, or a `${params.x}` that resolves to a list).
public struct MatrixAxis: Sendable {
    public var key: String
    public var location: SourceLocation
    public var values: YAMLNode
}

/// One stage as written in the spec.
public struct StageSpec: Sendable {
    public var name: String
    public var location: SourceLocation
    public var kind: String
    public var kindLocation: SourceLocation
    public var params: [YAMLNode.Pair]
    public var inputs: [InputDecl]
    public var matrix: [MatrixAxis]
    public var outputs: [YAMLNode]?
    public var outputsLocation: SourceLocation?
    public var seed: Int?
    /// The directory relative file inputs resolve against (the file that declared the stage).
    public var directory: String
    /// Slurm resources (`resources:`), used by the Slurm executor only.
    public var resources: StageResources? = nil
}

/// A parsed pipeline: global params, per-kind defaults, stages; includes already merged.
public struct PipelineSpec: Sendable {
    /// The main file as given and its absolute path.
    public var file: String
    public var absolutePath: String
    public var directory: String
    public var params: [String: Value] = [:]
    public var seed: Int = 0
    /// kind name -> default params for every stage of that kind.
    public var defaults: [String: [YAMLNode.Pair]] = [:]
    /// kind name -> where its defaults were declared (for errors).
    public var defaultsLocations: [String: SourceLocation] = [:]
    public var stages: [StageSpec] = []
    /// kind name -> Slurm resources for every stage of that kind (top-level `resources:`).
    public var kindResources: [String: SlurmResources] = [:]

    static let topKeys = ["params", "stages", "include", "defaults", "seed", "resources"]
    static let stageKeys = ["kind", "inputs", "params", "matrix", "outputs", "seed", "doc", "resources"]

    /// Loads a pipeline file and its includes.
    public static func load(path: String) throws -> PipelineSpec {
        let abs = absolute(path)
        var spec = PipelineSpec(file: path, absolutePath: abs, directory: (abs as NSString).deletingLastPathComponent)
        var seedSet = false
        try spec.merge(file: path, absolutePath: abs, chain: [], isMain: true, seedSet: &seedSet)
        return spec
    }

    static func absolute(_ path: String) -> String {
        let p = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        return (p as NSString).standardizingPath
    }

    private mutating func merge(file: String, absolutePath: String, chain: [String], isMain: Bool, seedSet: inout Bool) throws {
        guard let data = FileManager.default.contents(atPath: absolutePath) else {
            throw PipelineError.io(path: file, message: "cannot read pipeline file")
        }
        let text = String(decoding: data, as: UTF8.self)
        guard let root = try YAMLParser.parse(text, file: file) else { return }
        guard let pairs = root.pairs else {
            throw PipelineError.spec(.wrongType, root.location, key: "", message: "expected a map with 'params' and 'stages' at the top level, got \(root.typeName)")
        }
        let dir = (absolutePath as NSString).deletingLastPathComponent
        // Includes first, so this file's settings override them.
        for p in pairs where p.key.scalarText == "include" {
            let items = p.value.items ?? [p.value]
            for item in items {
                guard let rel = item.scalarText, !rel.isEmpty else {
                    throw PipelineError.spec(.wrongType, item.location, key: "include", message: "expected a file path (or list of paths), got \(item.typeName)")
                }
                let incAbs = PipelineSpec.absolute(rel.hasPrefix("/") ? rel : dir + "/" + rel)
                if incAbs == absolutePath || chain.contains(incAbs) {
                    throw PipelineError.spec(.cycle, item.location, key: "include", message: "include cycle: \(rel) includes itself (directly or indirectly)")
                }
                guard FileManager.default.fileExists(atPath: incAbs) else {
                    throw PipelineError.spec(.fileNotFound, item.location, key: "include", message: "included file '\(rel)' not found (resolved to \(incAbs))")
                }
                let shown = rel.hasPrefix("/") ? rel : ((file as NSString).deletingLastPathComponent as NSString).appendingPathComponent(rel)
                var innerSeedSet = false
                try merge(file: shown, absolutePath: incAbs, chain: chain + [absolutePath], isMain: false, seedSet: &innerSeedSet)
                if innerSeedSet { seedSet = true }
            }
        }
        for p in pairs {
            guard let key = p.key.scalarText else {
                throw PipelineError.spec(.wrongType, p.key.location, key: "", message: "expected a string key")
            }
            switch key {
            case "include":
                continue
            case "params":
                guard let ps = p.value.pairs else {
                    if p.value.toValue() == .null { continue }
                    throw PipelineError.spec(.wrongType, p.value.location, key: "params", message: "expected a map of parameter names to values, got \(p.value.typeName)")
                }
                for q in ps { params[q.key.scalarText ?? ""] = q.value.toValue() }
            case "seed":
                guard case let .int(s) = p.value.toValue() else {
                    throw PipelineError.spec(.wrongType, p.value.location, key: "seed", message: "expected an integer, got \(p.value.typeName)")
                }
                if isMain || !seedSet { seed = s }
                seedSet = true
            case "defaults":
                guard let ps = p.value.pairs else {
                    throw PipelineError.spec(.wrongType, p.value.location, key: "defaults", message: "expected a map of kind names to default params, got \(p.value.typeName)")
                }
                for q in ps {
                    let kind = q.key.scalarText ?? ""
                    guard let kp = q.value.pairs else {
                        throw PipelineError.spec(.wrongType, q.value.location, key: "defaults.\(kind)", message: "expected a map of params, got \(q.value.typeName)")
                    }
                    var merged = defaults[kind] ?? []
                    for r in kp {
                        merged.removeAll { $0.key.scalarText == r.key.scalarText }
                        merged.append(r)
                    }
                    defaults[kind] = merged
                    defaultsLocations[kind] = q.key.location
                }
            case "resources":
                guard let ps = p.value.pairs else {
                    throw PipelineError.spec(.wrongType, p.value.location, key: "resources",
                                             message: "expected a map of kind names to Slurm resources (cpus, mem, time, ...), got \(p.value.typeName)")
                }
                for q in ps {
                    let kind = q.key.scalarText ?? ""
                    let r = try SlurmResources.parse(q.value, path: "resources.\(kind)", allowInstances: false).base
                    kindResources[kind] = r.over(kindResources[kind] ?? SlurmResources())
                }
            case "stages":
                guard let ps = p.value.pairs else {
                    if p.value.toValue() == .null { continue }
                    throw PipelineError.spec(.wrongType, p.value.location, key: "stages", message: "expected a map of stage names to stage definitions, got \(p.value.typeName)")
                }
                for q in ps {
                    let stage = try PipelineSpec.parseStage(q, directory: dir)
                    if let prev = stages.first(where: { $0.name == stage.name }) {
                        throw PipelineError.spec(.duplicateName, stage.location, key: "stages.\(stage.name)",
                                                 message: "duplicate stage name (first defined at \(prev.location))")
                    }
                    stages.append(stage)
                }
            default:
                throw PipelineError.spec(.unknownKey, p.key.location, key: key,
                                         message: "unknown top-level key" + Suggest.hint(key, PipelineSpec.topKeys)
                                             + "; expected one of: " + PipelineSpec.topKeys.joined(separator: ", "))
            }
        }
    }

    /// Stage names: letters, digits, `_`, `-`, `.`; starting with a letter or `_`.
    static func isValidName(_ s: String) -> Bool {
        guard let f = s.unicodeScalars.first, f.isASCII, CharacterSet.letters.contains(f) || f == "_" else { return false }
        return s.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "_-.".unicodeScalars.contains($0)) }
    }

    private static func parseStage(_ pair: YAMLNode.Pair, directory: String) throws -> StageSpec {
        let name = pair.key.scalarText ?? ""
        let path = "stages.\(name)"
        guard isValidName(name) else {
            throw PipelineError.spec(.invalidValue, pair.key.location, key: path,
                                     message: "invalid stage name; use letters, digits, '_', '-', '.' (starting with a letter)")
        }
        guard let pairs = pair.value.pairs else {
            throw PipelineError.spec(.wrongType, pair.value.location, key: path, message: "expected a map with 'kind', 'params', 'inputs', got \(pair.value.typeName)")
        }
        var stage = StageSpec(name: name, location: pair.key.location, kind: "", kindLocation: pair.key.location, params: [],
                              inputs: [], matrix: [], outputs: nil, outputsLocation: nil, seed: nil, directory: directory)
        var sawKind = false
        for p in pairs {
            let key = p.key.scalarText ?? ""
            switch key {
            case "kind":
                guard let k = p.value.scalarText, case .string = p.value.toValue() else {
                    throw PipelineError.spec(.wrongType, p.value.location, key: "\(path).kind", message: "expected a kind name (string), got \(p.value.typeName)")
                }
                stage.kind = k
                stage.kindLocation = p.value.location
                sawKind = true
            case "doc":
                continue
            case "resources":
                stage.resources = try SlurmResources.parse(p.value, path: "\(path).resources", allowInstances: true)
            case "params":
                guard let ps = p.value.pairs else {
                    if p.value.toValue() == .null { continue }
                    throw PipelineError.spec(.wrongType, p.value.location, key: "\(path).params", message: "expected a map of params, got \(p.value.typeName)")
                }
                stage.params = ps
            case "seed":
                guard case let .int(s) = p.value.toValue() else {
                    throw PipelineError.spec(.wrongType, p.value.location, key: "\(path).seed", message: "expected an integer, got \(p.value.typeName)")
                }
                stage.seed = s
            case "inputs":
                guard let ps = p.value.pairs else {
                    if p.value.toValue() == .null { continue }
                    throw PipelineError.spec(.wrongType, p.value.location, key: "\(path).inputs",
                                             message: "expected a map of input names to references (file:PATH, STAGE, STAGE[k=v]), got \(p.value.typeName)")
                }
                for q in ps {
                    let iname = q.key.scalarText ?? ""
                    let refs = q.value.items ?? [q.value]
                    for r in refs where r.scalarText == nil || r.toValue() == .null {
                        throw PipelineError.spec(.wrongType, r.location, key: "\(path).inputs.\(iname)",
                                                 message: "expected a reference string (file:PATH, STAGE, STAGE[k=v], STAGE/OUTPUT) or a list of them, got \(r.typeName)")
                    }
                    stage.inputs.append(InputDecl(name: iname, location: q.key.location, refs: refs))
                }
            case "matrix":
                guard let ps = p.value.pairs else {
                    throw PipelineError.spec(.wrongType, p.value.location, key: "\(path).matrix", message: "expected a map of keys to lists of values, got \(p.value.typeName)")
                }
                for q in ps {
                    let mk = q.key.scalarText ?? ""
                    if q.value.items == nil && !(q.value.scalarText?.contains("${") ?? false) {
                        throw PipelineError.spec(.wrongType, q.value.location, key: "\(path).matrix.\(mk)",
                                                 message: "expected a list of values (or ${params.x} naming a list), got \(q.value.typeName)")
                    }
                    if let items = q.value.items, items.isEmpty {
                        throw PipelineError.spec(.invalidValue, q.value.location, key: "\(path).matrix.\(mk)", message: "expected at least one value")
                    }
                    stage.matrix.append(MatrixAxis(key: mk, location: q.key.location, values: q.value))
                }
            case "outputs":
                guard let items = p.value.items else {
                    throw PipelineError.spec(.wrongType, p.value.location, key: "\(path).outputs", message: "expected a list of output file names, got \(p.value.typeName)")
                }
                for item in items {
                    guard let s = item.scalarText, !s.isEmpty, !s.hasPrefix("/"), !s.split(separator: "/").contains("..") else {
                        throw PipelineError.spec(.invalidValue, item.location, key: "\(path).outputs",
                                                 message: "expected a relative file name inside the output directory, got \(item.toValue())")
                    }
                }
                stage.outputs = items
                stage.outputsLocation = p.value.location
            default:
                throw PipelineError.spec(.unknownKey, p.key.location, key: "\(path).\(key)",
                                         message: "unknown stage key" + Suggest.hint(key, stageKeys) + "; expected one of: " + stageKeys.joined(separator: ", "))
            }
        }
        guard sawKind else {
            throw PipelineError.spec(.missingKey, pair.key.location, key: path, message: "missing required key 'kind'")
        }
        return stage
    }
}
