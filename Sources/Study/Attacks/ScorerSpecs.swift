// ScorerSpecs: scorers and judges of the attack stages from stage params.
//
// `scores:` entries: "lexical" (LexicalRefusalScorer, paper substrings), "lexical-gcg", or a
// map `{name: NAME, command: "shell command line", timeout: SECONDS}` for an
// ExternalCommandScorer. `judge:` is "lexical" (default), "lexical-gcg" or a map
// `{name:, command:, aliases: {yes: compliance, no: refusal}}` for an ExternalCommandJudge.
import Foundation
import Pipeline

/// Builds scorers and judges from stage parameter values.
public enum ScorerSpecs {
    /// Scorers from a `scores:` list (a single string or map is accepted as a one-entry list).
    /// A map with `kind` (`reward`, `probe`, `guard`, `external`) is built by `JudgeSetup` with the
    /// same keys as in the `judge` kind (model-backed scorers read their models and probe from
    /// `context`'s inputs, e.g. `{name: audit, kind: probe, model_input: audit_model}`).
    public static func scorers(_ value: Value, param: String = "scores", context: StageContext? = nil) throws -> [any HarmlessnessScorer] {
        let entries = value.listValue ?? [value]
        var out: [any HarmlessnessScorer] = []
        for (i, e) in entries.enumerated() {
            let at = "\(param)[\(i)]"
            if let m = e.mapValue, m["kind"] != nil {
                guard let context else { throw StudyError.invalidConfiguration("\(at): model-backed scorers need a stage context") }
                let configured = try JudgeSetup.judges(context, [try ParamMap(e, path: at)])
                guard let scorer = configured.first?.scorer else {
                    throw StudyError.invalidConfiguration("\(at): judge kind '\(m["kind"]?.description ?? "")' gives no harmlessness score; use reward, probe, guard or external with score_only")
                }
                out.append(scorer)
            } else if let s = e.stringValue {
                switch s {
                case "lexical": out.append(LexicalRefusalScorer())
                case "lexical-gcg": out.append(LexicalRefusalScorer(judge: LexicalRefusalJudge(mode: .gcg), name: "lexical-gcg"))
                default:
                    throw StudyError.invalidConfiguration("\(at): unknown scorer '\(s)'; use lexical, lexical-gcg or a map {name:, command:}")
                }
            } else if let m = e.mapValue {
                let cmd = try command(m, at: at)
                out.append(ExternalCommandScorer(command: cmd, name: m["name"]?.stringValue ?? "external-\(i)"))
            } else {
                throw StudyError.invalidConfiguration("\(at): expected a scorer name or a map {name:, command:}, got \(e.typeName)")
            }
        }
        let names = out.map(\.name)
        if Set(names).count != names.count {
            throw StudyError.invalidConfiguration("\(param): scorer names must be unique, got \(names.joined(separator: ", "))")
        }
        return out
    }

    /// A judge from a `judge:` value.
    public static func judge(_ value: Value, param: String = "judge") throws -> any Judge {
        if let s = value.stringValue {
            switch s {
            case "lexical": return LexicalRefusalJudge()
            case "lexical-gcg": return LexicalRefusalJudge(mode: .gcg)
            default: throw StudyError.invalidConfiguration("\(param): unknown judge '\(s)'; use lexical, lexical-gcg or a map {name:, command:}")
            }
        }
        guard let m = value.mapValue else {
            throw StudyError.invalidConfiguration("\(param): expected a judge name or a map {name:, command:}, got \(value.typeName)")
        }
        var aliases: [String: JudgeLabel] = [:]
        for (k, v) in m["aliases"]?.mapValue ?? [:] {
            guard let raw = v.stringValue, let label = JudgeLabel(rawValue: raw) else {
                throw StudyError.invalidConfiguration("\(param).aliases.\(k): expected one of \(JudgeLabel.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            aliases[k.lowercased()] = label
        }
        return ExternalCommandJudge(command: try command(m, at: param), name: m["name"]?.stringValue ?? "external",
                                    labelAliases: aliases)
    }

    private static func command(_ m: [String: Value], at: String) throws -> ExternalCommand {
        guard let line = m["command"]?.stringValue, !line.isEmpty else {
            throw StudyError.invalidConfiguration("\(at): a map entry needs a 'command' string (the JSONL protocol of ExternalCommandScorer)")
        }
        return ExternalCommand.shell(line, timeoutSeconds: m["timeout"]?.doubleValue)
    }
}
