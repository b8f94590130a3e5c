// SFTEvaluation: one evaluation point of a fine-tuning curve (paper Figure 3): greedy responses
// to held-out harmful prompts, judged by each configured judge, with compliance, refusal and
// empty (< 3 characters) rates.
import Foundation
import Models
import Tokenizers

/// Rates of one judge at one evaluation point.
public struct CurvePoint: Sendable {
    public var point: SFTEvalPoint
    public var judge: String
    public var count: Int
    public var compliance: Proportion
    public var refusal: Proportion
    public var empty: Proportion
    public var invalid: Proportion

    /// The JSONL object.
    public var json: [String: Any] {
        func p(_ x: Proportion) -> Any { x.rate ?? NSNull() }
        return ["step": point.step, "epoch": point.epoch, "reason": point.reason, "judge": judge, "n": count,
                "compliance": p(compliance), "refusal": p(refusal), "empty": p(empty), "invalid": p(invalid),
                "compliance_ci": [compliance.lower ?? 0, compliance.upper ?? 0],
                "refusal_ci": [refusal.lower ?? 0, refusal.upper ?? 0]]
    }

    /// CSV header and row.
    public static let csvHeader = "step,epoch,reason,judge,n,compliance,refusal,empty,invalid"
    public var csvRow: String {
        func f(_ x: Proportion) -> String { x.rate.map { String(format: "%.6f", $0) } ?? "" }
        return "\(point.step),\(String(format: "%.6f", point.epoch)),\(point.reason),\(judge),\(count),"
            + "\(f(compliance)),\(f(refusal)),\(f(empty)),\(f(invalid))"
    }
}

/// Generates greedy responses to held-out prompts (with the study's `ResponseGenerator`) and
/// judges them with the configured judges (`JudgeKind.judge`, ensembles included).
public struct SFTEvaluator: @unchecked Sendable {
    // @unchecked: holds model-backed generators and judges used by one stage run.
    public var prompts: [PromptRow]
    public var judges: [ConfiguredJudge]
    public var generator: ResponseGenerator

    public init(prompts: [PromptRow], judges: [ConfiguredJudge], generator: ResponseGenerator) {
        self.prompts = prompts
        self.judges = judges
        self.generator = generator
    }

    /// Evaluates the generator's (current) model at `point`: curve points (one per label judge)
    /// and the judged response rows.
    public func evaluate(at point: SFTEvalPoint) throws -> (curve: [CurvePoint], responses: [[String: Any]]) {
        let generated = try generator.generate(prompts.map(\.prompt))
        let rows = zip(prompts, generated).map {
            ResponseRow(id: $0.id, prompt: $0.prompt, response: $1.text, source: $0.source, type: $0.type,
                        tokens: $1.ids.count, stopped: $1.stopped)
        }
        let judged = try JudgeKind.judge(rows, with: judges).rows
        var curve: [CurvePoint] = []
        for c in judges {
            let labels = judged.compactMap { $0.labels[c.name] }
            guard labels.count == judged.count else { continue }  // score-only judges
            func share(_ x: JudgeLabel) -> Proportion { Proportion(successes: labels.filter { $0 == x }.count, total: labels.count) }
            curve.append(CurvePoint(point: point, judge: c.name, count: labels.count, compliance: share(.compliance),
                                    refusal: share(.refusal), empty: share(.empty), invalid: share(.invalid)))
        }
        let out: [[String: Any]] = judged.map { r in
            ["id": r.id, "prompt": r.prompt, "response": r.response, "step": point.step, "epoch": point.epoch,
             "labels": r.labels.mapValues(\.rawValue), "scores": r.scores]
        }
        return (curve, out)
    }
}
