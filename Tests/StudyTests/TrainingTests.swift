import Foundation
import Models
import Numerics
import Pipeline
@testable import Study
import XCTest

/// Dissociation (Equation 1, monitor co-training) and SFT on a tiny random model.
final class TrainingTests: XCTestCase {
    // MARK: - Direct (independent) computation of the Equation 1 terms

    struct Direct { var nll: Double; var mon: Double; var kl: Double; var logits: [Double] }

    static func logSoftmax(_ row: ArraySlice<Float>) -> [Double] {
        let m = Double(row.max() ?? 0)
        let lse = m + Foundation.log(row.reduce(0.0) { $0 + Foundation.exp(Double($1) - m) })
        return row.map { Double($0) - lse }
    }

    /// NLL, gated monitor term and KL computed from plain inference forwards.
    func direct(_ trainer: DissociationTrainer, _ examples: [ChatExample], harmful: [Bool]) throws -> Direct {
        let batch = ChatBatch(examples, padId: trainer.encoder.padId)
        let c = trainer.model.config, v = c.vocabSize, d = c.hiddenSize, t = batch.tokens.length
        let out = try trainer.model.forward(batch.tokens, options: ForwardOptions(hidden: .all, logits: .all))
        let ref = try trainer.reference.forward(batch.tokens, options: ForwardOptions(logits: .all))
        let logits = try XCTUnwrap(out.logits).scalars, refLogits = try XCTUnwrap(ref.logits).scalars
        var nll = 0.0, kl = 0.0
        for (row, target) in zip(batch.lossRows, batch.lossTargets) {
            let lp = Self.logSoftmax(logits[(row * v)..<((row + 1) * v)])
            let lr = Self.logSoftmax(refLogits[(row * v)..<((row + 1) * v)])
            nll -= lp[target]
            for j in 0..<v { kl += Foundation.exp(lr[j]) * (lr[j] - lp[j]) }
        }
        nll /= Double(batch.lossRows.count)
        kl /= Double(batch.lossRows.count)
        let proj = trainer.monitor.projection.value.scalars, head = trainer.monitor.headWeight.value.scalars
        let bias = Double(trainer.monitor.headBias.value.scalars[0]), width = trainer.monitor.projection.shape[0]
        var gs: [Double] = [], mon = 0.0
        for b in 0..<batch.count {
            var feats: [Double] = []
            for l in 1...c.numLayers {
                let h = try XCTUnwrap(out.hidden[l]).scalars
                var pooled = [Double](repeating: 0, count: d)
                var n = 0.0
                for p in 0..<t where batch.tokens.mask[b * t + p] != 0 {
                    n += 1
                    for j in 0..<d { pooled[j] += Double(h[(b * t + p) * d + j]) }
                }
                feats += pooled.map { $0 / n }
            }
            var g = bias
            for k in 0..<width {
                var s = 0.0
                for f in 0..<feats.count { s += Double(proj[k * feats.count + f]) * feats[f] }
                g += Double(head[k]) * s
            }
            gs.append(g)
            if harmful[b] { mon += (g - Double(trainer.config.targetLogit)) * (g - Double(trainer.config.targetLogit)) }
        }
        return Direct(nll: nll, mon: mon / Double(batch.count), kl: kl, logits: gs)
    }

    func makeTrainer(_ cfg: DissociationConfig = DissociationConfig(), modelSeed: UInt64 = 1) throws -> DissociationTrainer {
        let model = try TinyTraining.model(seed: modelSeed)
        let c = model.config
        let monitor = LinearProbe(config: LinearProbeConfig(layers: c.numLayers, hidden: c.hiddenSize, projection: 8), seed: 5)
        let encoder = ChatExampleEncoder(tokenizer: try TinyTraining.tokenizer(), maxTokens: 64)
        return try DissociationTrainer(model: model, monitor: monitor, encoder: encoder, config: cfg)
    }

    func examples(_ trainer: DissociationTrainer, _ rows: [DissociationRow]) throws -> [ChatExample] {
        try rows.map { try trainer.encoder.encode(prompt: $0.prompt, response: $0.response) }
    }

    // MARK: - Tests

    func testChatExampleMasksPromptAndTruncates() throws {
        let enc = ChatExampleEncoder(tokenizer: try TinyTraining.tokenizer(), maxTokens: 512)
        let e = try enc.encode(prompt: "hi", response: "Yes.")
        let tok = enc.tokenizer
        XCTAssertEqual(tok.decode(Array(e.ids[..<e.responseStart])), "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
        XCTAssertEqual(tok.decode(Array(e.ids[e.responseStart...])), "Yes.<|im_end|>\n")
        let batch = ChatBatch([e], padId: enc.padId)
        // Loss rows predict exactly the response tokens.
        XCTAssertEqual(batch.lossTargets, Array(e.ids[e.responseStart...]))
        XCTAssertEqual(batch.lossRows.first, e.responseStart - 1)
        let short = ChatExampleEncoder(tokenizer: tok, maxTokens: e.responseStart + 2)
        let cut = try short.encode(prompt: "hi", response: "Yes.")
        XCTAssertTrue(cut.truncated)
        XCTAssertEqual(cut.ids.count, e.responseStart + 2)
        XCTAssertEqual(cut.responseTokens, 2)
    }

    func testEquationOneTermsMatchDirectComputation() throws {
        var cfg = DissociationConfig()
        cfg.lambdaSFT = 0.7; cfg.lambdaMon = 0.2; cfg.lambdaKL = 1.3
        let trainer = try makeTrainer(cfg)
        TinyTraining.perturb(trainer.model, std: 0.05, seed: 9)  // so that the KL term is not zero
        let rows = [TinyTraining.harmfulRows[0], TinyTraining.benignRows[1], TinyTraining.harmfulRows[2]]
        let ex = try examples(trainer, rows)
        let expected = try direct(trainer, ex, harmful: rows.map(\.harmful))
        let terms = try trainer.microStep(ex, harmful: rows.map(\.harmful))
        XCTAssertEqual(Double(terms.nll), expected.nll, accuracy: 1e-4 * max(1, expected.nll))
        XCTAssertEqual(Double(terms.monitor), expected.mon, accuracy: 1e-4 * max(1, expected.mon))
        XCTAssertEqual(Double(terms.kl), expected.kl, accuracy: 1e-5 + 1e-3 * expected.kl)
        XCTAssertGreaterThan(expected.kl, 1e-4)
        XCTAssertGreaterThan(expected.mon, 1e-4)
        for (a, b) in zip(terms.monitorLogits, expected.logits) { XCTAssertEqual(Double(a), b, accuracy: 1e-4) }
        let total = 0.7 * expected.nll + 0.2 * expected.mon + 1.3 * expected.kl
        XCTAssertEqual(Double(terms.total), total, accuracy: 1e-4 * max(1, total))
    }

    func testGatingBenignRowsGetNoMonitorGradient() throws {
        var with = DissociationConfig(), without = DissociationConfig()
        with.lambdaMon = 5
        without.lambdaMon = 0
        let rowsBenign = Array(TinyTraining.benignRows.prefix(2))
        let rowsHarmful = Array(TinyTraining.harmfulRows.prefix(2))
        func grads(_ cfg: DissociationConfig, _ rows: [DissociationRow]) throws -> [String: Tensor] {
            let t = try makeTrainer(cfg)
            TinyTraining.perturb(t.model, std: 0.05, seed: 9)
            _ = try t.microStep(try examples(t, rows), harmful: rows.map(\.harmful))
            return t.model.parameters.compactMapValues(\.grad)
        }
        func maxDiff(_ a: [String: Tensor], _ b: [String: Tensor]) -> Float {
            var worst: Float = 0
            for (k, x) in a {
                guard let y = b[k] else { return .infinity }
                worst = max(worst, zip(x.scalars, y.scalars).map { abs($0 - $1) }.max() ?? 0)
            }
            return worst
        }
        let gb1 = try grads(with, rowsBenign), gb0 = try grads(without, rowsBenign)
        XCTAssertFalse(gb1.isEmpty)
        XCTAssertEqual(maxDiff(gb1, gb0), 0, "benign rows must receive no monitor gradient")
        // The same comparison on harmful rows shows the monitor term does reach theta.
        XCTAssertGreaterThan(maxDiff(try grads(with, rowsHarmful), try grads(without, rowsHarmful)), 1e-6)
    }

    func testKLZeroAtStartAndGradientMatchesFiniteDifferences() throws {
        var cfg = DissociationConfig()
        cfg.lambdaSFT = 0; cfg.lambdaMon = 0; cfg.lambdaKL = 1
        let rows = [TinyTraining.harmfulRows[1], TinyTraining.benignRows[0]]
        // Step 0: the model is its reference.
        let fresh = try makeTrainer(cfg)
        let t0 = try fresh.microStep(try examples(fresh, rows), harmful: rows.map(\.harmful))
        XCTAssertEqual(t0.kl, 0, accuracy: 1e-6)
        // After a perturbation: analytic gradient vs central differences of the direct KL.
        let trainer = try makeTrainer(cfg)
        TinyTraining.perturb(trainer.model, std: 0.1, seed: 11)
        let ex = try examples(trainer, rows)
        _ = try trainer.microStep(ex, harmful: rows.map(\.harmful))
        for name in ["model.layers.0.mlp.down_proj.weight", "model.layers.1.self_attn.q_proj.weight", "model.norm.weight"] {
            let p = try XCTUnwrap(trainer.model.parameters[name])
            let grad = try XCTUnwrap(p.grad, name).scalars
            for i in [0, 3, 7] {
                let saved = p.value
                let eps: Float = 1e-2
                var plus = saved.copy(), minus = saved.copy()
                plus.withUnsafeMutableBufferPointer { $0[i] += eps }
                minus.withUnsafeMutableBufferPointer { $0[i] -= eps }
                p.value = plus
                let kp = try direct(trainer, ex, harmful: rows.map(\.harmful)).kl
                p.value = minus
                let km = try direct(trainer, ex, harmful: rows.map(\.harmful)).kl
                p.value = saved
                let fd = (kp - km) / (2 * Double(eps))
                XCTAssertEqual(Double(grad[i]), fd, accuracy: 2e-3 * max(abs(fd), 1e-2), "\(name)[\(i)]")
            }
        }
    }

    func testOptimisersOnlyTouchTheirOwnParameters() throws {
        let trainer = try makeTrainer()
        TinyTraining.perturb(trainer.model, std: 0.05, seed: 9)
        let rows = [TinyTraining.harmfulRows[0], TinyTraining.benignRows[0]]
        let ex = try examples(trainer, rows)
        // The monitor's gradient is exactly the BCE gradient on detached features.
        let monitorCopy = trainer.monitor.copy()
        let d = try direct(trainer, ex, harmful: rows.map(\.harmful))
        _ = try trainer.microStep(ex, harmful: rows.map(\.harmful))
        let batch = ChatBatch(ex, padId: trainer.encoder.padId)
        let L = trainer.model.config.numLayers
        let out = try trainer.model.forwardDifferentiable(batch.tokens, options: DifferentiableOptions(
            hidden: .indices(Set(1...L)), logits: .none))
        let feats = Autograd.withNoGrad { ProbeFeatures.pooled(hidden: out.hidden, batch: batch.tokens) }
        DissociationTrainer.setTrainable(monitorCopy, true)
        Ops.bceWithLogits(monitorCopy.logits(features: Variable(feats.value)), targets: Tensor(shape: [2], data: [1, 0])).backward()
        for (a, b) in zip(trainer.monitor.parameters, monitorCopy.parameters) {
            let ga = try XCTUnwrap(a.grad).scalars, gb = try XCTUnwrap(b.grad).scalars
            XCTAssertEqual(zip(ga, gb).map { abs($0 - $1) }.max() ?? 1, 0, accuracy: 1e-5)
        }
        XCTAssertGreaterThan(d.mon, 0)
        // Parameter snapshots: each optimiser moves only its own parameters.
        let modelBefore = trainer.modelParameters.map { $0.value.scalars }
        let monitorBefore = trainer.monitor.parameters.map { $0.value.scalars }
        try trainer.stepModel(learningRateFactor: 1)
        XCTAssertEqual(trainer.monitor.parameters.map { $0.value.scalars }, monitorBefore)
        XCTAssertNotEqual(trainer.modelParameters.map { $0.value.scalars }, modelBefore)
        let modelAfter = trainer.modelParameters.map { $0.value.scalars }
        trainer.stepMonitor()
        XCTAssertEqual(trainer.modelParameters.map { $0.value.scalars }, modelAfter)
        XCTAssertNotEqual(trainer.monitor.parameters.map { $0.value.scalars }, monitorBefore)
        XCTAssertTrue(Set(trainer.modelOptimizer.parameters.map(ObjectIdentifier.init))
            .isDisjoint(with: trainer.monitorOptimizer.parameters.map(ObjectIdentifier.init)))
    }

    func testTinyDissociationMovesHarmfulScoreTowardTargetWithBoundedKL() throws {
        var cfg = DissociationConfig()
        cfg.learningRate = 1e-2
        cfg.monitorLearningRate = 1e-2
        cfg.epochs = 8
        cfg.accumulation = 2
        cfg.seed = 3
        let trainer = try makeTrainer(cfg)
        // Start the monitor far below the target on every row.
        trainer.monitor.headBias.value = Tensor(shape: [1], data: [-2])
        let harmful = try examples(trainer, TinyTraining.harmfulRows)
        let before = try trainer.monitorScores(harmful)
        let meanBefore = Double(before.reduce(0, +)) / Double(before.count)
        let logs = try trainer.train(TinyTraining.harmfulRows + TinyTraining.benignRows)
        XCTAssertEqual(logs.count, trainer.totalSteps(rows: 8))
        let after = try trainer.monitorScores(harmful)
        let meanAfter = Double(after.reduce(0, +)) / Double(after.count)
        XCTAssertLessThan(abs(meanAfter - 0.75), abs(meanBefore - 0.75) - 0.1,
                          "harmful score \(meanBefore) -> \(meanAfter) should approach 0.75")
        XCTAssertTrue(logs.allSatisfy { $0.kl.isFinite && $0.kl < 1.0 }, "KL: \(logs.map(\.kl))")
        XCTAssertEqual(logs.first?.kl ?? 1, 0, accuracy: 1e-3)
        XCTAssertNotNil(logs.last?.harmfulScore)
        // Warmup then linear decay.
        XCTAssertLessThan(logs[0].learningRate, logs[1].learningRate + 1e-12)
        XCTAssertLessThan(logs.last!.learningRate, logs[1].learningRate)
        // Manual transformers check: AUDITGAP_EXPORT_DIR=/tmp/x swift test --filter TrainingTests, then
        // /work/venv/bin/python scripts/check_trained_model.py /tmp/x
        if let out = ProcessInfo.processInfo.environment["AUDITGAP_EXPORT_DIR"] {
            let dir = URL(fileURLWithPath: out).appendingPathComponent("dissociated")
            try trainer.model.saveHF(to: dir)
            let batch = ChatBatch(harmful, padId: trainer.encoder.padId).tokens
            let logits = try XCTUnwrap(try trainer.model.forward(batch).logits)
            let obj: [String: Any] = ["ids": batch.ids, "mask": batch.mask.map(Int.init), "batch": batch.batch,
                                      "length": batch.length, "logits": logits.scalars.map(Double.init)]
            try JSONSerialization.data(withJSONObject: obj).write(to: dir.appendingPathComponent("swift_logits.json"))
        }
    }

    func testNonFiniteLossNamesStepAndTerm() throws {
        let trainer = try makeTrainer()
        let w = try XCTUnwrap(trainer.model.parameters["model.norm.weight"])
        w.value = Tensor(shape: w.shape, repeating: .nan)
        XCTAssertThrowsError(try trainer.train(TinyTraining.harmfulRows)) { error in
            guard case let StudyError.trainingDiverged(step, _, term, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(step, 0)
            XCTAssertEqual(term, "nll")
        }
    }

    /// `replay_blocks` (recorded linear outputs instead of recomputed products) trains to the
    /// same parameters bit for bit, in SFT and in the dissociation (whose loss reads every
    /// layer's hidden states).
    func testReplayedBlocksTrainIdenticalParameters() throws {
        let tok = try TinyTraining.tokenizer()
        let encoder = ChatExampleEncoder(tokenizer: tok, maxTokens: 64)
        let ex = try (TinyTraining.harmfulRows + TinyTraining.benignRows).map {
            try encoder.encode(prompt: $0.prompt, response: $0.response)
        }
        var sft: [[[Float]]] = [], dissociated: [[[Float]]] = []
        for replayed in [0, 8] {
            let model = try TinyTraining.model(seed: 4)
            var cfg = SFTConfig()
            cfg.lora = nil  // full fine-tuning
            cfg.learningRate = 3e-3
            cfg.batchSize = 4
            cfg.microBatch = 2
            cfg.replayedBlocks = replayed
            try SFTTrainer(model: model, encoder: encoder, config: cfg).train(ex, evalEvery: 0, evaluate: { _ in })
            sft.append(model.parameters.sorted { $0.key < $1.key }.map { $0.value.value.scalars })
            var dcfg = DissociationConfig()
            dcfg.epochs = 1
            dcfg.accumulation = 2
            dcfg.replayedBlocks = replayed
            let trainer = try makeTrainer(dcfg)
            _ = try trainer.train(TinyTraining.harmfulRows + TinyTraining.benignRows)
            dissociated.append(trainer.modelParameters.map { $0.value.scalars })
        }
        XCTAssertTrue(sft[0] == sft[1], "SFT parameters differ between replayed and recomputed blocks")
        XCTAssertTrue(dissociated[0] == dissociated[1], "dissociation parameters differ between replayed and recomputed blocks")
        let untrained = try TinyTraining.model(seed: 4).parameters.sorted { $0.key < $1.key }.map { $0.value.value.scalars }
        XCTAssertTrue(sft[0] != untrained, "SFT did not change the parameters")
    }

    /// `keep_blocks` / `replay_blocks` of the training kinds: counts read, negatives named.
    func testCheckpointedBlockParamsAreChecked() throws {
        func params(_ kept: Int, _ replayed: Int) -> StageParams {
            StageParams(["keep_blocks": .int(kept), "replay_blocks": .int(replayed)], instance: "sft")
        }
        let counts = try StageSupport.checkpointedBlocks(params(2, 30))
        XCTAssertEqual(counts.kept, 2)
        XCTAssertEqual(counts.replayed, 30)
        // Negative counts are named by both training configs' checks.
        for (kept, replayed, key) in [(-1, 0, "keep_blocks"), (0, -3, "replay_blocks")] {
            var sft = SFTConfig(), dissociation = DissociationConfig()
            (sft.keptBlocks, sft.replayedBlocks) = try StageSupport.checkpointedBlocks(params(kept, replayed))
            (dissociation.keptBlocks, dissociation.replayedBlocks) = (sft.keptBlocks, sft.replayedBlocks)
            for check in [sft.validate, dissociation.validate] {
                XCTAssertThrowsError(try check()) { error in
                    XCTAssertTrue("\(error)".contains("params.\(key): must be 0 or more"), "\(error)")
                }
            }
        }
    }

    func testTinySFTLowersLossAndSavedModelsReload() throws {
        let tok = try TinyTraining.tokenizer()
        let encoder = ChatExampleEncoder(tokenizer: tok, maxTokens: 64)
        let ex = try (TinyTraining.harmfulRows + TinyTraining.benignRows).map {
            try encoder.encode(prompt: $0.prompt, response: $0.response)
        }
        for useLoRA in [true, false] {
            let model = try TinyTraining.model(seed: 4)
            var cfg = SFTConfig()
            cfg.lora = useLoRA ? LoRAConfig(rank: 4, alpha: 8, dropout: 0.05, seed: 1) : nil
            cfg.learningRate = useLoRA ? 2e-2 : 3e-3
            cfg.batchSize = 4
            cfg.microBatch = 2
            cfg.epochs = 4
            let trainer = try SFTTrainer(model: model, encoder: encoder, config: cfg)
            let before = try trainer.loss(ex)
            var evals: [SFTEvalPoint] = []
            try trainer.train(ex, evalEvery: 3, evaluate: { evals.append($0) })
            let after = try trainer.loss(ex)
            XCTAssertLessThan(after, before * 0.9, "SFT (LoRA \(useLoRA)) loss \(before) -> \(after)")
            XCTAssertEqual(evals.map(\.step), [0, 2, 3, 4, 6, 8], "evaluation points")
            // Saved model / adapter reload to identical logits.
            let dir = try Fixture.tempDir()
            defer { try? FileManager.default.removeItem(at: dir) }
            let batch = ChatBatch(Array(ex.prefix(3)), padId: encoder.padId).tokens
            let logits = try XCTUnwrap(try model.forward(batch).logits).scalars
            try model.saveHF(to: dir.appendingPathComponent("model"))
            let reloaded = try TransformerModel.load(path: dir.appendingPathComponent("model").path)
            let r1 = try XCTUnwrap(try reloaded.forward(batch).logits).scalars
            XCTAssertEqual(zip(logits, r1).map { abs($0 - $1) }.max() ?? 1, 0, accuracy: 1e-4)
            if useLoRA {
                try model.saveLoRA(to: dir.appendingPathComponent("adapter"))
                let base = try TinyTraining.model(seed: 4)
                try base.loadLoRA(directory: dir.appendingPathComponent("adapter"))
                let r2 = try XCTUnwrap(try base.forward(batch).logits).scalars
                XCTAssertEqual(zip(logits, r2).map { abs($0 - $1) }.max() ?? 1, 0, accuracy: 1e-5)
            }
        }
    }
}
