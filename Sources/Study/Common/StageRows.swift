// StageRows: the standard JSONL row formats passed between study stages.
//
// Prompt sets   {"id", "prompt", "source", "type"}           (type: harmful-direct | jailbreak | over-refusal | benign)
// Responses     {"id", "prompt", "response", "source"?, "type"?, "tokens"?, "stopped"?, "label"?}
// Triples       {"id", "prompt", "safe", "unsafe"}
import Foundation

/// One prompt of a prompt set.
public struct PromptRow: Sendable, Codable, Equatable {
    public var id: String
    public var prompt: String
    public var source: String
    public var type: PromptType

    /// A prompt row.
    public init(id: String, prompt: String, source: String, type: PromptType) {
        self.id = id
        self.prompt = prompt
        self.source = source
        self.type = type
    }

    /// Reads a prompt set (JSONL, or any format `DataFile` reads). `id` defaults to a stable hash,
    /// `source` to the file name, `type` to `defaultType` (an error when that is nil too).
    public static func read(_ url: URL, defaultType: PromptType? = nil) throws -> [PromptRow] {
        let records = try StageSupport.readObjects(url)
        let fallbackSource = url.deletingPathExtension().lastPathComponent
        let rows = try records.map { r -> PromptRow in
            let prompt = try RowField.text(r, "prompt")
            let source = RowField.optionalText(r, "source") ?? fallbackSource
            let type: PromptType
            if let t = RowField.optionalText(r, "type") {
                guard let parsed = PromptType(rawValue: t) else {
                    throw StudyError.schemaMismatch(r.location, field: "type",
                                                    expected: "one of " + PromptType.allCases.map(\.rawValue).joined(separator: ", "))
                }
                type = parsed
            } else if let d = defaultType {
                type = d
            } else {
                throw StudyError.schemaMismatch(r.location, field: "type", expected: "a prompt type (or set a default type)")
            }
            let id = RowField.optionalText(r, "id") ?? StageSupport.stableId(source: source, text: prompt)
            return PromptRow(id: id, prompt: prompt, source: source, type: type)
        }
        guard !rows.isEmpty else { throw StudyError.noUsableRecords(file: url.path, reason: "no prompt rows") }
        return rows
    }
}

/// One (prompt, response) row.
public struct ResponseRow: Sendable, Codable, Equatable {
    public var id: String
    public var prompt: String
    public var response: String
    public var source: String?
    public var type: PromptType?
    /// Generated tokens (including a stop token), when generated here.
    public var tokens: Int?
    /// Whether generation stopped at a stop token.
    public var stopped: Bool?
    /// A label carried with the row (e.g. `safe` / `unsafe` for probe features).
    public var label: String?

    /// A response row.
    public init(id: String, prompt: String, response: String, source: String? = nil, type: PromptType? = nil,
                tokens: Int? = nil, stopped: Bool? = nil, label: String? = nil) {
        self.id = id
        self.prompt = prompt
        self.response = response
        self.source = source
        self.type = type
        self.tokens = tokens
        self.stopped = stopped
        self.label = label
    }

    /// The judge input of this row.
    public var item: JudgeItem { JudgeItem(prompt: prompt, response: response) }

    /// Reads a responses file; `id` defaults to a stable hash of the prompt and the line.
    public static func read(_ url: URL) throws -> [ResponseRow] {
        let records = try StageSupport.readObjects(url)
        let rows = try records.map { r -> ResponseRow in
            let prompt = try RowField.text(r, "prompt")
            guard let responseValue = r.value.value(at: "response"), case let .string(response) = responseValue else {
                throw StudyError.schemaMismatch(r.location, field: "response", expected: "a string (may be empty)")
            }
            var type: PromptType?
            if let t = RowField.optionalText(r, "type") {
                guard let parsed = PromptType(rawValue: t) else {
                    throw StudyError.schemaMismatch(r.location, field: "type",
                                                    expected: "one of " + PromptType.allCases.map(\.rawValue).joined(separator: ", "))
                }
                type = parsed
            }
            let source = RowField.optionalText(r, "source")
            let id = RowField.optionalText(r, "id") ?? StageSupport.stableId(source: source ?? "row\(r.location.line)", text: prompt)
            return ResponseRow(id: id, prompt: prompt, response: response, source: source, type: type,
                               tokens: r.value.value(at: "tokens")?.doubleValue.map { Int($0) },
                               stopped: r.value.value(at: "stopped")?.looseBool, label: RowField.optionalText(r, "label"))
        }
        guard !rows.isEmpty else { throw StudyError.noUsableRecords(file: url.path, reason: "no response rows") }
        return rows
    }
}

/// One contrast triple row (p, y+, y-).
public struct TripleRow: Sendable, Codable, Equatable {
    public var id: String
    public var prompt: String
    public var safe: String
    public var unsafe: String

    /// A triple row.
    public init(id: String, prompt: String, safe: String, unsafe: String) {
        self.id = id
        self.prompt = prompt
        self.safe = safe
        self.unsafe = unsafe
    }

    /// Reads a triples file.
    public static func read(_ url: URL) throws -> [TripleRow] {
        let records = try StageSupport.readObjects(url)
        let rows = try records.map { r -> TripleRow in
            let prompt = try RowField.text(r, "prompt")
            return TripleRow(id: RowField.optionalText(r, "id") ?? StageSupport.stableId(source: "triple", text: prompt),
                             prompt: prompt, safe: try RowField.text(r, "safe"), unsafe: try RowField.text(r, "unsafe"))
        }
        guard !rows.isEmpty else { throw StudyError.noUsableRecords(file: url.path, reason: "no triple rows") }
        return rows
    }
}

/// Field access on raw rows with file:line errors.
enum RowField {
    /// A required non-empty text field.
    static func text(_ r: RawRecord, _ field: String) throws -> String {
        guard let t = r.value.value(at: field)?.scalarText, !t.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw StudyError.schemaMismatch(r.location, field: field, expected: "a non-empty string")
        }
        return t
    }

    /// An optional non-empty text field.
    static func optionalText(_ r: RawRecord, _ field: String) -> String? {
        guard let t = r.value.value(at: field)?.scalarText, !t.isEmpty else { return nil }
        return t
    }
}
