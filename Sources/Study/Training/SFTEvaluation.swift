// SFTEvaluation: one evaluation point of a fine-tuning curve (paper Figure 3): greedy responses
// to held-out harmful prompts, judged by each configured judge, with compliance, refusal and
// empty (< 3 characters) rates.
import Foundation
import Models
import Tokenizers

/// A held-out prompt.
public struct HeldOutPrompt: Sendable, Equatable {
    public var id: String
    public var prompt: String

    public init(id: String, prompt: String) {
        self.id = id
        self.prompt = prompt
    }
}

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

/// Generates and judges responses to held-out prompts.
public struct SFTEvaluator {
    public var prompts: [HeldOutPrompt]
    public var judges: [any Judge]
    public var encoder: ChatExampleEncoder
    public var maxNewTokens: Int
    /// Prompts per generation batch.
    public var batchSize: Int

    public init(prompts: [HeldOutPrompt], judges: [any Judge], encoder: ChatExampleEncoder, maxNewTokens: Int = 128,
                batchSize: Int = 8) {
        self.prompts = prompts
        self.judges = judges
        self.encoder = encoder
        self.maxNewTokens = maxNewTokens
        self.batchSize = max(1, batchSize)
    }

    /// Greedy responses, one per prompt (special tokens removed).
    public func responses(_ model: TransformerModel) throws -> [String] {
        var out: [String] = []
        let tok = encoder.tokenizer
        var eos = model.config.eosTokenIds
        if let e = tok.eosTokenId, !eos.contains(e) { eos.append(e) }
        for start in stride(from: 0, to: prompts.count, by: batchSize) {
            let chunk = prompts[start..<min(start + batchSize, prompts.count)]
            let ids = try chunk.map { try encoder.promptIds($0.prompt) }
            let result = try model.generate(prompts: ids, options: GenerationOptions(
                maxNewTokens: maxNewTokens, eosTokenIds: eos, padTokenId: encoder.padId))
            for row in result.tokens {
                let kept = row.filter { !eos.contains($0) }
                out.append(tok.decode(kept, skipSpecialTokens: true).trimmingCharacters(in: .whitespacesAndNewlines))
            }
        }
        return out
    }

    /// Evaluates `model` at `point`: the curve points (one per judge) and the response rows.
    public func evaluate(_ model: TransformerModel, at point: SFTEvalPoint) throws
        -> (curve: [CurvePoint], responses: [[String: Any]]) {
        let texts = try responses(model)
        let items = zip(prompts, texts).map { JudgeItem(prompt: $0.prompt, response: $1) }
        var labels: [String: [JudgeLabel]] = [:]
        var curve: [CurvePoint] = []
        for judge in judges {
            let verdicts = try judge.judge(items)
            guard verdicts.count == items.count else {
                throw StudyError.countMismatch(what: "judge \(judge.name)", expected: items.count, got: verdicts.count)
            }
            let l = verdicts.map(\.label)
            labels[judge.name] = l
            func share(_ x: JudgeLabel) -> Proportion { Proportion(successes: l.filter { $0 == x }.count, total: l.count) }
            curve.append(CurvePoint(point: point, judge: judge.name, count: l.count, compliance: share(.compliance),
                                    refusal: share(.refusal), empty: share(.empty), invalid: share(.invalid)))
        }
        let rows: [[String: Any]] = prompts.indices.map { i in
            var r: [String: Any] = ["id": prompts[i].id, "prompt": prompts[i].prompt, "response": texts[i],
                                    "step": point.step, "epoch": point.epoch]
            r["labels"] = labels.mapValues { $0[i].rawValue }
            return r
        }
        return (curve, rows)
    }
}
