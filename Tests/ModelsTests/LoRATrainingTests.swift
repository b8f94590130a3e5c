import XCTest
@testable import Models
import Numerics
import Synchronization

/// LoRA and full fine-tuning gradients against PEFT, checkpointing equivalence, merge, saving.
final class LoRATrainingTests: XCTestCase {
    func loraModel() throws -> (TransformerModel, ArchFixture, ArchFixture) {
        let base = try ArchFixture("llama")
        let lora = try ArchFixture("llama_lora")
        let model = try base.model()
        try model.loadLoRA(directory: lora.dir)
        return (model, base, lora)
    }

    func lmLoss(_ batch: TokenBatch) -> (DifferentiableOutput) -> Variable {
        let targets = TransformerModel.nextTokenTargets(batch)
        return { out in Ops.crossEntropy(logits: out.logits!, targets: targets) }
    }

    func testLoRAStepMatchesPEFT() throws {
        try loraStepMatchesPEFT()
        try withQueryBlocksOfTwo { try loraStepMatchesPEFT() }
    }

    func loraStepMatchesPEFT() throws {
        for checkpointing in [false, true] {
            let (model, _, lora) = try loraModel()
            XCTAssertEqual(model.adapters.count, 21)
            XCTAssertEqual(model.adapters.values.first?.scale, 2)
            let batch = lora.batch
            let loss = try model.trainingBackward(batch, checkpointing: CheckpointPolicy(enabled: checkpointing),
                                                  loss: lmLoss(batch))
            let expectedLoss = Float((lora.cases["loss"] as? NSNumber)?.doubleValue ?? 0)
            XCTAssertEqual(loss, expectedLoss, accuracy: 1e-4, "LoRA loss (checkpointing \(checkpointing))")
            var worst: Float = 0, worstName = ""
            for (name, v) in model.loraParameters {
                let key = "grad.base_model.model." + name
                let expected = try lora.expect(key)
                let d = maxAbsDiff(try XCTUnwrap(v.grad, "no grad for \(name)"), expected)
                if d > worst { worst = d; worstName = name }
            }
            XCTAssertLessThanOrEqual(worst, 1e-5, "LoRA grads max abs diff \(worst) at \(worstName) (checkpointing \(checkpointing))")
            // No base parameter collects a gradient.
            XCTAssertTrue(model.parameters.values.allSatisfy { $0.grad == nil })
        }
    }

    func testCheckpointedFullFineTuneGradsMatchFullGraph() throws {
        let fx = try ArchFixture("gemma2")
        var grads: [[String: Tensor]] = []
        var losses: [Float] = []
        // Full graph; every block recomputed; the last block kept; every block kept; every
        // block replayed from its recorded linear outputs; the last kept and the one before it
        // replayed.
        let layers = try fx.model().config.numLayers
        for (checkpointing, kept, replayed) in [(false, 0, 0), (true, 0, 0), (true, 1, 0), (true, layers, 0),
                                                (true, 0, layers), (true, 1, 1)] {
            let model = try fx.model()
            model.setTrainable()
            let batch = fx.batch
            let targets = TransformerModel.nextTokenTargets(batch)
            let opts = DifferentiableOptions(hidden: .indices([1, 2]))
            let policy = CheckpointPolicy(enabled: checkpointing, kept: kept, replayed: replayed)
            let replays = ProductTape.replayedCount.load(ordering: .relaxed)
            defer {  // q, k, v, o, gate, up, down of each replayed block (trainable weights run one by one)
                XCTAssertEqual(ProductTape.replayedCount.load(ordering: .relaxed) - replays, 7 * replayed, "replayed outputs")
            }
            losses.append(try model.trainingBackward(batch, options: opts, checkpointing: policy) { out in
                // LM loss plus a term on intermediate hidden states (as the dissociation loss has).
                Ops.add(Ops.crossEntropy(logits: out.logits!, targets: targets),
                        Ops.scale(Ops.mean(Ops.square(Ops.add(out.hidden[1]!, out.hidden[2]!))), by: 0.01))
            })
            grads.append(model.parameters.compactMapValues { $0.grad })
        }
        XCTAssertEqual(grads[0].count, try fx.model().parameters.count)
        for variant in 1..<grads.count {
            XCTAssertEqual(losses[0], losses[variant], accuracy: 1e-5, "variant \(variant)")
            XCTAssertEqual(Set(grads[0].keys), Set(grads[variant].keys))
            for (name, g) in grads[0] {
                let d = maxAbsDiff(g, try XCTUnwrap(grads[variant][name]))
                XCTAssertLessThanOrEqual(d, 1e-5, "\(name): checkpointed (variant \(variant)) grad max abs diff \(d)")
            }
        }
        // Replaying recorded outputs is the recomputation without its products: bit for bit.
        XCTAssertEqual(losses[1], losses[4])
        for (name, g) in grads[1] {
            XCTAssertEqual(g.scalars, try XCTUnwrap(grads[4][name]).scalars, "\(name): replayed vs recomputed")
        }
    }

    /// With LoRA on some modules (dropout on), replayed blocks record only the linears without
    /// adapters and redraw the same masks: gradients equal recomputation's bit for bit.
    func testReplayedBlocksWithPartialLoRAMatchRecomputation() throws {
        let fx = try ArchFixture("qwen2")
        var grads: [[String: [Float]]] = []
        let layers = try fx.model().config.numLayers
        for replayed in [0, layers] {
            let model = try fx.model()
            try model.addLoRA(LoRAConfig(rank: 4, alpha: 8, dropout: 0.1, targetModules: ["q_proj", "v_proj", "up_proj"], seed: 5))
            var rng = SplitMix64(seed: 9)
            for name in model.adapters.keys.sorted() {
                let b = model.adapters[name]!.b
                b.value = Tensor.randomNormal(shape: b.shape, std: 0.05, rng: &rng)
            }
            let opts = DifferentiableOptions(training: true, seed: 3)
            let replays = ProductTape.replayedCount.load(ordering: .relaxed)
            _ = try model.trainingBackward(fx.batch, options: opts, checkpointing: .blocks(kept: 0, replayed: replayed),
                                           loss: lmLoss(fx.batch))
            // Frozen q/k/v and gate/up run fused and carry adapters; o and down are replayed.
            XCTAssertEqual(ProductTape.replayedCount.load(ordering: .relaxed) - replays, 2 * replayed)
            grads.append(model.loraParameters.mapValues { $0.grad?.scalars ?? [] })
        }
        XCTAssertEqual(grads[0].count, 3 * 2 * layers)
        XCTAssertTrue(grads[0].values.contains { $0.contains { $0 != 0 } })
        for (name, g) in grads[0] { XCTAssertEqual(g, grads[1][name], "\(name): replayed vs recomputed") }
    }

    func testMergeKeepsLogitsAndSaveRoundTrips() throws {
        let (model, base, lora) = try loraModel()
        let batch = base.batch
        let before = try XCTUnwrap(try model.forward(batch).logits)
        // PEFT save round trip: same key names as PEFT wrote, same tensors.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lora-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try model.saveLoRA(to: dir)
        let saved = try SafeTensors.read(dir.appendingPathComponent("adapter_model.safetensors"))
        let original = try readSafeTensors(lora.dir.appendingPathComponent("adapter_model.safetensors"))
        XCTAssertEqual(Set(saved.keys), Set(original.keys))
        for (k, t) in original { XCTAssertEqual(maxAbsDiff(t, try XCTUnwrap(saved[k])), 0, k) }
        // Full HF save with the adapters merged, reloaded through Checkpoint.
        let full = dir.appendingPathComponent("merged")
        try model.saveHF(to: full, sourceDirectory: base.dir)
        let reloaded = try TransformerModel.load(path: full.path)
        let d1 = maxAbsDiff(try XCTUnwrap(try reloaded.forward(batch).logits), before, mask: batch.mask)
        XCTAssertLessThanOrEqual(d1, 1e-4, "saved+reloaded merged model logits max abs diff \(d1)")
        model.mergeLoRA()
        XCTAssertTrue(model.adapters.isEmpty)
        let d2 = maxAbsDiff(try XCTUnwrap(try model.forward(batch).logits), before, mask: batch.mask)
        XCTAssertLessThanOrEqual(d2, 1e-4, "merged logits max abs diff \(d2)")
    }

    func testFreshLoRAIsIdentityAndRSLoRAScale() throws {
        let fx = try ArchFixture("qwen2")
        let model = try fx.model()
        let plain = try XCTUnwrap(try model.forward(fx.batch).logits)
        let adapters = try model.addLoRA(LoRAConfig(rank: 4, alpha: 8, dropout: 0.1, targetModules: ["q_proj", "v_proj"], useRSLoRA: true))
        XCTAssertEqual(adapters.count, 4)
        XCTAssertEqual(adapters[0].scale, 4, accuracy: 1e-6)
        let a = adapters[0].a.value.scalars, bound = 1 / Float(model.config.hiddenSize).squareRoot()
        XCTAssertTrue(a.allSatisfy { abs($0) <= bound } && a.contains { abs($0) > bound / 2 })
        let withLoRA = try XCTUnwrap(try model.forward(fx.batch).logits)
        XCTAssertLessThanOrEqual(maxAbsDiff(plain, withLoRA), 1e-5, "zero-B LoRA changes logits")
        XCTAssertEqual(model.trainableParameters.count, 8)
    }

    func testGPT2SaveRoundTrip() throws {
        let fx = try ArchFixture("gpt2")
        let model = try fx.model()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gpt2-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try model.saveHF(to: dir)
        let saved = try SafeTensors.read(dir.appendingPathComponent("model.safetensors"))
        let original = try readSafeTensors(fx.dir.appendingPathComponent("model.safetensors"))
        XCTAssertEqual(Set(saved.keys), Set(original.keys))
        for (k, t) in original { XCTAssertEqual(maxAbsDiff(t, try XCTUnwrap(saved[k])), 0, k) }
        let reloaded = try TransformerModel.load(path: dir.path)
        let d = maxAbsDiff(try XCTUnwrap(try reloaded.forward(fx.batch).logits), try fx.expect("logits"), mask: fx.batch.mask)
        XCTAssertLessThanOrEqual(d, 1e-4, "gpt2 generated-config reload logits max abs diff \(d)")
    }
}
