// DissociationTrainer: the paper's dissociated-model construction (Section 3, Equation 1,
// Appendix B) with the co-trained latent monitor.
//
//   L(theta) = l_SFT * NLL + l_mon * mean_batch[ b * (g_phi(h_theta) - l*)^2 ] + l_KL * KL(p_ref || p_theta)
//
// Per micro-batch, four phases: (1) forward; (2) backward of Equation 1 into theta only (phi
// frozen); (3) BCE(g_phi(sg[h_theta]), b) backward into phi only; (4) on the accumulation
// cadence both AdamW optimisers step. NLL and KL are averaged over response positions (the
// KL over response positions and examples, reference detached); b = 1 marks harmful prompts.
//
// Dimension legend: B micro-batch rows, T padded length, N = B*T, R loss rows (positions that
// predict a response token), V vocabulary, D hidden, L blocks, F = L*D probe features.
import Foundation
import Models
import Numerics

/// One construction example (prompt, supervised response, harmful-prompt gate b).
public struct DissociationRow: Sendable, Equatable {
    public var prompt: String
    public var response: String
    /// b: true on harmful-prompt rows (safe responses from contrast triples), false on benign anchors.
    public var harmful: Bool

    public init(prompt: String, response: String, harmful: Bool) {
        self.prompt = prompt
        self.response = response
        self.harmful = harmful
    }
}

/// Hyper-parameters (paper Appendix B defaults).
public struct DissociationConfig: Sendable, Equatable, TrainingSettings {
    public var lambdaSFT: Float = 0.05
    public var lambdaMon: Float = 0.1
    public var lambdaKL: Float = 0.3
    /// Monitor target as a sigmoid score; l* = logit(tau).
    public var tau: Double = 0.75
    public var learningRate: Float = 2e-5
    public var weightDecay: Float = 0
    public var warmupRatio: Double = 0.1
    public var microBatch = 2
    public var accumulation = 8
    public var epochs = 3
    public var maxTokens = 512
    /// Global gradient-norm clip of the model's update (0 = off; transformers' Trainer default 1).
    public var maxGradNorm: Float = 1
    public var monitorLearningRate: Float = 1e-4
    public var monitorWeightDecay: Float = 1e-4
    /// LoRA instead of full fine-tuning (nil = full).
    public var lora: LoRAConfig?
    public var seed: UInt64 = 0
    /// Block-wise recomputation in the backward pass (less memory).
    public var checkpointing = true
    /// With checkpointing, the last `keptBlocks` blocks are not recomputed.
    public var keptBlocks = 0
    /// With checkpointing, the last `replayedBlocks` recomputed blocks reuse their recorded
    /// linear outputs (`CheckpointPolicy.blocks`).
    public var replayedBlocks = 0

    public init() {}

    /// l* = logit(tau).
    public var targetLogit: Float { Float(Foundation.log(tau / (1 - tau))) }

    /// Checks what the trainer needs, naming the `dissociate` kind's params.
    public func validate() throws {
        guard tau > 0 && tau < 1 else { throw StudyError.invalidConfiguration("params.tau: must be in (0, 1), got \(tau)") }
        try TrainingChecks.positive(["micro_batch": microBatch, "accumulation": accumulation, "epochs": epochs, "max_tokens": maxTokens])
        try TrainingChecks.common(lora: lora, learningRate: learningRate, kept: keptBlocks, replayed: replayedBlocks)
    }
}

/// Loss terms of one micro-batch (unweighted) and the monitor's view of it.
public struct DissociationTerms: Sendable {
    public var nll: Float
    /// mean over the micro-batch of b * (g - l*)^2.
    public var monitor: Float
    public var kl: Float
    /// lambda-weighted sum (Equation 1).
    public var total: Float
    /// BCE(g_phi(sg[h]), b) before the monitor step.
    public var monitorBCE: Float
    /// Monitor logits g_phi(h_theta) per row [B] (phase 1, before any update).
    public var monitorLogits: [Float]
}

/// One optimiser step of the log.
public struct DissociationStepLog: Sendable {
    public var step: Int
    public var epoch: Int
    public var nll: Double
    public var monitor: Double
    public var kl: Double
    public var total: Double
    public var monitorBCE: Double
    /// Mean sigmoid(g) over harmful / benign rows of the step's micro-batches (nil when none).
    public var harmfulScore: Double?
    public var benignScore: Double?
    public var learningRate: Double
    public var monitorLearningRate: Double
    /// Global gradient norm of the model update before clipping.
    public var gradNorm: Double
    public var monitorGradNorm: Double

    /// The JSONL object.
    public var json: [String: Any] {
        ["step": step, "epoch": epoch, "loss": total, "nll": nll, "monitor_term": monitor, "kl": kl,
         "monitor_bce": monitorBCE, "harmful_score": harmfulScore ?? NSNull(), "benign_score": benignScore ?? NSNull(),
         "lr": learningRate, "monitor_lr": monitorLearningRate, "grad_norm": gradNorm, "monitor_grad_norm": monitorGradNorm]
    }
}

/// Runs the co-trained dissociation on a model (modified in place) and a monitor.
public final class DissociationTrainer {
    public let model: TransformerModel
    /// Frozen copy of the initial model (shares storage until the model's first update).
    public let reference: TransformerModel
    public let monitor: LinearProbe
    public let config: DissociationConfig
    public let encoder: ChatExampleEncoder
    /// Optimiser of theta (model or LoRA parameters).
    public let modelOptimizer: AdamW
    /// Optimiser of phi (monitor parameters).
    public let monitorOptimizer: AdamW
    public let modelParameters: [Variable]

    /// Prepares training: a reference copy, LoRA adapters if configured, trainable flags, optimisers.
    public init(model: TransformerModel, monitor: LinearProbe, encoder: ChatExampleEncoder,
                config: DissociationConfig) throws {
        let features = model.config.numLayers * model.config.hiddenSize
        guard monitor.config.featureDim == features else {
            throw StudyError.invalidConfiguration("the monitor expects \(monitor.config.featureDim) features but the model "
                + "gives L x D = \(model.config.numLayers) x \(model.config.hiddenSize) = \(features); "
                + "was the probe trained on this model's features?")
        }
        try config.validate()
        self.model = model
        self.monitor = monitor
        self.config = config
        self.encoder = encoder
        reference = try TransformerModel(config: model.config, weights: model.hfWeights())
        if let lora = config.lora {
            try model.addLoRA(lora)
        } else {
            model.setTrainable()
        }
        modelParameters = model.trainableParameters.map(\.variable)
        Self.setTrainable(monitor, false)
        modelOptimizer = AdamW(parameters: modelParameters, learningRate: config.learningRate,
                               weightDecay: config.weightDecay)
        monitorOptimizer = AdamW(parameters: monitor.parameters, learningRate: config.monitorLearningRate,
                                 weightDecay: config.monitorWeightDecay)
    }

    /// Phases 1-3 on one micro-batch: Equation 1 backward into theta, monitor BCE backward into
    /// phi. Gradients are scaled by `scale` (1 / accumulation) and accumulate.
    /// Throws `StudyError.trainingDiverged` when a term is not finite (before any backward).
    public func microStep(_ examples: [ChatExample], harmful: [Bool], scale: Float = 1, step: Int = 0,
                          microBatch: Int = 0) throws -> DissociationTerms {
        let batch = ChatBatch(examples, padId: encoder.padId)
        let tokens = batch.tokens
        let layers = model.config.numLayers
        // Reference logits at the loss rows (detached).
        let refLogits: Tensor = try Autograd.withNoGrad {
            guard !batch.lossRows.isEmpty else { return Tensor(zeros: [0, model.config.vocabSize]) }
            guard let l = try reference.forward(tokens, options: ForwardOptions(logits: .rows(batch.lossRows))).logits else {
                preconditionFailure("reference forward produced no logits")
            }
            return l
        }
        let gate = Tensor(shape: [tokens.batch], data: harmful.map { $0 ? 1 : 0 })
        let lStar = config.targetLogit, cfg = config
        var terms = DissociationTerms(nll: 0, monitor: 0, kl: 0, total: 0, monitorBCE: 0, monitorLogits: [])
        var featureValue = Tensor(zeros: [0])
        let options = DifferentiableOptions(hidden: .indices(Set(1...layers)),
                                            logits: batch.lossRows.isEmpty ? .none : .rows(batch.lossRows),
                                            training: true, seed: config.seed &+ UInt64(step &* 1000 &+ microBatch))
        let checkpointing = CheckpointPolicy(enabled: config.checkpointing, kept: config.keptBlocks,
                                             replayed: config.replayedBlocks)
        // Phases 1 and 2: phi frozen, gradients reach theta only.
        Self.setTrainable(monitor, false)
        _ = try model.trainingBackward(tokens, options: options, checkpointing: checkpointing) { out in
            let feats = ProbeFeatures.pooled(hidden: out.hidden, batch: tokens)
            featureValue = feats.value
            let g = monitor.logits(features: feats)
            let mon = Ops.mean(Ops.mul(Variable(gate), Ops.square(Ops.addScalar(g, -lStar))))
            let nll: Variable, kl: Variable
            if let logits = out.logits {
                nll = Ops.crossEntropy(logits: logits, targets: batch.lossTargets)
                kl = Ops.klDivergence(referenceLogits: refLogits, logits: logits)
            } else {
                nll = Variable(Tensor(scalar: 0))
                kl = Variable(Tensor(scalar: 0))
            }
            terms.nll = nll.item
            terms.monitor = mon.item
            terms.kl = kl.item
            terms.monitorLogits = g.value.scalars
            for (name, v) in [("nll", terms.nll), ("monitor", terms.monitor), ("kl", terms.kl)] where !v.isFinite {
                throw StudyError.trainingDiverged(step: step, microBatch: microBatch, term: name, value: v)
            }
            let total = Ops.add(Ops.add(Ops.scale(nll, by: cfg.lambdaSFT), Ops.scale(mon, by: cfg.lambdaMon)),
                                Ops.scale(kl, by: cfg.lambdaKL))
            terms.total = total.item
            return Ops.scale(total, by: scale)
        }
        // Phase 3: BCE of the monitor on detached same-batch features, gradients reach phi only.
        Self.setTrainable(monitor, true)
        defer { Self.setTrainable(monitor, false) }
        let bce = Ops.bceWithLogits(monitor.logits(features: Variable(featureValue)), targets: gate)
        terms.monitorBCE = bce.item
        guard terms.monitorBCE.isFinite else {
            throw StudyError.trainingDiverged(step: step, microBatch: microBatch, term: "monitor_bce", value: terms.monitorBCE)
        }
        Ops.scale(bce, by: scale).backward()
        return terms
    }

    /// Phase 4, model side: clips theta's accumulated gradients, applies AdamW at
    /// `learningRateFactor` of the base rate, clears them. Returns the norm before clipping.
    @discardableResult
    public func stepModel(learningRateFactor: Float, step: Int = 0) throws -> Float {
        modelOptimizer.learningRateFactor = learningRateFactor
        let norm = config.maxGradNorm > 0 ? Gradients.clipGlobalNorm(modelParameters, maxNorm: config.maxGradNorm)
                                          : Gradients.globalNorm(modelParameters)
        guard norm.isFinite else { throw StudyError.trainingDiverged(step: step, microBatch: 0, term: "grad_norm", value: norm) }
        modelOptimizer.step()
        modelOptimizer.zeroGrad()
        return norm
    }

    /// Phase 4, monitor side: applies phi's AdamW step (phi is trainable only inside this call
    /// and the BCE backward) and clears its gradients. Returns phi's gradient norm.
    @discardableResult
    public func stepMonitor() -> Float {
        let norm = Gradients.globalNorm(monitor.parameters)
        Self.setTrainable(monitor, true)
        monitorOptimizer.step()
        monitorOptimizer.zeroGrad()
        Self.setTrainable(monitor, false)
        return norm
    }

    /// Total optimiser steps for `rows` examples.
    public func totalSteps(rows: Int) -> Int {
        let micro = (rows + config.microBatch - 1) / config.microBatch
        return config.epochs * ((micro + config.accumulation - 1) / config.accumulation)
    }

    /// Trains for the configured epochs on `rows`; calls `onStep` after every optimiser step.
    /// Returns the step logs.
    @discardableResult
    public func train(_ rows: [DissociationRow], onStep: (DissociationStepLog) throws -> Void = { _ in }) throws
        -> [DissociationStepLog] {
        let examples = try rows.map { try encoder.encode(prompt: $0.prompt, response: $0.response) }
        let total = totalSteps(rows: rows.count)
        let warmup = Int((Double(total) * config.warmupRatio).rounded(.up))
        let schedule = LRSchedule.linearWarmupDecay(warmupSteps: warmup, totalSteps: total)
        var logs: [DissociationStepLog] = []
        var step = 0
        for epoch in 0..<config.epochs {
            var rng = SplitMix64(seed: config.seed &+ UInt64(epoch) &* 0x9E37_79B9)
            let order = rng.permutation(rows.count)
            let micro = stride(from: 0, to: order.count, by: config.microBatch).map {
                Array(order[$0..<min($0 + config.microBatch, order.count)])
            }
            for windowStart in stride(from: 0, to: micro.count, by: config.accumulation) {
                let window = micro[windowStart..<min(windowStart + config.accumulation, micro.count)]
                let scale = 1 / Float(window.count)
                var acc = (nll: 0.0, mon: 0.0, kl: 0.0, total: 0.0, bce: 0.0)
                var harmfulScores: [Double] = [], benignScores: [Double] = []
                for (k, idx) in window.enumerated() {
                    let t = try microStep(idx.map { examples[$0] }, harmful: idx.map { rows[$0].harmful }, scale: scale,
                                          step: step, microBatch: k)
                    acc.nll += Double(t.nll); acc.mon += Double(t.monitor); acc.kl += Double(t.kl)
                    acc.total += Double(t.total); acc.bce += Double(t.monitorBCE)
                    for (i, g) in zip(idx, t.monitorLogits) {
                        let s = 1 / (1 + Foundation.exp(-Double(g)))
                        if rows[i].harmful { harmfulScores.append(s) } else { benignScores.append(s) }
                    }
                }
                let factor = schedule.factor(step: step)
                let gradNorm = try stepModel(learningRateFactor: factor, step: step)
                let monitorNorm = stepMonitor()
                let n = Double(window.count)
                func mean(_ xs: [Double]) -> Double? { xs.isEmpty ? nil : xs.reduce(0, +) / Double(xs.count) }
                let log = DissociationStepLog(step: step, epoch: epoch, nll: acc.nll / n, monitor: acc.mon / n, kl: acc.kl / n,
                                              total: acc.total / n, monitorBCE: acc.bce / n,
                                              harmfulScore: mean(harmfulScores), benignScore: mean(benignScores),
                                              learningRate: Double(config.learningRate * factor),
                                              monitorLearningRate: Double(config.monitorLearningRate),
                                              gradNorm: Double(gradNorm), monitorGradNorm: Double(monitorNorm))
                logs.append(log)
                try onStep(log)
                step += 1
            }
        }
        return logs
    }

    /// Mean monitor score sigmoid(g_phi(h_theta)) per row of `examples` (no gradients).
    public func monitorScores(_ examples: [ChatExample]) throws -> [Float] {
        var out: [Float] = []
        for start in stride(from: 0, to: examples.count, by: max(1, config.microBatch)) {
            let chunk = Array(examples[start..<min(start + config.microBatch, examples.count)])
            let batch = ChatBatch(chunk, padId: encoder.padId).tokens
            let layers = model.config.numLayers
            let logits: Variable = try Autograd.withNoGrad {
                let out = try model.forwardDifferentiable(batch, options: DifferentiableOptions(
                    hidden: .indices(Set(1...layers)), logits: .none))
                return monitor.logits(features: ProbeFeatures.pooled(hidden: out.hidden, batch: batch))
            }
            out += logits.value.scalars.map { 1 / (1 + Foundation.exp(-$0)) }
        }
        return out
    }

    /// Whether phi collects gradients (and is stepped by AdamW, which skips frozen parameters).
    public static func setTrainable(_ probe: LinearProbe, _ on: Bool) {
        for p in probe.parameters { p.requiresGrad = on }
    }
}
