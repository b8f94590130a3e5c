// `contrast-triples`: PKU-SafeRLHF-style pairs with disagreeing labels -> (prompt, safe, unsafe) (paper A.3).
import Foundation
import Pipeline

/// The `contrast-triples` kind: PKU-SafeRLHF-style pairs with disagreeing labels as (prompt, safe, unsafe) triples.
public struct ContrastTriplesKind: StageKind {
    public init() {}
    public var name: String { "contrast-triples" }
    public var version: String { "1" }
    public static let kindDescription = """
        Keeps the pairs whose safety labels disagree as (prompt, safe, unsafe) contrast triples (paper A.3). \
        Pairs are PKU-SafeRLHF-style rows `prompt, response_0, response_1, is_response_0_safe, \
        is_response_1_safe`. Writes `triples.jsonl` ({id, prompt, safe, unsafe}), `prompts.jsonl` (the distinct \
        prompts as harmful-direct prompt rows of source `source`) and `stats.json`.
        """
    public var paramsSchema: ParamsSchema {
        ParamsSchema([
            ParamSpec("path", .string, doc: "pairs file when there is no `data` input"),
            ParamSpec("source", .string, default: .string("pku-saferlhf")),
            ParamSpec("format", .string, choices: DataFormat.allCases.map(\.rawValue)),
            ParamSpec("list_field", .string),
            ParamSpec("dedup", .bool, default: .bool(false), doc: "keep one triple per prompt (first)"),
            ParamSpec("limit", .int, doc: "keep the first N triples"),
            ParamSpec("invalid_records", .string, default: .string("fail"), choices: ["fail", "skip"]),
        ])
    }
    public var inputs: InputsDeclaration { .named([InputSpec("data", required: false, doc: "the pairs file (else param `path`)")]) }
    public var outputs: OutputsDeclaration { .fixed(["triples.jsonl", "prompts.jsonl", "stats.json"]) }

    struct Stats: Codable {
        var extraction: ContrastStats
        var skippedRecords: Int
        var duplicatesDropped: Int
        var written: Int
        var prompts: Int
    }

    public func run(_ context: StageContext) throws {
        let p = context.params
        let m = try ParamMap(.map(p.values.filter { $0.key == "path" }), path: "params")
        let url = try SourceConfig.file(context, m, inputName: "data")
        var format: DataFormat?
        if p.has("format") { format = DataFormat(rawValue: try p.string("format")) }
        let loaded = try DatasetLoader.loadPairs(path: url.path,
                                                 options: DataFileOptions(format: format, listField: p.has("list_field") ? try p.string("list_field") : nil),
                                                 policy: try SourceConfig.policy(p))
        for issue in loaded.issues { context.log("skipped: \(issue)") }
        let (triples, stats) = ContrastTriples.extract(loaded.records)
        var rows: [TripleRow] = []
        var seenPrompt = Set<String>()
        var seenId: [String: Int] = [:]
        var dropped = 0
        for t in triples {
            let key = PromptKey.normalize(t.prompt)
            if try p.bool("dedup"), !seenPrompt.insert(key).inserted { dropped += 1; continue }
            // Ids: the prompt's hash, suffixed when one prompt has several triples.
            let base = StageSupport.stableId(source: "triple", text: t.prompt)
            let n = seenId[base, default: 0]
            seenId[base] = n + 1
            rows.append(TripleRow(id: n == 0 ? base : "\(base)-\(n)", prompt: t.prompt, safe: t.safe, unsafe: t.unsafe))
        }
        if p.has("limit") { rows = Array(rows.prefix(max(0, try p.int("limit")))) }
        guard !rows.isEmpty else { throw StudyError.noUsableRecords(file: url.path, reason: "no pair with disagreeing labels") }
        let source = try p.string("source")
        var promptKeys = Set<String>()
        let prompts = rows.compactMap { r -> PromptRow? in
            guard promptKeys.insert(PromptKey.normalize(r.prompt)).inserted else { return nil }
            return PromptRow(id: StageSupport.stableId(source: source, text: r.prompt), prompt: r.prompt, source: source, type: .harmfulDirect)
        }
        try StageSupport.writeJSONL(rows, to: context.output("triples.jsonl"))
        try StageSupport.writeJSONL(prompts, to: context.output("prompts.jsonl"))
        try StageSupport.writeJSON(Stats(extraction: stats, skippedRecords: loaded.issues.count, duplicatesDropped: dropped,
                                         written: rows.count, prompts: prompts.count), to: context.output("stats.json"))
        context.log("\(stats.pairs) pairs -> \(rows.count) triples (both safe \(stats.bothSafe), both unsafe \(stats.bothUnsafe))")
    }
}
