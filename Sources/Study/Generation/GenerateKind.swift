// `generate`: greedy chat responses of a model to a prompt set (optionally with the A.4 anchor filters).
import Foundation
import Models
import Pipeline

/// The `generate` kind: chat responses of a model to a prompt set, optionally with the A.4 anchor filters.
public struct GenerateKind: StageKind {
    public init() {}
    public var name: String { "generate" }
    public var version: String { "1" }
    public static let kindDescription = """
        Generates one response per prompt with the model, batched, through the chat template, greedy unless \
        `temperature` is set. With `filters` (any of `empty`, `single-token`, `refusal`; `anchor: true` applies \
        all three, paper A.4) discarded generations go to `discarded.jsonl` with their reason. Writes \
        `responses.jsonl` ({id, prompt, response, source, type, tokens, stopped}), `discarded.jsonl` and \
        `stats.json`.
        """
    public var paramsSchema: ParamsSchema {
        ParamsSchema([
            ParamSpec("model", .string, doc: "HF directory or .gguf (else input `model`)"),
            ParamSpec("max_new_tokens", .int, default: .int(256)),
            ParamSpec("batch_size", .int, default: .int(8)),
            ParamSpec("max_prompt_tokens", .int, default: .int(512)),
            ParamSpec("chat_template", .bool, default: .bool(true)),
            ParamSpec("temperature", .number, doc: "sample at this temperature (default: greedy)"),
            ParamSpec("sample_seed", .int, default: .int(0)),
            ParamSpec("types", .list(.string), doc: "only prompts of these types"),
            ParamSpec("limit", .int, doc: "first N prompts"),
            ParamSpec("anchor", .bool, default: .bool(false), doc: "apply all A.4 filters"),
            ParamSpec("filters", .list(.string), default: .list([]), doc: "empty, single-token, refusal"),
        ])
    }
    public var inputs: InputsDeclaration {
        .named([InputSpec("prompts", doc: "a prompt set (JSONL, or a directory holding one)"),
                InputSpec("model", required: false, doc: "upstream model artifact; else param `model`")])
    }
    public var outputs: OutputsDeclaration { .fixed(["responses.jsonl", "discarded.jsonl", "stats.json"]) }

    struct Discarded: Codable {
        var id: String
        var prompt: String
        var response: String
        var reason: String
    }

    struct Stats: Codable {
        var prompts = 0
        var generated = 0
        var kept = 0
        var discarded: [String: Int] = [:]
        var stoppedAtEOS = 0
        var meanNewTokens = 0.0
    }

    /// The `filters` name of an anchor verdict.
    static func filterName(_ v: AnchorVerdict) -> String {
        switch v {
        case .keep: return "keep"
        case .empty: return "empty"
        case .singleToken: return "single-token"
        case .refusal: return "refusal"
        }
    }

    /// Reads prompts as response-row skeletons (any rows with `prompt`; `id`, `source`, `type` kept).
    static func readPrompts(_ url: URL) throws -> [ResponseRow] {
        try StageSupport.readObjects(url).map { r in
            let prompt = try RowField.text(r, "prompt")
            let source = RowField.optionalText(r, "source")
            var type: PromptType?
            if let t = RowField.optionalText(r, "type") {
                guard let parsed = PromptType(rawValue: t) else {
                    throw StudyError.schemaMismatch(r.location, field: "type", expected: PromptType.allCases.map(\.rawValue).joined(separator: " | "))
                }
                type = parsed
            }
            return ResponseRow(id: RowField.optionalText(r, "id") ?? StageSupport.stableId(source: source ?? "prompt", text: prompt),
                               prompt: prompt, response: "", source: source, type: type)
        }
    }

    /// `types` (nil: every prompt), each a prompt type.
    static func types(_ p: StageParams) throws -> [String]? {
        guard p.has("types") else { return nil }
        let types = try p.strings("types")
        for t in types where PromptType(rawValue: t) == nil {
            throw StudyError.invalidConfiguration("params.types: unknown prompt type '\(t)'; use "
                                                  + PromptType.allCases.map(\.rawValue).joined(separator: ", "))
        }
        return types
    }

    /// `filters`, plus all of them with `anchor`.
    static func filters(_ p: StageParams) throws -> Set<String> {
        var filters = Set(try p.strings("filters"))
        if try p.bool("anchor") { filters.formUnion(["empty", "single-token", "refusal"]) }
        for f in filters.sorted() where !["empty", "single-token", "refusal"].contains(f) {
            throw StudyError.invalidConfiguration("params.filters: unknown filter '\(f)'; use empty, single-token, refusal")
        }
        return filters
    }

    /// The prompt types, the filters and a model, before any stage runs.
    public func check(_ p: StageParams, inputNames: [String]) throws {
        try StageCheck.run {
            _ = try Self.types(p)
            _ = try Self.filters(p)
            try StageCheck.model(p, inputNames: inputNames, kind: name)
        }
    }

    public func run(_ context: StageContext) throws {
        let p = context.params
        let url = try StageSupport.inputFile(context, "prompts", preferred: ["prompts.jsonl", "eval.jsonl", "anchor.jsonl"])
        var rows = try Self.readPrompts(url)
        if let types = try Self.types(p) {
            rows = rows.filter { $0.type.map { types.contains($0.rawValue) } ?? false }
        }
        if p.has("limit") { rows = Array(rows.prefix(max(0, try p.int("limit")))) }
        guard !rows.isEmpty else { throw StudyError.noUsableRecords(file: url.path, reason: "no prompt selected") }
        let filters = try Self.filters(p)

        let model = try StageSupport.loadModel(context)
        var o = ResponseGenerationOptions()
        o.maxNewTokens = try p.int("max_new_tokens")
        o.batchSize = try p.int("batch_size")
        o.maxPromptTokens = try p.int("max_prompt_tokens")
        o.useChatTemplate = try p.bool("chat_template")
        if p.has("temperature") {
            o.sampling = Sampling(temperature: Float(try p.double("temperature")), seed: UInt64(truncatingIfNeeded: try p.int("sample_seed")))
        }
        let started = Date()
        let progress = context.progress("generate", total: rows.count)
        let generated = try ResponseGenerator(model: model, options: o).generate(rows.map(\.prompt)) { progress.update(completed: $0) }
        progress.finish()

        var stats = Stats()
        stats.prompts = rows.count
        stats.generated = generated.count
        var kept: [ResponseRow] = []
        var discarded: [Discarded] = []
        for (row, g) in zip(rows, generated) {
            var r = row
            r.response = g.text
            r.tokens = g.ids.count
            r.stopped = g.stopped
            if g.stopped { stats.stoppedAtEOS += 1 }
            stats.meanNewTokens += Double(g.ids.count) / Double(rows.count)
            // A.4 filters (AnchorFilter's order: empty, single token, refusal); the token count is
            // the generator's (stop id excluded), refusals the paper's lexical list.
            let filter = AnchorFilter(tokenCount: { [n = g.contentTokens] _ in n })
            let verdict = filter.verdict(g.text)
            let reason: String? = verdict != .keep && filters.contains(Self.filterName(verdict)) ? Self.filterName(verdict) : nil
            if let reason {
                stats.discarded[reason, default: 0] += 1
                discarded.append(Discarded(id: r.id, prompt: r.prompt, response: r.response, reason: reason))
            } else {
                kept.append(r)
            }
        }
        stats.kept = kept.count
        try StageSupport.writeJSONL(kept, to: context.output("responses.jsonl"))
        try StageSupport.writeJSONL(discarded, to: context.output("discarded.jsonl"))
        try StageSupport.writeJSON(stats, to: context.output("stats.json"))
        context.log("generated \(generated.count) responses in \(String(format: "%.1f", Date().timeIntervalSince(started))) s; kept \(kept.count)")
    }
}
