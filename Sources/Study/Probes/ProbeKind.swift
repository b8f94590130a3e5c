// `probe`: fits the latent monitor / audit probe on stored features (paper Section 3, Appendix B).
import Foundation
import Pipeline

/// The `probe` kind: fits the latent monitor / audit probe on stored features (paper Section 3, Appendix B).
public struct ProbeKind: StageKind {
    public init() {}
    public var name: String { "probe" }
    public var version: String { "1" }
    public static let kindDescription = """
        Fits the latent monitor / audit probe on stored features (paper Section 3, Appendix B). The probe, \
        flatten -> linear 512 (no bias) -> linear logit, trains with BCE and AdamW on a seeded train / held-out \
        split, and the epoch with the best held-out AUROC (the earliest on ties) is kept. Writes \
        `probe.safetensors` (`proj.weight` [512, L*D], `head.weight` [1, 512], `head.bias` [1]), `probe.json` \
        (config, training settings, chosen epoch, held-out ids) and `epochs.jsonl` (per epoch: train loss, \
        held-out loss, AUROC, gap).
        """
    public var paramsSchema: ParamsSchema {
        ParamsSchema([
            ParamSpec("projection", .int, default: .int(512)),
            ParamSpec("learning_rate", .number, default: .double(3e-4)),
            ParamSpec("weight_decay", .number, default: .double(1e-4)),
            ParamSpec("batch_size", .int, default: .int(32)),
            ParamSpec("epochs", .int, default: .int(30)),
            ParamSpec("train_fraction", .number, default: .double(0.8)),
            ParamSpec("seed", .int, doc: "split / init / shuffle seed (default: the pipeline seed)"),
            ParamSpec("standardize", .bool, default: .bool(false),
                      doc: "train on z-scored features, folded into the saved weights (the paper uses raw features)"),
        ])
    }
    public var inputs: InputsDeclaration { .named([InputSpec("features", doc: "a `features` artifact with labelled rows")]) }
    public var outputs: OutputsDeclaration { .fixed(["probe.safetensors", "probe.json", "epochs.jsonl"]) }

    /// The training settings: projection, batch size and epochs >= 1, learning rate > 0, weight
    /// decay >= 0, train fraction strictly between 0 and 1.
    static func options(_ p: StageParams, seed: Int) throws -> ProbeTrainingOptions {
        var o = ProbeTrainingOptions()
        o.projection = try p.int("projection", default: 512)
        o.learningRate = Float(try p.double("learning_rate", default: 3e-4))
        o.weightDecay = Float(try p.double("weight_decay", default: 1e-4))
        o.batchSize = try p.int("batch_size", default: 32)
        o.epochs = try p.int("epochs", default: 30)
        o.trainFraction = try p.double("train_fraction", default: 0.8)
        o.seed = UInt64(truncatingIfNeeded: try p.int("seed", default: seed))
        o.standardize = try p.bool("standardize", default: false)
        for (key, v) in [("projection", o.projection), ("batch_size", o.batchSize), ("epochs", o.epochs)] where v < 1 {
            throw StudyError.invalidConfiguration("params.\(key): must be >= 1, got \(v)")
        }
        guard o.learningRate > 0, o.learningRate.isFinite else {
            throw StudyError.invalidConfiguration("params.learning_rate: must be a positive number, got \(o.learningRate)")
        }
        guard o.weightDecay >= 0, o.weightDecay.isFinite else {
            throw StudyError.invalidConfiguration("params.weight_decay: must be >= 0, got \(o.weightDecay)")
        }
        guard o.trainFraction > 0, o.trainFraction < 1 else {
            throw StudyError.invalidConfiguration("params.train_fraction: must be between 0 and 1 (a held-out side is needed to pick the epoch), got \(o.trainFraction)")
        }
        return o
    }

    /// Before any stage runs: the training settings.
    public func check(_ p: StageParams, inputNames: [String]) throws {
        try StageCheck.run { _ = try Self.options(p, seed: 0) }
    }

    public func run(_ context: StageContext) throws {
        let p = context.params
        let o = try Self.options(p, seed: context.seed)
        let set = try FeatureSet.load(from: try context.input("features"))
        let progress = context.progress("probe epochs", total: o.epochs)
        let result = try ProbeTrainer.train(set, options: o) { e in
            progress.advance()
            context.log(String(format: "epoch %d: train loss %.4f, held-out loss %.4f, AUROC %@", e.epoch, e.trainLoss, e.heldoutLoss,
                               e.heldoutAUROC.map { String(format: "%.4f", $0) } ?? "n/a"))
        }
        progress.finish()
        let best = result.epochs[result.bestEpoch - 1]
        try result.probe.save(to: context.outputDirectory, extra: [
            "chosen_epoch": .double(Double(result.bestEpoch)),
            "heldout_auroc": best.heldoutAUROC.map { .double($0) } ?? .null,
            "heldout_gap": best.heldoutGap.map { .double($0) } ?? .null,
            "training": .map([
                "loss": .string("binary cross-entropy with logits"), "optimizer": .string("AdamW"),
                "learning_rate": .double(Double(o.learningRate)), "weight_decay": .double(Double(o.weightDecay)),
                "batch_size": .double(Double(o.batchSize)), "epochs": .double(Double(o.epochs)),
                "train_fraction": .double(o.trainFraction), "seed": .double(Double(o.seed)),
                "selection": .string("best held-out AUROC (earliest on ties)"),
                "standardize": .bool(o.standardize),
            ]),
            "train_count": .double(Double(result.trainIndices.count)),
            "heldout_ids": .list(result.heldoutIndices.map { .string(set.rows[$0].id) }),
        ])
        try StageSupport.writeJSONL(result.epochs, to: context.output("epochs.jsonl"))
        try context.writeMetrics(["chosen_epoch": .int(result.bestEpoch),
                                  "heldout_auroc": best.heldoutAUROC.map { .double($0) } ?? .null,
                                  "heldout_gap": best.heldoutGap.map { .double($0) } ?? .null])
    }
}
