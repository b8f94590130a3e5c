// `judge`: runs configured judges and harmlessness scorers over a responses file.
import Foundation
import Pipeline

/// The `judge` kind: configured judges and harmlessness scorers over a responses file.
public struct JudgeKind: StageKind {
    public init() {}
    public var name: String { "judge" }
    public var version: String { "1" }
    public static let kindDescription = """
        Runs the configured judges and harmlessness scorers over a responses file. Each response keeps every \
        judge's label and score (ensembles also keep their members' votes), so reports can show disagreement \
        (paper A.6). Writes `judgements.jsonl` ({id, prompt, response, source, type, labels {judge: label}, \
        scores {judge: S}, members {ensemble: [votes]}, details {judge: text}}) and `summary.json` (label \
        counts, mean scores and ensemble agreement per judge).
        """
    public static let inputsDescription = """
        `responses` (rows {id, prompt, response, ...}), plus the model or probe inputs the judges name \
        (`model_input`, `probe_input`; default `model` and `probe`).
        """
    public var paramsSchema: ParamsSchema {
        ParamsSchema([
            ParamSpec("judges", .list(.map), required: true, doc: "judges and scorers, see JudgeSetup"),
            ParamSpec("limit", .int, doc: "judge the first N responses"),
        ])
    }
    public var outputs: OutputsDeclaration { .fixed(["judgements.jsonl", "summary.json"]) }

    /// One judged row.
    public struct Row: Codable, Sendable {
        public var id: String
        public var prompt: String
        public var response: String
        public var source: String?
        public var type: PromptType?
        public var labels: [String: JudgeLabel] = [:]
        public var scores: [String: Double] = [:]
        public var members: [String: [MemberVote]] = [:]
        public var details: [String: String] = [:]
    }

    /// Per-judge summary.
    public struct JudgeSummary: Codable, Sendable {
        public var name: String
        public var kind: String
        public var labelCounts: [String: Int]?
        public var score: ScoreSummary?
        public var agreement: JudgeDisagreement?
    }

    /// Score statistics.
    public struct ScoreSummary: Codable, Sendable {
        public var count: Int
        public var mean: Double
        public var min: Double
        public var max: Double
    }

    /// The judges and the inputs (`responses` and those the judges read), before any stage runs.
    public func check(_ p: StageParams, inputNames: [String]) throws {
        try StageCheck.run {
            _ = try StageCheck.judgesAndInputs(try ParamMap.list(p, "judges"), inputNames: inputNames, kind: name,
                                               required: ["responses"], optional: [])
        }
    }

    public func run(_ context: StageContext) throws {
        let url = try StageSupport.inputFile(context, "responses", preferred: ["responses.jsonl", "kept.jsonl"])
        var responses = try ResponseRow.read(url)
        if context.params.has("limit") { responses = Array(responses.prefix(max(0, try context.params.int("limit")))) }
        let configured = try JudgeSetup.judges(context, try ParamMap.list(context.params, "judges"))
        let (rows, summaries) = try Self.judge(responses, with: configured, log: context.log)
        try StageSupport.writeJSONL(rows, to: context.output("judgements.jsonl"))
        try StageSupport.writeJSON(summaries, to: context.output("summary.json"))
    }

    /// Runs every configured judge / scorer over `responses` (ensembles replay their members).
    public static func judge(_ responses: [ResponseRow], with configured: [ConfiguredJudge],
                             log: (String) -> Void = { _ in }) throws -> (rows: [Row], summaries: [JudgeSummary]) {
        guard !configured.isEmpty else { throw StudyError.invalidConfiguration("params.judges: list at least one judge") }
        let items = responses.map(\.item)
        var rows = responses.map { Row(id: $0.id, prompt: $0.prompt, response: $0.response, source: $0.source, type: $0.type) }
        var results: [String: [Judgement]] = [:]
        var summaries: [JudgeSummary] = []
        for c in configured {
            let started = Date()
            var summary = JudgeSummary(name: c.name, kind: c.kind)
            var judgements: [Judgement]?
            if let j = c.judge {
                judgements = try j.judge(items)
            } else if !c.members.isEmpty {
                let members: [any Judge] = c.members.map { ReplayJudge(name: $0, judgements: results[$0] ?? []) }
                let e = EnsembleJudge(members: members, tiePriority: c.tiePriority, name: c.name)
                judgements = try e.judge(items)
                summary.agreement = JudgeDisagreement(name: c.name, judgements: judgements ?? [])
            }
            if let js = judgements {
                guard js.count == items.count else { throw StudyError.countMismatch(what: "judge '\(c.name)'", expected: items.count, got: js.count) }
                results[c.name] = js
                var counts: [String: Int] = [:]
                for (i, j) in js.enumerated() {
                    rows[i].labels[c.name] = j.label
                    counts[j.label.rawValue, default: 0] += 1
                    if let m = j.members { rows[i].members[c.name] = m }
                    if let d = j.detail { rows[i].details[c.name] = d }
                    if let s = j.score { rows[i].scores[c.name] = s }
                }
                summary.labelCounts = counts
            }
            if let s = c.scorer {
                // A guard judge's judgements already carry its scores.
                let values = c.judge != nil && judgements?.allSatisfy({ $0.score != nil }) == true
                    ? judgements!.map { $0.score! } : try s.scores(items)
                guard values.count == items.count else { throw StudyError.countMismatch(what: "scorer '\(c.name)'", expected: items.count, got: values.count) }
                for (i, v) in values.enumerated() { rows[i].scores[c.name] = v }
            }
            let scored = rows.compactMap { $0.scores[c.name] }
            if !scored.isEmpty {
                summary.score = ScoreSummary(count: scored.count, mean: scored.reduce(0, +) / Double(scored.count),
                                             min: scored.min() ?? 0, max: scored.max() ?? 0)
            }
            summaries.append(summary)
            log("judge \(c.name) (\(c.kind)): \(items.count) items in \(String(format: "%.2f", Date().timeIntervalSince(started))) s")
        }
        return (rows, summaries)
    }
}
