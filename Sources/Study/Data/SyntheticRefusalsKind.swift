// `synthetic-refusals`: template refusals for harmful prompts (deterministic by prompt hash).
import Foundation
import Pipeline

/// The `synthetic-refusals` kind: template refusals for harmful prompts, deterministic by prompt hash.
public struct SyntheticRefusalsKind: StageKind {
    public init() {}
    public var name: String { "synthetic-refusals" }
    public var version: String { "1" }
    public static let kindDescription = """
        Writes template refusals for harmful prompts, chosen deterministically by the prompt's hash from \
        `SyntheticRefusals.templates`. With input `responses` (a model's compliant answers) it also writes \
        contrast triples {prompt, safe = refusal, unsafe = response}. Writes `refusals.jsonl` (response rows \
        labelled `safe`) and `triples.jsonl` (empty without `responses`).
        """
    public static let inputsDescription = "At least one of the two."
    public var paramsSchema: ParamsSchema {
        ParamsSchema([
            ParamSpec("harmful_only", .bool, default: .bool(true), doc: "skip prompts typed benign / over-refusal"),
        ])
    }
    public var inputs: InputsDeclaration {
        .named([
            InputSpec("prompts", required: false, doc: "prompt rows, responses or triples to refuse"),
            InputSpec("responses", required: false, doc: "a model's compliant answers, paired with the refusals as triples"),
        ])
    }
    public var outputs: OutputsDeclaration { .fixed(["refusals.jsonl", "triples.jsonl"]) }

    public func run(_ context: StageContext) throws {
        let harmfulOnly = try context.params.bool("harmful_only")
        var refusals: [ResponseRow] = []
        var triples: [TripleRow] = []
        if context.hasInput("prompts") {
            let url = try StageSupport.inputFile(context, "prompts", preferred: ["prompts.jsonl", "eval.jsonl", "triples.jsonl"])
            for r in try StageSupport.readObjects(url) {
                let prompt = try RowField.text(r, "prompt")
                let type = RowField.optionalText(r, "type").flatMap(PromptType.init(rawValue:))
                if harmfulOnly, let type, !type.isHarmful { continue }
                let id = RowField.optionalText(r, "id") ?? StageSupport.stableId(source: "refusal", text: prompt)
                refusals.append(ResponseRow(id: id, prompt: prompt, response: SyntheticRefusals.refusal(for: prompt),
                                            source: RowField.optionalText(r, "source"), type: type, label: "safe"))
            }
        }
        if context.hasInput("responses") {
            let url = try StageSupport.inputFile(context, "responses", preferred: ["responses.jsonl", "kept.jsonl"])
            for r in try ResponseRow.read(url) {
                if harmfulOnly, let type = r.type, !type.isHarmful { continue }
                let refusal = SyntheticRefusals.refusal(for: r.prompt)
                triples.append(TripleRow(id: r.id, prompt: r.prompt, safe: refusal, unsafe: r.response))
                if !context.hasInput("prompts") {
                    refusals.append(ResponseRow(id: r.id, prompt: r.prompt, response: refusal, source: r.source, type: r.type, label: "safe"))
                }
            }
        }
        guard !refusals.isEmpty || !triples.isEmpty else {
            throw StudyError.invalidConfiguration("synthetic-refusals: give an input 'prompts' and/or 'responses' with at least one harmful prompt")
        }
        try StageSupport.writeJSONL(refusals, to: context.output("refusals.jsonl"))
        try StageSupport.writeJSONL(triples, to: context.output("triples.jsonl"))
        context.log("\(refusals.count) refusals, \(triples.count) triples")
    }
}
