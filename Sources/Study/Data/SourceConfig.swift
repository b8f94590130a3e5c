// SourceConfig: reads dataset-source settings (schema, file, type, label filter, anchor flag) from stage params.
import Foundation
import Pipeline

/// Parsing of data-source settings shared by `load-prompts` and `prepare-eval`.
///
/// A source map has: `name`, `schema` (a built-in name such as `harmbench`, or a field mapping
/// map), `input` (the stage input holding the file; default: the source name) or `path` (a
/// file path relative to the pipeline; prefer inputs, which are content-hashed), `type`,
/// `label` (keep only `safe` / `unsafe` records), `anchor` (split for the anchor pool),
/// `priority` (lower first; default: list order), `format`, `list_field`.
public enum SourceConfig {
    /// Keys allowed in a source map.
    public static let sourceKeys = ["name", "schema", "input", "path", "type", "label", "anchor", "priority", "format", "list_field"]

    /// A dataset schema from a param value: a built-in name or a field-mapping map.
    public static func schema(_ value: Value?, path: String) throws -> DatasetSchema {
        guard let value, value != .null else {
            throw StudyError.invalidConfiguration("\(path): missing schema; use a built-in name (\(DatasetSchema.builtinNames.keys.sorted().joined(separator: ", "))) or a field mapping")
        }
        if case let .string(name) = value {
            guard let schema = DatasetSchema.builtinNames[name.lowercased()] else {
                throw StudyError.invalidConfiguration("\(path): unknown dataset schema '\(name)'" + Suggest.hint(name, DatasetSchema.builtinNames.keys.sorted())
                                                      + "; use a built-in name (\(DatasetSchema.builtinNames.keys.sorted().joined(separator: ", "))) or a field mapping")
            }
            return schema
        }
        return .custom(try fieldMapping(try ParamMap(value, path: path)))
    }

    /// A custom field mapping: `prompt` (required), `response`, `label`, `category`, `type`,
    /// `extras` (strings or lists of dotted paths), `require_label`, `require_response`,
    /// `boolean_label` (`true-means-safe` | `true-means-unsafe`), `label_values` (text -> safe/unsafe),
    /// `type_values` (text -> prompt type), `type_by_label` (safe/unsafe -> prompt type), `default_type`.
    public static func fieldMapping(_ m: ParamMap) throws -> FieldMapping {
        try m.checkKeys(["prompt", "response", "label", "category", "type", "extras", "require_label", "require_response",
                         "boolean_label", "label_values", "type_values", "type_by_label", "default_type"])
        let prompt = try m.strings("prompt")
        guard !prompt.isEmpty else { throw StudyError.invalidConfiguration("\(m.path).prompt: missing (the field(s) holding the prompt)") }
        var f = FieldMapping(prompt: prompt, response: try m.strings("response"), label: try m.strings("label"),
                             category: try m.strings("category"), type: try m.strings("type"), extras: try m.strings("extras"),
                             requireLabel: try m.bool("require_label", default: false),
                             requireResponse: try m.bool("require_response", default: false))
        if let b = try m.optionalString("boolean_label") {
            switch b {
            case "true-means-safe": f.booleanLabel = .trueMeansSafe
            case "true-means-unsafe": f.booleanLabel = .trueMeansUnsafe
            default: throw StudyError.invalidConfiguration("\(m.path).boolean_label: expected true-means-safe or true-means-unsafe")
            }
        }
        let labels = try m.stringMap("label_values")
        if !labels.isEmpty {
            f.labelValues = try labels.reduce(into: [:]) { acc, kv in acc[kv.key.lowercased()] = try label(kv.value, "\(m.path).label_values.\(kv.key)") }
        }
        f.typeValues = try m.stringMap("type_values").reduce(into: [:]) { acc, kv in
            acc[kv.key.lowercased()] = try promptType(kv.value, "\(m.path).type_values.\(kv.key)")
        }
        f.typeByLabel = try m.stringMap("type_by_label").reduce(into: [:]) { acc, kv in
            acc[try label(kv.key, "\(m.path).type_by_label")] = try promptType(kv.value, "\(m.path).type_by_label.\(kv.key)")
        }
        f.defaultType = try m.promptType("default_type")
        return f
    }

    static func label(_ s: String, _ path: String) throws -> SafetyLabel {
        guard let l = SafetyLabel(rawValue: s.lowercased()) else { throw StudyError.invalidConfiguration("\(path): expected safe or unsafe, got '\(s)'") }
        return l
    }

    static func promptType(_ s: String, _ path: String) throws -> PromptType {
        guard let t = PromptType(rawValue: s) else {
            throw StudyError.invalidConfiguration("\(path): unknown prompt type '\(s)'; use one of \(PromptType.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return t
    }

    /// The data file of a source: input `inputName` of the stage, else `path`.
    public static func file(_ context: StageContext, _ m: ParamMap, inputName: String) throws -> URL {
        if context.hasInput(inputName) {
            return try StageSupport.file(in: try context.input(inputName), preferred: [], what: "input '\(inputName)'")
        }
        if let p = try m.optionalString("path") {
            context.log("warning: \(m.path) reads \(p) through a path param, which is not content-hashed; give it as an input (file:PATH) so edits invalidate the stage")
            return StageSupport.path(context, p)
        }
        throw StudyError.invalidConfiguration("\(m.path): no data file; add an input '\(inputName)' (e.g. file:data/x.jsonl) or set path")
    }

    /// A full evaluation source from a source map.
    public static func evalSource(_ context: StageContext, _ m: ParamMap, defaultName: String? = nil) throws -> EvalSource {
        let settings = try sourceSettings(m, defaultName: defaultName)
        var source = settings.source
        source.path = try file(context, m, inputName: settings.inputName).path
        return source
    }

    /// Everything a source map says but its file (`path` left empty), and the input that holds
    /// the file: read by `evalSource` and by the plan-time checks, which have no inputs yet.
    static func sourceSettings(_ m: ParamMap, defaultName: String? = nil) throws -> (source: EvalSource, inputName: String) {
        let name = try m.optionalString("name") ?? defaultName ?? ""
        guard !name.isEmpty else { throw StudyError.invalidConfiguration("\(m.path).name: missing") }
        var labelFilter: SafetyLabel?
        if let l = try m.optionalString("label") { labelFilter = try label(l, "\(m.path).label") }
        var format: DataFormat?
        if let f = try m.optionalString("format") {
            guard let parsed = DataFormat(rawValue: f) else {
                throw StudyError.invalidConfiguration("\(m.path).format: expected one of \(DataFormat.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            format = parsed
        }
        let spec = EvalSourceSpec(name: name, type: try m.promptType("type"), labelFilter: labelFilter,
                                  splitForAnchor: try m.bool("anchor", default: false))
        let source = EvalSource(spec: spec, path: "", schema: try schema(m.values["schema"], path: "\(m.path).schema"),
                                format: format, listField: try m.optionalString("list_field"))
        return (source, try m.optionalString("input") ?? name)
    }

    /// Plan-time check of a source map given the stage's input names: its settings, and a
    /// data file (the input it names, or `path`).
    static func checkSource(_ m: ParamMap, inputNames: [String], defaultName: String? = nil) throws -> String {
        let inputName = try sourceSettings(m, defaultName: defaultName).inputName
        if !inputNames.contains(inputName), try m.optionalString("path") == nil {
            throw StudyError.invalidConfiguration("inputs: \(m.path) reads input '\(inputName)', which the stage does not have"
                                                  + Suggest.hint(inputName, inputNames)
                                                  + "; add an input '\(inputName)' (e.g. file:data/x.jsonl), set the source's input, or set path")
        }
        return inputName
    }

    /// `fail` or `skip` from `params.invalid_records`.
    public static func policy(_ params: StageParams) throws -> InvalidRecordPolicy {
        let s = try params.string("invalid_records", default: "fail")
        guard let p = InvalidRecordPolicy(rawValue: s) else { throw StudyError.invalidConfiguration("params.invalid_records: expected fail or skip") }
        return p
    }
}
