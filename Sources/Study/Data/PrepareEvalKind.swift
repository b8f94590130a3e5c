// `prepare-eval`: the deduplicated evaluation suite and the anchor-prompt pool (paper Appendix A.2, A.4).
import Foundation
import Pipeline

/// The `prepare-eval` kind: the deduplicated evaluation suite and the anchor-prompt pool (paper Appendix A.2, A.4).
public struct PrepareEvalKind: StageKind {
    public init() {}
    public var name: String { "prepare-eval" }
    public var version: String { "1" }
    public static let kindDescription = """
        Builds the deduplicated evaluation suite and the anchor-prompt pool (paper Appendix A.2, A.4). It \
        concatenates the configured sources in priority order, dedups by the lowercased, whitespace-normalised \
        prompt (higher priority wins), drops prompts under `min_length` characters, tags source and type, and \
        hash-splits anchor sources (the train side goes to the anchor pool). Writes `eval.jsonl` and \
        `anchor.jsonl` (prompt rows) and `manifest.json` (counts per source after each step).
        """
    public static let inputsDescription = """
        One per source, named by the source's `input` (default: its name); a source may read a `path` instead. \
        An input that no source reads is a spec error.
        """
    public var paramsSchema: ParamsSchema {
        ParamsSchema([
            ParamSpec("sources", .list(.map), required: true, doc: "data sources in priority order"),
            ParamSpec("min_length", .int, default: .int(10)),
            ParamSpec("train_fraction", .number, default: .double(0.9), doc: "anchor (train) side of split sources"),
            ParamSpec("hash", .string, default: .string("sha256"), choices: ["sha256", "fnv1a64"]),
            ParamSpec("invalid_records", .string, default: .string("fail"), choices: ["fail", "skip"]),
        ])
    }
    public var outputs: OutputsDeclaration { .fixed(["eval.jsonl", "anchor.jsonl", "manifest.json"]) }

    /// The source maps (at least one, keys checked).
    static func sourceMaps(_ p: StageParams) throws -> [ParamMap] {
        let maps = try ParamMap.list(p, "sources")
        guard !maps.isEmpty else { throw StudyError.invalidConfiguration("params.sources: list at least one source") }
        for m in maps { try m.checkKeys(SourceConfig.sourceKeys) }
        return maps
    }

    /// `min_length` (>= 0) and the anchor split (`train_fraction` in [0, 1], `hash`).
    static func config(_ p: StageParams) throws -> EvalPrepConfig {
        let minLength = try p.int("min_length", default: 10), fraction = try p.double("train_fraction", default: 0.9)
        guard minLength >= 0 else { throw StudyError.invalidConfiguration("params.min_length: must be >= 0, got \(minLength)") }
        guard (0...1).contains(fraction) else {
            throw StudyError.invalidConfiguration("params.train_fraction: must be in [0, 1], got \(fraction)")
        }
        return EvalPrepConfig(minLength: minLength,
                              split: HashSplit(trainFraction: fraction,
                                               function: HashSplit.Function(rawValue: try p.string("hash", default: "sha256")) ?? .sha256))
    }

    /// Before any stage runs: the sources' settings, each one's data file (an input of the
    /// stage, or `path`), no input that no source reads, and the split settings.
    public func check(_ p: StageParams, inputNames: [String]) throws {
        try StageCheck.run {
            var read: [String] = []
            for (i, m) in try Self.sourceMaps(p).enumerated() {
                _ = try m.int("priority", default: i)
                read.append(try SourceConfig.checkSource(m, inputNames: inputNames))
            }
            for name in inputNames where !read.contains(name) {
                throw StageCheckFailure(key: "inputs.\(name)", message: "no source reads input '\(name)'" + Suggest.hint(name, read)
                                            + "; sources read: " + read.joined(separator: ", "))
            }
            _ = try Self.config(p)
        }
    }

    public func run(_ context: StageContext) throws {
        let p = context.params
        let maps = try Self.sourceMaps(p)
        var ranked: [(rank: Int, index: Int, source: EvalSource)] = []
        for (i, m) in maps.enumerated() {
            ranked.append((try m.int("priority", default: i), i, try SourceConfig.evalSource(context, m)))
        }
        ranked.sort { ($0.rank, $0.index) < ($1.rank, $1.index) }
        let config = try Self.config(p)
        let policy = try SourceConfig.policy(p)
        var loaded: [(spec: EvalSourceSpec, records: [PromptRecord])] = []
        for r in ranked {
            let result = try DatasetLoader.loadPrompts(path: r.source.path, schema: r.source.schema,
                                                       options: DataFileOptions(format: r.source.format, listField: r.source.listField),
                                                       policy: policy)
            for issue in result.issues { context.log("skipped: \(issue)") }
            context.log("\(r.source.spec.name): \(result.records.count) records from \(r.source.path)")
            loaded.append((r.source.spec, result.records))
        }
        let prepared = try EvalPrep.prepare(sources: loaded, config: config)
        let rows = { (items: [EvalPrompt]) in
            items.map { PromptRow(id: StageSupport.stableId(source: $0.source, text: $0.prompt), prompt: $0.prompt, source: $0.source, type: $0.type) }
        }
        try StageSupport.writeJSONL(rows(prepared.evaluation), to: context.output("eval.jsonl"))
        try StageSupport.writeJSONL(rows(prepared.anchorPool), to: context.output("anchor.jsonl"))
        do { try prepared.manifest.jsonData().write(to: context.output("manifest.json")) } catch {
            throw StudyError.writeFailed(path: context.output("manifest.json").path, reason: "\(error)")
        }
        context.log("evaluation \(prepared.manifest.evaluationTotal), anchor pool \(prepared.manifest.anchorTotal)")
    }
}
