// `load-prompts`: one dataset file through a schema into a prompt set.
import Foundation
import Pipeline

/// The `load-prompts` kind: one dataset file through a schema into a prompt set.
public struct LoadPromptsKind: StageKind {
    public init() {}
    public var name: String { "load-prompts" }
    public var version: String { "1" }
    public static let kindDescription = """
        Loads one source with `schema` into a prompt set, with an optional label filter, dedup, minimum length \
        and limit (the first N after filtering). Writes `prompts.jsonl` and `manifest.json` (counts after each \
        step).
        """
    public var paramsSchema: ParamsSchema {
        ParamsSchema([
            ParamSpec("schema", .any, required: true, doc: "built-in schema name or a field mapping"),
            ParamSpec("source", .string, doc: "source name tagging every prompt (default: the file name)"),
            ParamSpec("path", .string, doc: "data file when there is no `data` input"),
            ParamSpec("type", .string, doc: "forces every prompt's type"),
            ParamSpec("label", .string, choices: ["safe", "unsafe"], doc: "keep only records with this label"),
            ParamSpec("format", .string, choices: DataFormat.allCases.map(\.rawValue)),
            ParamSpec("list_field", .string),
            ParamSpec("dedup", .bool, default: .bool(true)),
            ParamSpec("min_length", .int, default: .int(0)),
            ParamSpec("limit", .int, doc: "keep the first N prompts"),
            ParamSpec("invalid_records", .string, default: .string("fail"), choices: ["fail", "skip"]),
        ])
    }
    public var inputs: InputsDeclaration { .named([InputSpec("data", required: false, doc: "the data file (else param `path`)")]) }
    public var outputs: OutputsDeclaration { .fixed(["prompts.jsonl", "manifest.json"]) }

    /// Counts after each step.
    struct Counts: Codable {
        var loaded = 0, afterLabelFilter = 0, afterDedup = 0, afterLengthFilter = 0, written = 0
        var skippedRecords = 0
        var byType: [String: Int] = [:]
    }

    /// The params that describe the source, as a source map reading input `data`.
    static func sourceMap(_ p: StageParams) throws -> ParamMap {
        let sourceKeys = ["path", "type", "label", "format", "list_field", "schema"]
        var values = p.values.filter { sourceKeys.contains($0.key) }
        values["input"] = .string("data")
        return try ParamMap(.map(values), path: "params")
    }

    /// Before any stage runs: the schema and source settings, and a data file (input `data` or `path`).
    public func check(_ p: StageParams, inputNames: [String]) throws {
        try StageCheck.run {
            _ = try SourceConfig.checkSource(try Self.sourceMap(p), inputNames: inputNames, defaultName: "data")
            let minLength = try p.int("min_length", default: 0)
            guard minLength >= 0 else { throw StudyError.invalidConfiguration("params.min_length: must be >= 0, got \(minLength)") }
        }
    }

    public func run(_ context: StageContext) throws {
        let p = context.params
        let m = try Self.sourceMap(p)
        let fileName = try SourceConfig.file(context, m, inputName: "data")
        let sourceName = try p.string("source", default: fileName.deletingPathExtension().lastPathComponent)
        let source = try SourceConfig.evalSource(context, m, defaultName: sourceName)
        let result = try DatasetLoader.loadPrompts(path: source.path, schema: source.schema,
                                                   options: DataFileOptions(format: source.format, listField: source.listField),
                                                   policy: try SourceConfig.policy(p))
        for issue in result.issues { context.log("skipped: \(issue)") }
        var c = Counts()
        c.loaded = result.records.count
        c.skippedRecords = result.issues.count
        let labelled = result.records.filter { source.spec.labelFilter == nil || $0.label == source.spec.labelFilter }
        c.afterLabelFilter = labelled.count
        let dedup = try p.bool("dedup"), minLength = try p.int("min_length")
        var seen = Set<String>()
        var rows: [PromptRow] = []
        for r in labelled {
            if dedup { guard seen.insert(PromptKey.normalize(r.prompt)).inserted else { continue } }
            c.afterDedup += 1
            guard PromptKey.length(r.prompt) >= minLength else { continue }
            c.afterLengthFilter += 1
            guard let type = source.spec.type ?? r.type else {
                throw StudyError.invalidConfiguration("\(r.location): the record has no prompt type; set params.type")
            }
            rows.append(PromptRow(id: StageSupport.stableId(source: sourceName, text: r.prompt), prompt: r.prompt,
                                  source: sourceName, type: type))
        }
        if p.has("limit") { rows = Array(rows.prefix(max(0, try p.int("limit")))) }
        guard !rows.isEmpty else { throw StudyError.noUsableRecords(file: source.path, reason: "no prompt left after filtering") }
        c.written = rows.count
        for r in rows { c.byType[r.type.rawValue, default: 0] += 1 }
        try StageSupport.writeJSONL(rows, to: context.output("prompts.jsonl"))
        try StageSupport.writeJSON(c, to: context.output("manifest.json"))
        context.log("\(sourceName): \(rows.count) prompts")
    }
}
