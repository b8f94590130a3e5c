// SFTTrainer: supervised fine-tuning on (prompt, response) pairs with the chat template and a
// response-only loss (paper Sections 4-5: harmful fine-tuning; also the safety alignment of
// the "Safe" base), LoRA (PEFT defaults of the harmful-FT literature) or full fine-tuning,
// with evaluation callbacks at step 0, every N steps and every epoch.
//
// Dimension legend: B batch rows (split into micro-batches of M), R loss rows (positions that
// predict a response token), V vocabulary.
import Foundation
import Models
import Numerics

/// Hyper-parameters of supervised fine-tuning.
public struct SFTConfig: Sendable, Equatable, TrainingSettings {
    /// LoRA adapters (nil = full fine-tuning). Default r 16, alpha 32, dropout 0.05, all 7 projections.
    public var lora: LoRAConfig? = LoRAConfig()
    public var learningRate: Float = 1e-4
    public var weightDecay: Float = 0
    /// Learning-rate schedule over optimiser steps (`constant` by default).
    public var schedule: SFTSchedule = .constant
    public var warmupRatio: Double = 0
    /// Examples per optimiser step.
    public var batchSize = 8
    /// Examples per forward/backward (gradients accumulate up to `batchSize`); bounds memory.
    public var microBatch = 8
    public var epochs = 1
    public var maxTokens = 512
    /// Global gradient-norm clip (0 = off).
    public var maxGradNorm: Float = 1
    public var seed: UInt64 = 0
    public var checkpointing = true
    /// With checkpointing, the last `keptBlocks` blocks are not recomputed.
    public var keptBlocks = 0
    /// With checkpointing, the last `replayedBlocks` recomputed blocks reuse their recorded
    /// linear outputs (`CheckpointPolicy.blocks`).
    public var replayedBlocks = 0

    public init() {}

    /// Checks what the trainer needs, naming the `sft` kind's params.
    public func validate() throws {
        try TrainingChecks.positive(["batch_size": batchSize, "micro_batch": microBatch, "epochs": epochs, "max_tokens": maxTokens])
        try TrainingChecks.common(lora: lora, learningRate: learningRate, kept: keptBlocks, replayed: replayedBlocks)
    }
}

/// A trainer's settings, checked before training (messages name the kind's params).
public protocol TrainingSettings {
    func validate() throws
}

/// Checks shared by the training configs (`SFTConfig`, `DissociationConfig`); messages name
/// the kinds' params, so the pipeline reports them at their place in the file.
enum TrainingChecks {
    /// Each count > 0, in name order.
    static func positive(_ counts: [String: Int]) throws {
        for (name, value) in counts.sorted(by: { $0.key < $1.key }) where value <= 0 {
            throw StudyError.invalidConfiguration("params.\(name): must be positive, got \(value)")
        }
    }

    static func common(lora: LoRAConfig?, learningRate: Float, kept: Int, replayed: Int) throws {
        if let lora, lora.rank <= 0 { throw StudyError.invalidConfiguration("params.lora_r: must be positive, got \(lora.rank)") }
        guard learningRate.isFinite, learningRate >= 0 else {
            throw StudyError.invalidConfiguration("params.learning_rate: must be a finite number >= 0, got \(learningRate)")
        }
        guard kept >= 0 else {
            throw StudyError.invalidConfiguration("params.keep_blocks: must be 0 or more (blocks that skip recomputation), got \(kept)")
        }
        guard replayed >= 0 else {
            throw StudyError.invalidConfiguration("params.replay_blocks: must be 0 or more (recomputed blocks that store their linear outputs), got \(replayed)")
        }
    }
}

/// Learning-rate schedule names of the `sft` kind.
public enum SFTSchedule: String, Sendable, Equatable, CaseIterable {
    case constant, linear, cosine
}

/// One optimiser step of the log.
public struct SFTStepLog: Sendable {
    public var step: Int
    public var epoch: Int
    public var loss: Double
    public var learningRate: Double
    public var gradNorm: Double
    /// Supervised (response) tokens in the step.
    public var tokens: Int

    public var json: [String: Any] {
        ["step": step, "epoch": epoch, "loss": loss, "lr": learningRate, "grad_norm": gradNorm, "tokens": tokens]
    }
}

/// When an evaluation happens.
public struct SFTEvalPoint: Sendable, Equatable {
    /// Optimiser steps done so far.
    public var step: Int
    /// Fractional epochs done (step / steps per epoch).
    public var epoch: Double
    /// "start", "step" or "epoch".
    public var reason: String
}

/// Fine-tunes a model in place.
public final class SFTTrainer {
    public let model: TransformerModel
    public let config: SFTConfig
    public let encoder: ChatExampleEncoder
    public let optimizer: AdamW
    public let parameters: [Variable]

    /// Installs LoRA adapters (or makes every parameter trainable) and builds the optimiser.
    public init(model: TransformerModel, encoder: ChatExampleEncoder, config: SFTConfig) throws {
        try config.validate()
        self.model = model
        self.config = config
        self.encoder = encoder
        if let lora = config.lora {
            try model.addLoRA(lora)
        } else {
            model.setTrainable()
        }
        parameters = model.trainableParameters.map(\.variable)
        optimizer = AdamW(parameters: parameters, learningRate: config.learningRate, weightDecay: config.weightDecay)
    }

    /// Optimiser steps per epoch for `count` examples.
    public func stepsPerEpoch(_ count: Int) -> Int { (count + config.batchSize - 1) / config.batchSize }

    /// Mean response-token NLL of `examples` without updating (no dropout).
    public func loss(_ examples: [ChatExample]) throws -> Float {
        var total: Double = 0, count = 0
        for start in stride(from: 0, to: examples.count, by: config.microBatch) {
            let batch = ChatBatch(Array(examples[start..<min(start + config.microBatch, examples.count)]), padId: encoder.padId)
            guard !batch.lossRows.isEmpty else { continue }
            guard let logits = try model.forward(batch.tokens, options: ForwardOptions(logits: .rows(batch.lossRows))).logits else {
                continue
            }
            let lp = Kernels.targetLogProbabilities(logits, targets: batch.lossTargets)
            total -= lp.reduce(0) { $0 + Double($1) }
            count += lp.count
        }
        return count == 0 ? 0 : Float(total / Double(count))
    }

    /// One optimiser step on `examples` (a batch): micro-batches weighted by their loss-token
    /// counts so the gradient is that of the batch's mean token NLL. Returns (loss, grad norm, tokens).
    public func step(_ examples: [ChatExample], step: Int, learningRateFactor: Float = 1) throws
        -> (loss: Float, gradNorm: Float, tokens: Int) {
        let batchTokens = examples.reduce(0) { $0 + max(0, $1.ids.count - max(1, $1.responseStart)) }
        guard batchTokens > 0 else { return (0, 0, 0) }
        var lossSum: Double = 0
        for (k, start) in stride(from: 0, to: examples.count, by: config.microBatch).enumerated() {
            let batch = ChatBatch(Array(examples[start..<min(start + config.microBatch, examples.count)]), padId: encoder.padId)
            guard !batch.lossRows.isEmpty else { continue }
            let weight = Float(batch.lossRows.count) / Float(batchTokens)
            var options = DifferentiableOptions(logits: .rows(batch.lossRows), training: true,
                                                seed: config.seed &+ UInt64(step &* 1000 &+ k))
            // The head and the loss a chunk of rows at a time: no [R, V] logits are stored.
            options.lossTargets = batch.lossTargets
            let checkpointing = CheckpointPolicy(enabled: config.checkpointing, kept: config.keptBlocks,
                                                 replayed: config.replayedBlocks)
            let l = try model.trainingBackward(batch.tokens, options: options, checkpointing: checkpointing) { out in
                guard let nll = out.loss else { preconditionFailure("SFT: no loss") }
                guard nll.item.isFinite else {
                    throw StudyError.trainingDiverged(step: step, microBatch: k, term: "nll", value: nll.item)
                }
                return Ops.scale(nll, by: weight)
            }
            lossSum += Double(l)
        }
        optimizer.learningRateFactor = learningRateFactor
        let norm = config.maxGradNorm > 0 ? Gradients.clipGlobalNorm(parameters, maxNorm: config.maxGradNorm)
                                          : Gradients.globalNorm(parameters)
        guard norm.isFinite else { throw StudyError.trainingDiverged(step: step, microBatch: 0, term: "grad_norm", value: norm) }
        optimizer.step()
        optimizer.zeroGrad()
        return (Float(lossSum), norm, batchTokens)
    }

    /// Trains on `examples` for the configured epochs with seeded shuffling. Calls `evaluate` at
    /// step 0, after every `evalEvery` steps (0 = never) and after every epoch (once per step
    /// count), and `onStep` after every optimiser step.
    public func train(_ examples: [ChatExample], evalEvery: Int = 0,
                      evaluate: (SFTEvalPoint) throws -> Void = { _ in },
                      onStep: (SFTStepLog) throws -> Void = { _ in }) throws {
        let perEpoch = stepsPerEpoch(examples.count)
        let total = perEpoch * config.epochs
        let warmup = Int((Double(total) * config.warmupRatio).rounded(.up))
        let schedule: LRSchedule
        switch config.schedule {
        case .constant: schedule = warmup > 0 ? .constantWithWarmup(warmupSteps: warmup) : .constant
        case .linear: schedule = .linearWarmupDecay(warmupSteps: warmup, totalSteps: total)
        case .cosine: schedule = .cosine(warmupSteps: warmup, totalSteps: total)
        }
        var lastEval = -1
        func eval(_ step: Int, _ reason: String) throws {
            guard step != lastEval else { return }
            lastEval = step
            try evaluate(SFTEvalPoint(step: step, epoch: Double(step) / Double(max(1, perEpoch)), reason: reason))
        }
        try eval(0, "start")
        var step = 0
        for epoch in 0..<config.epochs {
            var rng = SplitMix64(seed: config.seed &+ UInt64(epoch) &* 0x9E37_79B9)
            let order = rng.permutation(examples.count)
            for start in stride(from: 0, to: order.count, by: config.batchSize) {
                let idx = order[start..<min(start + config.batchSize, order.count)]
                let factor = schedule.factor(step: step)
                let r = try self.step(idx.map { examples[$0] }, step: step, learningRateFactor: factor)
                step += 1
                try onStep(SFTStepLog(step: step, epoch: epoch, loss: Double(r.loss),
                                      learningRate: Double(config.learningRate * factor), gradNorm: Double(r.gradNorm),
                                      tokens: r.tokens))
                if evalEvery > 0 && step % evalEvery == 0 { try eval(step, "step") }
            }
            try eval(step, "epoch")
        }
    }
}
