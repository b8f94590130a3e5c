// JudgeSetup: builds configured judges and harmlessness scorers (lexical, guard LM, external
// command, ensemble, reward model, audit probe) from stage params.
import Foundation
import Models
import Pipeline

/// One configured judge and/or scorer.
public struct ConfiguredJudge: @unchecked Sendable {
    // @unchecked: model-backed judges hold class references; used by one stage run.
    public var name: String
    public var kind: String
    /// Produces labels (nil for pure scorers).
    public var judge: (any Judge)?
    /// Produces harmlessness scores S (nil when the judge's scores are not harmlessness scores).
    public var scorer: (any HarmlessnessScorer)?
    /// Ensemble members (names of earlier judges).
    public var members: [String]
    /// Ensemble tie order.
    public var tiePriority: [JudgeLabel] = EnsembleJudge.defaultTiePriority
}

/// A judge that replays judgements computed earlier for the same items (ensemble members).
struct ReplayJudge: Judge {
    let name: String
    let judgements: [Judgement]
    func judge(_ items: [JudgeItem]) throws -> [Judgement] {
        guard items.count == judgements.count else { throw StudyError.countMismatch(what: "judge '\(name)'", expected: judgements.count, got: items.count) }
        return judgements
    }
}

/// Parsing of `params.judges` (list of maps, each with `name` and `kind`).
///
/// Kinds and keys:
/// - `lexical`: `mode` (paper | gcg), `extra` (more phrases)
/// - `guard`: `model` (path) or `model_input` (input name), `template` ({prompt}, {response}),
///   `chat_template` (true), `conversation` (false: render the user/assistant turns with the
///   guard's own chat template instead of `template`, as Llama Guard expects), `safe` / `unsafe` (answer strings), `safe_label` / `unsafe_label`,
///   `threshold` (0), `decision` (margin | greedy: label from the greedy next token, HarmBench
///   protocol, other tokens `invalid`), `max_response_tokens` (clip responses first; HarmBench 512),
///   `max_tokens` (1024), `batch_size` (4)
/// - `external`: `command` (shell, run in the pipeline's directory), `timeout`,
///   `label_aliases` (map), `score_only` (the command prints {"score"}: a harmlessness scorer)
/// - `ensemble`: `members` (names of earlier label judges), `tie_priority`
/// - `reward`: `model` / `model_input`, `template` (hh-rlhf), `label_index` (0), `max_tokens` (1024, as the
///   authors' release truncates for the GPT-2 harmless reward model), `batch_size` (8)
/// - `probe`: `probe_input` (input holding probe.safetensors + probe.json; default `probe`),
///   base `model` / `model_input`, `max_tokens` (512), `batch_size` (8), `chat_template` (true)
public enum JudgeSetup {
    static let keys: [String: [String]] = [
        "lexical": ["mode", "extra"],
        "guard": ["model", "model_input", "template", "chat_template", "conversation", "safe", "unsafe", "safe_label", "unsafe_label", "threshold", "decision", "max_response_tokens", "max_tokens", "batch_size"],
        "external": ["command", "timeout", "label_aliases", "score_only"],
        "ensemble": ["members", "tie_priority"],
        "reward": ["model", "model_input", "template", "label_index", "max_tokens", "batch_size"],
        "probe": ["probe_input", "model", "model_input", "max_tokens", "batch_size", "chat_template"],
    ]

    /// What a stage's judges need, known without loading anything.
    public struct Plan: Sendable, Equatable {
        /// Names of the judges that give labels (the rest only score).
        public var labelJudges: [String] = []
        /// The stage inputs the judges read (models and probes), in order of first use.
        public var inputs: [String] = []
    }

    /// Checks judge entries without loading any model: kinds, keys, unique names, labels,
    /// decisions, ensemble members, and that the inputs each judge reads are among
    /// `inputNames` (nil: not checked; the plan still lists them). `judges` runs it first; the
    /// pipeline runs it (through the kinds' `check`) before any stage runs.
    public static func check(_ maps: [ParamMap], inputNames: [String]?) throws -> Plan {
        var plan = Plan()
        var names: [String] = []
        var voters: [String] = []  // label judges an ensemble may name (not ensembles)
        for m in maps {
            let name = try m.string("name"), kind = try m.string("kind")
            guard let allowed = keys[kind] else {
                throw StudyError.invalidConfiguration("\(m.path).kind: unknown judge kind '\(kind)'; use \(keys.keys.sorted().joined(separator: ", "))")
            }
            try m.checkKeys(["name", "kind"] + allowed)
            guard !names.contains(name) else { throw StudyError.invalidConfiguration("\(m.path).name: '\(name)' is used twice") }
            names.append(name)
            func input(_ key: String, default fallback: String, holding what: String) throws {
                let input = try m.optionalString(key) ?? fallback
                if let inputNames, !inputNames.contains(input) {
                    throw StudyError.invalidConfiguration("\(m.path): no input '\(input)' holding \(what); inputs: "
                                                          + (inputNames.isEmpty ? "none" : inputNames.joined(separator: ", ")))
                }
                if !plan.inputs.contains(input) { plan.inputs.append(input) }
            }
            func model() throws {
                if !m.has("model") { try input("model_input", default: "model", holding: "the judge's model (or set model, a path)") }
            }
            var labels = true
            switch kind {
            case "lexical":
                _ = try lexicalMode(m)
            case "guard":
                try model()
                _ = try label(m, "safe_label", .safe)
                _ = try label(m, "unsafe_label", .unsafe)
                _ = try decision(m)
            case "external":
                _ = try m.string("command")
                if try m.bool("score_only", default: false) { labels = false } else { _ = try labelAliases(m) }
            case "ensemble":
                let members = try m.strings("members")
                guard !members.isEmpty else { throw StudyError.invalidConfiguration("\(m.path).members: list the member judges") }
                for member in members where !voters.contains(member) {
                    throw StudyError.invalidConfiguration("\(m.path).members: '\(member)' is not a label judge listed before '\(name)'")
                }
                _ = try tiePriority(m)
            case "reward":
                try model()
                labels = false
            case "probe":
                try input("probe_input", default: "probe", holding: "the probe")
                try model()
                labels = false
            default:
                break
            }
            if labels { plan.labelJudges.append(name) }
            if labels && kind != "ensemble" { voters.append(name) }
        }
        return plan
    }

    /// The configured judges in order.
    public static func judges(_ context: StageContext, _ maps: [ParamMap]) throws -> [ConfiguredJudge] {
        try setUp(context, maps).judges
    }

    /// The configured judges in order and their plan (checked once, before any judge loads).
    public static func setUp(_ context: StageContext, _ maps: [ParamMap]) throws -> (judges: [ConfiguredJudge], plan: Plan) {
        let plan = try check(maps, inputNames: context.inputNames)
        return (try maps.map { try make(context, $0, name: try $0.string("name"), kind: try $0.string("kind")) }, plan)
    }

    static func lexicalMode(_ m: ParamMap) throws -> LexicalRefusalJudge.Mode {
        let modeName = try m.optionalString("mode") ?? "paper"
        guard let mode = LexicalRefusalJudge.Mode(rawValue: modeName) else {
            throw StudyError.invalidConfiguration("\(m.path).mode: expected paper or gcg")
        }
        return mode
    }

    static func labelAliases(_ m: ParamMap) throws -> [String: JudgeLabel] {
        var aliases: [String: JudgeLabel] = [:]
        for (k, v) in try m.stringMap("label_aliases") {
            guard let l = JudgeLabel(rawValue: v) else { throw StudyError.invalidConfiguration("\(m.path).label_aliases.\(k): unknown label '\(v)'") }
            aliases[k.lowercased()] = l
        }
        return aliases
    }

    static func label(_ m: ParamMap, _ key: String, _ d: JudgeLabel) throws -> JudgeLabel {
        guard let s = try m.optionalString(key) else { return d }
        guard let l = JudgeLabel(rawValue: s) else {
            throw StudyError.invalidConfiguration("\(m.path).\(key): unknown label '\(s)'; use \(JudgeLabel.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return l
    }

    /// The model of a judge entry: `model` (path) or `model_input` (an input of the stage).
    static func model(_ context: StageContext, _ m: ParamMap) throws -> StageModel {
        if let p = try m.optionalString("model") {
            return try StageSupport.loadModel(path: try StageSupport.modelDirectory(StageSupport.path(context, p).standardizedFileURL))
        }
        let url = try StageSupport.modelDirectory(try context.input(try m.optionalString("model_input") ?? "model"))
        return try StageSupport.loadModel(path: url, cacheKey: "artifact:" + url.standardizedFileURL.path)
    }

    /// Builds one judge entry that `check` has accepted (it loads models and probes).
    static func make(_ context: StageContext, _ m: ParamMap, name: String, kind: String) throws -> ConfiguredJudge {
        var c = ConfiguredJudge(name: name, kind: kind, judge: nil, scorer: nil, members: [])
        switch kind {
        case "lexical":
            c.judge = LexicalRefusalJudge(mode: try lexicalMode(m), extraSubstrings: try m.strings("extra"), name: name)
        case "guard":
            let g = try GuardModelJudge(
                model: try model(context, m), template: try m.optionalString("template").map(PromptTemplate.init) ?? GuardModelJudge.defaultTemplate,
                useChatTemplate: try m.bool("chat_template", default: true), conversation: try m.bool("conversation", default: false),
                safeAnswer: try m.optionalString("safe") ?? "safe",
                unsafeAnswer: try m.optionalString("unsafe") ?? "unsafe", safeLabel: try label(m, "safe_label", .safe),
                unsafeLabel: try label(m, "unsafe_label", .unsafe), threshold: try m.double("threshold", default: 0),
                decision: try decision(m), maxResponseTokens: m.has("max_response_tokens") ? try m.int("max_response_tokens", default: 512) : nil,
                maxTokens: try m.int("max_tokens", default: 1024), batchSize: try m.int("batch_size", default: 4), name: name)
            c.judge = g
            c.scorer = g
        case "external":
            let command = ExternalCommand.shell("cd '\(context.workingDirectory.path.replacingOccurrences(of: "'", with: "'\\''"))' && " + (try m.string("command")),
                                                timeoutSeconds: m.has("timeout") ? try m.double("timeout", default: 0) : nil)
            if try m.bool("score_only", default: false) {
                c.scorer = ExternalCommandScorer(command: command, name: name)
            } else {
                c.judge = ExternalCommandJudge(command: command, name: name, labelAliases: try labelAliases(m))
            }
        case "ensemble":
            c.members = try m.strings("members")
            c.tiePriority = try tiePriority(m)
        case "reward":
            c.scorer = try RewardModelScorer(model: try model(context, m), template: try m.optionalString("template").map(PromptTemplate.init) ?? .hhRLHF,
                                             labelIndex: try m.int("label_index", default: 0), maxTokens: try m.int("max_tokens", default: 1024),
                                             batchSize: try m.int("batch_size", default: 8), name: name)
        case "probe":
            let probe = try LinearProbe.load(from: try context.input(try m.optionalString("probe_input") ?? "probe"))
            var o = FeatureOptions()
            o.maxTokens = try m.int("max_tokens", default: 512)
            o.batchSize = try m.int("batch_size", default: 8)
            o.useChatTemplate = try m.bool("chat_template", default: true)
            c.scorer = try AuditProbeScorer(extractor: FeatureExtractor(model: try model(context, m), options: o), probe: probe, name: name)
        default:
            break
        }
        return c
    }

    static func decision(_ m: ParamMap) throws -> GuardModelJudge.Decision {
        let s = try m.optionalString("decision") ?? "margin"
        guard let d = GuardModelJudge.Decision(rawValue: s) else { throw StudyError.invalidConfiguration("\(m.path).decision: expected margin or greedy") }
        return d
    }

    /// A tie order from names (default `EnsembleJudge.defaultTiePriority`).
    static func tiePriority(_ m: ParamMap) throws -> [JudgeLabel] {
        let names = try m.strings("tie_priority")
        guard !names.isEmpty else { return EnsembleJudge.defaultTiePriority }
        return try names.map {
            guard let l = JudgeLabel(rawValue: $0) else { throw StudyError.invalidConfiguration("\(m.path).tie_priority: unknown label '\($0)'") }
            return l
        }
    }
}
