// `refusal-filter`: drops responses with refusal traces or below a minimum length (paper A.5).
import Foundation
import Pipeline

/// The `refusal-filter` kind: drops responses with refusal traces or below a minimum length (paper A.5).
public struct RefusalFilterKind: StageKind {
    public init() {}
    public var name: String { "refusal-filter" }
    public var version: String { "1" }
    public static let kindDescription = """
        Drops responses with refusal traces or below a minimum length (paper A.5). A response is dropped when, \
        lowercased, it contains one of `substrings` (default: the paper's 16) or has fewer than `min_length` \
        characters. Writes `kept.jsonl` (rows as read; with `emit: responses` triples become {id, prompt, \
        response = unsafe} rows for compliance fine-tuning), `dropped.jsonl` (rows with a `reason`) and \
        `stats.json`.
        """
    public var paramsSchema: ParamsSchema {
        ParamsSchema([
            ParamSpec("min_length", .int, default: .int(10)),
            ParamSpec("substrings", .list(.string), doc: "replaces the paper's 16 substrings"),
            ParamSpec("extra_substrings", .list(.string), default: .list([])),
            ParamSpec("emit", .string, default: .string("same"), choices: ["same", "responses"]),
        ])
    }
    public var inputs: InputsDeclaration { .named([InputSpec("data", doc: "triples ({prompt, safe, unsafe}; the `unsafe` response is checked) or responses ({prompt, response})")]) }
    public var outputs: OutputsDeclaration { .fixed(["kept.jsonl", "dropped.jsonl", "stats.json"]) }

    struct Dropped: Codable {
        var id: String
        var prompt: String
        var response: String
        var reason: String
    }

    public func run(_ context: StageContext) throws {
        let p = context.params
        let url = try StageSupport.inputFile(context, "data", preferred: ["triples.jsonl", "kept.jsonl", "responses.jsonl"])
        let subs = (p.has("substrings") ? try p.strings("substrings") : RefusalLexicon.paperSubstrings) + (try p.strings("extra_substrings"))
        let filter = RefusalTraceFilter(substrings: subs, minLength: try p.int("min_length"))
        var stats = RefusalTraceStats()
        var dropped: [Dropped] = []
        func check(_ id: String, _ prompt: String, _ response: String) -> Bool {
            stats.total += 1
            switch filter.verdict(response) {
            case .keep:
                stats.kept += 1
                return true
            case let .refusalSubstring(s):
                stats.refusal += 1
                stats.bySubstring[s, default: 0] += 1
                dropped.append(Dropped(id: id, prompt: prompt, response: response, reason: "refusal substring '\(s)'"))
            case let .tooShort(n):
                stats.tooShort += 1
                dropped.append(Dropped(id: id, prompt: prompt, response: response, reason: "too short (\(n) < \(filter.minLength))"))
            }
            return false
        }
        let first = try StageSupport.readObjects(url).first
        if first?.value.value(at: "unsafe") != nil {
            let kept = try TripleRow.read(url).filter { check($0.id, $0.prompt, $0.unsafe) }
            if try p.string("emit") == "responses" {
                try StageSupport.writeJSONL(kept.map { ResponseRow(id: $0.id, prompt: $0.prompt, response: $0.unsafe, label: "unsafe") },
                                            to: context.output("kept.jsonl"))
            } else {
                try StageSupport.writeJSONL(kept, to: context.output("kept.jsonl"))
            }
        } else {
            let kept = try ResponseRow.read(url).filter { check($0.id, $0.prompt, $0.response) }
            try StageSupport.writeJSONL(kept, to: context.output("kept.jsonl"))
        }
        try StageSupport.writeJSONL(dropped, to: context.output("dropped.jsonl"))
        try StageSupport.writeJSON(stats, to: context.output("stats.json"))
        context.log("kept \(stats.kept) of \(stats.total) (refusal \(stats.refusal), too short \(stats.tooShort))")
    }
}
