// `probe-eval`: a fixed probe on any model's features: AUROC and the calibrated gap, with counts.
import Foundation
import Pipeline

/// The `probe-eval` kind: a fixed probe on any model's features: AUROC and the calibrated gap.
public struct ProbeEvalKind: StageKind {
    public init() {}
    public var name: String { "probe-eval" }
    public var version: String { "1" }
    public static let kindDescription = """
        Applies a trained probe to labelled features: AUROC and the calibrated gap, with counts. `split: \
        heldout` keeps only the probe's held-out ids (for the features it was trained on). Writes `eval.json` \
        (AUROC, calibrated gap = mean sigmoid on unsafe - mean sigmoid on safe, counts, mean logits and sigmoids \
        per class) and `logits.jsonl` ({id, label, logit, sigmoid}).
        """
    public var paramsSchema: ParamsSchema {
        ParamsSchema([ParamSpec("split", .string, default: .string("all"), choices: ["all", "heldout"])])
    }
    public var inputs: InputsDeclaration { .named([InputSpec("probe", doc: "a `probe` artifact"), InputSpec("features", doc: "a `features` artifact with labelled rows")]) }
    public var outputs: OutputsDeclaration { .fixed(["eval.json", "logits.jsonl"]) }

    /// Evaluation result.
    public struct Result: Codable, Sendable {
        public var auroc: Double?
        public var calibratedGap: Double?
        public var count: Int
        public var safe: Int
        public var unsafe: Int
        public var meanSigmoidSafe: Double?
        public var meanSigmoidUnsafe: Double?
        public var meanLogitSafe: Double?
        public var meanLogitUnsafe: Double?
        public var split: String
    }

    struct LogitRow: Codable {
        var id: String
        var label: Int?
        var logit: Double
        var sigmoid: Double
    }

    /// Metrics of logits against labels (true = unsafe).
    public static func evaluate(logits: [Double], unsafe: [Bool], split: String) throws -> Result {
        func mean(_ xs: [Double]) -> Double? { xs.isEmpty ? nil : xs.reduce(0, +) / Double(xs.count) }
        let pos = zip(logits, unsafe).filter { $0.1 }.map(\.0), neg = zip(logits, unsafe).filter { !$0.1 }.map(\.0)
        return Result(auroc: try ProbeMetrics.auroc(scores: logits, positives: unsafe),
                      calibratedGap: try ProbeMetrics.calibratedGap(logits: logits, positives: unsafe),
                      count: logits.count, safe: neg.count, unsafe: pos.count,
                      meanSigmoidSafe: mean(neg.map(ProbeMetrics.sigmoid)), meanSigmoidUnsafe: mean(pos.map(ProbeMetrics.sigmoid)),
                      meanLogitSafe: mean(neg), meanLogitUnsafe: mean(pos), split: split)
    }

    public func run(_ context: StageContext) throws {
        let probeDir = try context.input("probe")
        let probe = try LinearProbe.load(from: probeDir)
        let set = try FeatureSet.load(from: try context.input("features"))
        guard set.layers == probe.config.layers, set.hidden == probe.config.hidden else {
            throw StudyError.invalidConfiguration("probe expects \(probe.config.layers) x \(probe.config.hidden) features, got \(set.layers) x \(set.hidden); use features of a model with the probe's architecture")
        }
        let split = try context.params.string("split")
        var rows = set.rows.filter { $0.label != nil }
        if split == "heldout" {
            let cfg = try StageSupport.readJSONValue(from: probeDir.appendingPathComponent("probe.json"))
            guard case let .list(ids)? = cfg.value(at: "heldout_ids") else {
                throw StudyError.invalidConfiguration("probe.json has no heldout_ids; use split: all")
            }
            let keep = Set(ids.compactMap { $0.scalarText })
            rows = rows.filter { keep.contains($0.id) }
        }
        guard !rows.isEmpty else { throw StudyError.invalidConfiguration("probe-eval: no labelled feature rows to evaluate") }
        let logits = probe.logits(set.gather(rows.map(\.index))).map(Double.init)
        let result = try Self.evaluate(logits: logits, unsafe: rows.map { $0.label == 1 }, split: split)
        try StageSupport.writeJSON(result, to: context.output("eval.json"))
        try StageSupport.writeJSONL(zip(rows, logits).map { LogitRow(id: $0.id, label: $0.label, logit: $1, sigmoid: ProbeMetrics.sigmoid($1)) },
                                    to: context.output("logits.jsonl"))
        try context.writeMetrics(["auroc": result.auroc.map { .double($0) } ?? .null,
                                  "calibrated_gap": result.calibratedGap.map { .double($0) } ?? .null,
                                  "count": .int(result.count), "safe": .int(result.safe), "unsafe": .int(result.unsafe)])
        context.log("AUROC \(result.auroc.map { String(format: "%.4f", $0) } ?? "n/a"), gap \(result.calibratedGap.map { String(format: "%.4f", $0) } ?? "n/a") on \(result.count) rows")
    }
}
