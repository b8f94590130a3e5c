// `features`: pooled hidden states of a model for (prompt, response) rows, stored once for probes.
import Foundation
import Numerics
import Pipeline

/// The `features` kind: pooled hidden states of a model for (prompt, response) rows, stored once for probes.
public struct FeaturesKind: StageKind {
    public init() {}
    public var name: String { "features" }
    public var version: String { "1" }
    public static let kindDescription = """
        Pools a model's hidden states for chat-formatted (prompt, response) rows, stored once for probes. Each \
        row gives the attention-masked mean over positions of every layer above the embedding \
        (hidden_states[1:], L entries, the last after the final norm), truncated to `max_tokens`; flattening is \
        layer-major. Writes `features.safetensors` (`features` [N, L, D]), `rows.jsonl` ({index, id, label, \
        source, type}) and `info.json`.
        """
    public var paramsSchema: ParamsSchema {
        ParamsSchema([
            ParamSpec("model", .string, doc: "HF directory or .gguf (else input `model`)"),
            ParamSpec("max_tokens", .int, default: .int(512)),
            ParamSpec("batch_size", .int, default: .int(8)),
            ParamSpec("chat_template", .bool, default: .bool(true)),
            ParamSpec("label", .string, choices: ["safe", "unsafe"], doc: "label of response rows without one"),
            ParamSpec("dtype", .string, default: .string("F32"), choices: ["F32", "F16", "BF16"]),
            ParamSpec("limit", .int, doc: "first N input rows"),
        ])
    }
    public var inputs: InputsDeclaration {
        .named([
            InputSpec("data", doc: "triples (each gives (p, safe) label 0 and (p, unsafe) label 1, ids `ID:safe` / `ID:unsafe`) "
                                  + "or responses (label from the row's `label` field safe/unsafe/0/1, else param `label`)"),
            InputSpec("model", required: false, doc: "upstream model artifact; else param `model`"),
        ])
    }
    public var outputs: OutputsDeclaration { .fixed(["features.safetensors", "rows.jsonl", "info.json"]) }

    /// Items and rows of the input file.
    static func examples(_ url: URL, defaultLabel: Int?, limit: Int?) throws -> (items: [JudgeItem], rows: [FeatureRow]) {
        var records = try StageSupport.readObjects(url)
        if let limit { records = Array(records.prefix(max(0, limit))) }
        var items: [JudgeItem] = [], rows: [FeatureRow] = []
        func add(_ item: JudgeItem, id: String, label: Int?, source: String?, type: PromptType?) {
            rows.append(FeatureRow(index: rows.count, id: id, label: label, source: source, type: type))
            items.append(item)
        }
        for r in records {
            let prompt = try RowField.text(r, "prompt")
            let source = RowField.optionalText(r, "source")
            let type = RowField.optionalText(r, "type").flatMap(PromptType.init(rawValue:))
            if r.value.value(at: "unsafe") != nil {
                let id = RowField.optionalText(r, "id") ?? StageSupport.stableId(source: "triple", text: prompt)
                add(JudgeItem(prompt: prompt, response: try RowField.text(r, "safe")), id: id + ":safe", label: 0, source: source, type: type)
                add(JudgeItem(prompt: prompt, response: try RowField.text(r, "unsafe")), id: id + ":unsafe", label: 1, source: source, type: type)
                continue
            }
            guard case let .string(response)? = r.value.value(at: "response") else {
                throw StudyError.schemaMismatch(r.location, field: "response", expected: "a string (or a triple with safe/unsafe)")
            }
            var label = defaultLabel
            if let v = r.value.value(at: "label"), v != .null {
                switch v.scalarText?.lowercased() {
                case "safe", "0", "false": label = 0
                case "unsafe", "1", "true": label = 1
                default: throw StudyError.schemaMismatch(r.location, field: "label", expected: "safe, unsafe, 0 or 1")
                }
            }
            add(JudgeItem(prompt: prompt, response: response), id: RowField.optionalText(r, "id") ?? StageSupport.stableId(source: source ?? "row", text: prompt),
                label: label, source: source, type: type)
        }
        guard !items.isEmpty else { throw StudyError.noUsableRecords(file: url.path, reason: "no rows") }
        return (items, rows)
    }

    /// `max_tokens` and `batch_size` (>= 1) and `chat_template`.
    static func options(_ p: StageParams) throws -> FeatureOptions {
        var o = FeatureOptions()
        o.maxTokens = try p.int("max_tokens", default: 512)
        o.batchSize = try p.int("batch_size", default: 8)
        o.useChatTemplate = try p.bool("chat_template", default: true)
        for (key, v) in [("max_tokens", o.maxTokens), ("batch_size", o.batchSize)] where v < 1 {
            throw StudyError.invalidConfiguration("params.\(key): must be >= 1, got \(v)")
        }
        return o
    }

    /// Before any stage runs: the options, `limit` (>= 0) and a model.
    public func check(_ p: StageParams, inputNames: [String]) throws {
        try StageCheck.run {
            _ = try Self.options(p)
            if p.has("limit"), try p.int("limit") < 0 { throw StudyError.invalidConfiguration("params.limit: must be >= 0") }
            try StageCheck.model(p, inputNames: inputNames, kind: name)
        }
    }

    public func run(_ context: StageContext) throws {
        let p = context.params
        let o = try Self.options(p)
        let url = try StageSupport.inputFile(context, "data", preferred: ["triples.jsonl", "responses.jsonl", "kept.jsonl"])
        var defaultLabel: Int?
        if p.has("label") { defaultLabel = try p.string("label") == "unsafe" ? 1 : 0 }
        let (items, rows) = try Self.examples(url, defaultLabel: defaultLabel, limit: p.has("limit") ? try p.int("limit") : nil)
        let model = try StageSupport.loadModel(context)
        let started = Date()
        let progress = context.progress("features", total: items.count)
        let features = try FeatureExtractor(model: model, options: o).features(items) { progress.update(completed: $0) }
        progress.finish()
        let dtype = SafeTensorsDType(rawValue: try p.string("dtype")) ?? .f32
        try FeatureSet(features: features, rows: rows).save(to: context.outputDirectory, dtype: dtype, info: [
            "architecture": .string(model.checkpoint.architectureName),
            "max_tokens": .double(Double(o.maxTokens)), "chat_template": .bool(o.useChatTemplate),
        ])
        context.log("features [\(rows.count), \(features.shape[1]), \(features.shape[2])] in \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
    }
}
