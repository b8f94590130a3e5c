// FieldMapping: which (possibly nested) fields of a raw record hold the prompt, response and labels.
import Foundation
import Pipeline

/// Maps raw record fields to `PromptRecord` fields. Each field lists candidate dotted paths
/// (`a.b`, `list.0`); the first candidate holding a non-empty value wins.
public struct FieldMapping: Sendable, Codable, Equatable {
    /// How a boolean label field is read.
    public enum BooleanMeaning: String, Sendable, Codable {
        /// `true` means safe (BeaverTails `is_safe`).
        case trueMeansSafe
        /// `true` means unsafe (e.g. `is_harmful`).
        case trueMeansUnsafe
    }

    /// Candidate paths of the prompt (required).
    public var prompt: [String]
    /// Candidate paths of the response.
    public var response: [String]
    /// Candidate paths of the safety label.
    public var label: [String]
    /// Candidate paths of the category; objects contribute their keys with true values, arrays their items.
    public var category: [String]
    /// Candidate paths of a field whose value names the prompt type (see `typeValues`).
    public var type: [String]
    /// Paths copied verbatim into `extras` when present.
    public var extras: [String]
    /// Whether a record without a readable label is a schema error.
    public var requireLabel: Bool
    /// Whether a record without a response is a schema error.
    public var requireResponse: Bool
    /// Meaning of boolean labels.
    public var booleanLabel: BooleanMeaning
    /// Lowercased label strings and their meaning.
    public var labelValues: [String: SafetyLabel]
    /// Lowercased type-field values and the prompt type they denote.
    public var typeValues: [String: PromptType]
    /// Prompt type by label, applied when no type field decides.
    public var typeByLabel: [SafetyLabel: PromptType]
    /// Prompt type when nothing else decides (nil = untyped; the eval source config may set one).
    public var defaultType: PromptType?

    /// The default label vocabulary.
    public static let standardLabelValues: [String: SafetyLabel] = [
        "safe": .safe, "unsafe": .unsafe, "harmful": .unsafe, "unharmful": .safe, "benign": .safe,
        "harmless": .safe, "needs caution": .unsafe,
    ]

    /// A mapping; only `prompt` is required.
    public init(prompt: [String], response: [String] = [], label: [String] = [], category: [String] = [],
                type: [String] = [], extras: [String] = [], requireLabel: Bool = false,
                requireResponse: Bool = false, booleanLabel: BooleanMeaning = .trueMeansSafe,
                labelValues: [String: SafetyLabel] = FieldMapping.standardLabelValues,
                typeValues: [String: PromptType] = [:], typeByLabel: [SafetyLabel: PromptType] = [:],
                defaultType: PromptType? = nil) {
        self.prompt = prompt
        self.response = response
        self.label = label
        self.category = category
        self.type = type
        self.extras = extras
        self.requireLabel = requireLabel
        self.requireResponse = requireResponse
        self.booleanLabel = booleanLabel
        self.labelValues = labelValues
        self.typeValues = typeValues
        self.typeByLabel = typeByLabel
        self.defaultType = defaultType
    }

    /// Applies the mapping to one raw record.
    /// - Throws: `StudyError.schemaMismatch` with the record's file:line when a required field is
    ///   missing, empty or of the wrong kind.
    public func map(_ raw: RawRecord) throws -> PromptRecord {
        let loc = raw.location
        guard let prompt = firstText(prompt, in: raw.value) else {
            throw StudyError.schemaMismatch(loc, field: prompt.joined(separator: " | "), expected: "a non-empty string")
        }
        let response = firstText(response, in: raw.value)
        if requireResponse, response == nil {
            throw StudyError.schemaMismatch(loc, field: self.response.joined(separator: " | "), expected: "a non-empty string")
        }
        var label: SafetyLabel?
        if let (path, value) = firstPresent(self.label, in: raw.value) {
            label = parseLabel(value)
            if label == nil {
                let allowed = labelValues.keys.sorted().joined(separator: "/")
                throw StudyError.schemaMismatch(loc, field: path, expected: "a boolean or one of \(allowed), got \(value.scalarText ?? value.jsonTypeName)")
            }
        }
        if requireLabel, label == nil {
            throw StudyError.schemaMismatch(loc, field: self.label.joined(separator: " | "), expected: "a safety label")
        }
        var type: PromptType?
        if let (path, value) = firstPresent(self.type, in: raw.value), !typeValues.isEmpty {
            guard let text = value.scalarText?.lowercased(), let t = typeValues[text] else {
                let allowed = typeValues.keys.sorted().joined(separator: "/")
                throw StudyError.schemaMismatch(loc, field: path, expected: "one of \(allowed)")
            }
            type = t
        }
        if type == nil, let label { type = typeByLabel[label] }
        if type == nil { type = defaultType }
        var extrasOut: [String: String] = [:]
        for path in extras {
            if let v = raw.value.value(at: path), let text = Self.flatten(v) { extrasOut[path] = text }
        }
        let category = firstPresent(self.category, in: raw.value).flatMap { Self.flatten($0.1) }
        return PromptRecord(prompt: prompt, response: response, label: label, category: category,
                            type: type, extras: extrasOut, location: loc)
    }

    private func parseLabel(_ value: Value) -> SafetyLabel? {
        if case .string(let s) = value, let l = labelValues[s.trimmingCharacters(in: .whitespaces).lowercased()] {
            return l
        }
        guard let b = value.looseBool else { return nil }
        return (b == (booleanLabel == .trueMeansSafe)) ? .safe : .unsafe
    }

    private func firstPresent(_ paths: [String], in value: Value) -> (String, Value)? {
        for path in paths {
            if let v = value.value(at: path), v != .null {
                if case let .string(s) = v, s.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { continue }
                return (path, v)
            }
        }
        return nil
    }

    private func firstText(_ paths: [String], in value: Value) -> String? {
        for path in paths {
            if let text = value.value(at: path)?.scalarText {
                let t = text.trimmingCharacters(in: .whitespacesAndNewlines)
                if !t.isEmpty { return t }
            }
        }
        return nil
    }

    /// Text of a scalar, `,`-joined items of an array, or `,`-joined sorted keys with true values of an object.
    static func flatten(_ value: Value) -> String? {
        switch value {
        case let .list(items):
            let parts = items.compactMap { $0.scalarText }
            return parts.isEmpty ? nil : parts.joined(separator: ",")
        case let .map(o):
            let keys = o.keys.sorted().filter { o[$0]?.looseBool == true }
            return keys.isEmpty ? nil : keys.joined(separator: ",")
        default:
            return value.scalarText
        }
    }
}

extension Value {
    /// The value as a boolean the way data files write one: JSON booleans, numbers 0/1 and
    /// the strings true/false/yes/no/t/f/y/n/1/0 (any case).
    var looseBool: Bool? {
        switch self {
        case let .bool(b): return b
        case let .int(i): return i == 1 ? true : (i == 0 ? false : nil)
        case let .double(d): return d == 1 ? true : (d == 0 ? false : nil)
        case let .string(s):
            switch s.trimmingCharacters(in: .whitespaces).lowercased() {
            case "true", "yes", "1", "t", "y": return true
            case "false", "no", "0", "f", "n": return false
            default: return nil
            }
        default: return nil
        }
    }
}
