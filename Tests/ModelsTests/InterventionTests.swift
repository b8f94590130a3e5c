import XCTest
@testable import Models
import Numerics

/// Residual-stream interventions (inference and autodiff) against transformers hooks, and
/// gradients to the perturbation checked against torch and by finite differences.
final class InterventionTests: XCTestCase {
    func testSharedDeltaForwardAndGenerationMatchHooks() throws {
        let fx = try ArchFixture("llama")
        let model = try fx.model()
        let iv = try XCTUnwrap(fx.cases["intervention"] as? [String: Any])
        let layer = (iv["layer"] as? NSNumber)?.intValue ?? 1
        let delta = try fx.expect("intervention.delta")
        let intervention = Intervention(layer: .block(layer), delta: delta, scope: .all)
        let out = try model.forward(fx.batch, options: ForwardOptions(hidden: .all, interventions: [intervention]))
        let dl = maxAbsDiff(try XCTUnwrap(out.logits), try fx.expect("intervention.logits"), mask: fx.batch.mask)
        XCTAssertLessThanOrEqual(dl, 1e-4, "intervened logits max abs diff \(dl)")
        let dh = maxAbsDiff(try XCTUnwrap(out.hidden[3]), try fx.expect("intervention.hidden.3"), mask: fx.batch.mask)
        XCTAssertLessThanOrEqual(dh, 1e-4, "intervened hidden.3 max abs diff \(dh)")
        let maxNew = (iv["max_new_tokens"] as? NSNumber)?.intValue ?? 6
        let gen = try model.generate(fx.batch, options: GenerationOptions(maxNewTokens: maxNew, eosTokenIds: [],
                                                                         interventions: [intervention], padTokenId: 0))
        XCTAssertEqual(gen.tokens, fx.intRows("generate_ids", in: iv))
    }

    func testDifferentiableForwardMatchesInference() throws {
        for name in ["llama", "qwen2", "gemma2", "gpt2"] {
            let fx = try ArchFixture(name)
            let model = try fx.model()
            let out = try model.forwardDifferentiable(fx.batch, options: DifferentiableOptions(hidden: .all))
            let logits = try XCTUnwrap(out.logits).value.reshaped([fx.batch.batch, fx.batch.length, -1])
            let d = maxAbsDiff(logits, try fx.expect("logits"), mask: fx.batch.mask)
            XCTAssertLessThanOrEqual(d, 1e-4, "\(name) autodiff-path logits max abs diff \(d)")
            let dh = maxAbsDiff(try XCTUnwrap(out.hidden[1]).value, try fx.expect("hidden.1"), mask: fx.batch.mask)
            XCTAssertLessThanOrEqual(dh, 1e-4, "\(name) autodiff-path hidden.1 max abs diff \(dh)")
        }
    }

    func testGradientToDeltaMatchesTorch() throws {
        try gradientToDeltaMatchesTorch()
        try withQueryBlocksOfTwo { try gradientToDeltaMatchesTorch() }
    }

    func gradientToDeltaMatchesTorch() throws {
        let fx = try ArchFixture("llama")
        let model = try fx.model()
        let g = try XCTUnwrap(fx.cases["grad"] as? [String: Any])
        let tpos = (g["positions"] as? [NSNumber] ?? []).map(\.intValue)
        let targets = fx.intRows("targets", in: g)
        let t = fx.batch.length
        var rows: [Int] = [], flatTargets: [Int] = []
        for b in 0..<2 { for (i, p) in tpos.enumerated() { rows.append(b * t + p); flatTargets.append(targets[b][i]) } }
        let state = try model.prefix(fx.batch, upTo: .embedding)
        let delta = Variable(try fx.expect("grad.delta"), requiresGrad: true)
        let logits = model.forwardFrom(state, delta: delta, logitRows: rows)
        let loss = Ops.crossEntropy(logits: logits, targets: flatTargets)
        loss.backward()
        let nll = Float((g["nll"] as? NSNumber)?.doubleValue ?? 0)
        XCTAssertEqual(loss.item, nll, accuracy: 1e-4)
        let grad = try XCTUnwrap(delta.grad)
        let d = maxAbsDiff(grad, try fx.expect("grad.delta_grad"))
        XCTAssertLessThanOrEqual(d, 1e-5, "delta grad max abs diff \(d)")

        // The fused head + NLL (PGD's loss) against the same torch values. delta [T, D] is
        // shared by both sequences: the addend repeats it, and delta's gradient is the sum
        // of the two sequences' addend gradients.
        let deltaT = try fx.expect("grad.delta"), width = model.config.hiddenSize, rowsPerSeq = deltaT.count / width
        let addend = Variable(Tensor(shape: [2 * rowsPerSeq, width]) { p in deltaT.withUnsafeBufferPointer { src in
            for b in 0..<2 { (p.baseAddress! + b * deltaT.count).update(from: src.baseAddress!, count: deltaT.count) }
        } }, requiresGrad: true)
        let fused = model.forwardFromNLL(state, addend: addend, logitRows: rows, targets: flatTargets)
        fused.loss.backward()
        XCTAssertEqual(fused.loss.item, nll, accuracy: 1e-4)
        let perRow = try XCTUnwrap(addend.grad)
        let summed = Tensor(shape: deltaT.shape) { q in perRow.withUnsafeBufferPointer { g in
            for b in 0..<2 { for i in 0..<q.count { q[i] += g[b * q.count + i] } }
        } }
        let df = maxAbsDiff(summed, try fx.expect("grad.delta_grad"))
        XCTAssertLessThanOrEqual(df, 1e-5, "fused head: delta grad max abs diff \(df)")
    }

    /// `forwardFromNLL` (LM head and NLL in one pass over the frozen head weight) against
    /// `forwardFrom` + cross-entropy on every family, Gemma-2's final soft-cap included:
    /// the loss, each row's NLL and the gradient to the perturbation.
    func testFusedHeadLossMatchesLogitsPath() throws {
        for name in ["llama", "qwen2", "gemma2", "gpt2"] {
            let fx = try ArchFixture(name)
            let model = try fx.model()
            guard model.config.head == .causalLM else { continue }
            let batch = fx.batch, t = batch.length, width = model.config.hiddenSize, n = batch.batch * t
            var rng = SplitMix64(seed: 11)
            let addendT = Tensor(shape: [n, width]) { p in for i in 0..<p.count { p[i] = 0.2 * rng.nextGaussian() } }
            let rows = [t - 1, 2 * t - 1, t - 2, 2 * t - 3]
            let targets = [3, 17, -100, 40 % model.config.vocabSize]
            let state = try model.prefix(batch, upTo: .mid)
            let a1 = Variable(addendT, requiresGrad: true)
            let logits = model.forwardFrom(state, addend: a1, logitRows: rows)
            let reference = Ops.crossEntropy(logits: logits, targets: targets)
            reference.backward()
            let lp = Kernels.targetLogProbabilities(logits.value, targets: targets)
            let a2 = Variable(addendT, requiresGrad: true)
            let fused = model.forwardFromNLL(state, addend: a2, logitRows: rows, targets: targets)
            fused.loss.backward()
            XCTAssertEqual(fused.loss.item, reference.item, accuracy: 1e-5 * max(1, abs(reference.item)), name)
            for (i, target) in targets.enumerated() {
                XCTAssertEqual(fused.rowNLL[i], target == -100 ? 0 : -lp[i], accuracy: 1e-4, "\(name) row \(i)")
            }
            let d = maxAbsDiff(try XCTUnwrap(a2.grad), try XCTUnwrap(a1.grad))
            XCTAssertLessThanOrEqual(d, 1e-6, "\(name): addend gradient max abs diff \(d)")
            // A trainable head takes the row-chunk path (with the head's gradient) and reports the
            // same values; its head gradient matches the logits path's.
            model.setTrainable()
            let head = model.parameter(model.spec.lmHead + ".weight")
            let a4 = Variable(addendT, requiresGrad: true)
            Ops.crossEntropy(logits: model.forwardFrom(state, addend: a4, logitRows: rows), targets: targets).backward()
            let headReference = try XCTUnwrap(head.grad)
            model.trainableParameters.forEach { $0.variable.zeroGrad() }
            let a3 = Variable(addendT, requiresGrad: true)
            let unfused = model.forwardFromNLL(state, addend: a3, logitRows: rows, targets: targets)
            unfused.loss.backward()
            let dHead = maxAbsDiff(try XCTUnwrap(head.grad), headReference)
            XCTAssertLessThanOrEqual(dHead, 1e-6, "\(name): trainable head, head weight gradient max abs diff \(dHead)")
            XCTAssertEqual(unfused.loss.item, reference.item, accuracy: 1e-5 * max(1, abs(reference.item)), "\(name) trainable head")
            for i in rows.indices { XCTAssertEqual(unfused.rowNLL[i], fused.rowNLL[i], accuracy: 1e-4, "\(name) trainable head row \(i)") }
            let d3 = maxAbsDiff(try XCTUnwrap(a3.grad), try XCTUnwrap(a1.grad))
            XCTAssertLessThanOrEqual(d3, 1e-6, "\(name): trainable head, addend gradient max abs diff \(d3)")
        }
    }

    func testForwardFromMatchesFullForwardAndFiniteDifferences() throws {
        let fx = try ArchFixture("gemma2")
        let model = try fx.model()
        let batch = fx.batch, d = model.config.hiddenSize, t = batch.length
        var rng = SplitMix64(seed: 3)
        let deltaT = Tensor(shape: [d]) { p in for i in 0..<d { p[i] = 0.3 * rng.nextGaussian() } }
        let rows = [t - 1, 2 * t - 1, t - 3]
        let targets = [5, 17, 40]
        // forwardFrom at `mid` on every position equals a plain forward with the same intervention
        // (in a plain forward the whole call is the prompt, so scope .prompt covers every position).
        let state = try model.prefix(batch, upTo: .mid)
        let full = try model.forward(batch, options: ForwardOptions(logits: .rows(rows), interventions: [
            Intervention(layer: .mid, delta: deltaT, scope: .prompt)]))
        let all = model.forwardFrom(state, delta: Variable(deltaT), logitRows: rows)
        // Restricting the perturbed positions changes the result.
        let logits = model.forwardFrom(state, delta: Variable(deltaT), deltaPositions: 0..<6, logitRows: rows)
        let dfull = maxAbsDiff(all.value, try XCTUnwrap(full.logits))
        XCTAssertLessThanOrEqual(dfull, 1e-4, "forwardFrom vs forward with intervention: max abs diff \(dfull)")
        XCTAssertGreaterThan(maxAbsDiff(logits.value, all.value), 1e-4, "deltaPositions must restrict the perturbation")
        // Finite differences on a few coordinates of the shared delta.
        func loss(_ dt: Tensor) -> (Float, Tensor?) {
            let v = Variable(dt, requiresGrad: true)
            let l = Ops.crossEntropy(logits: model.forwardFrom(state, delta: v, logitRows: rows), targets: targets)
            l.backward()
            return (l.item, v.grad)
        }
        let (_, grad) = loss(deltaT)
        let g = try XCTUnwrap(grad)
        let h: Float = 1e-2
        for i in [0, 7, 23, 47] {
            var plus = deltaT.copy(), minus = deltaT.copy()
            plus.withUnsafeMutableBufferPointer { $0[i] += h }
            minus.withUnsafeMutableBufferPointer { $0[i] -= h }
            let fd = (loss(plus).0 - loss(minus).0) / (2 * h)
            XCTAssertEqual(g[i], fd, accuracy: 2e-3 + 0.02 * abs(fd), "d loss / d delta[\(i)]: autodiff \(g[i]) vs finite difference \(fd)")
        }
    }

    /// When the LM head reads a few rows, the last block runs queries, output projection and
    /// MLP on the positions from the first of them on. Logits and the gradient to a mid-layer
    /// delta match the full last block (forced by also capturing the final hidden state) on
    /// every family: RoPE positions with left padding, Gemma-2's window and post-norms, GPT-2.
    func testLastBlockKeepsOnlyTheQueriesTheHeadReads() throws {
        for name in ["llama", "qwen2", "gemma2", "gpt2"] {
            let fx = try ArchFixture(name)
            let model = try fx.model()
            let batch = fx.batch, t = batch.length, d = model.config.hiddenSize, layers = model.config.numLayers
            let rows = [t - 1, 2 * t - 2, t - 3]
            XCTAssertEqual(model.keptQueries(firstBlock: 0, length: batch.length,
                                             options: DifferentiableOptions(logits: .rows(rows))), t - 3)
            XCTAssertNil(model.keptQueries(firstBlock: 0, length: batch.length,
                                           options: DifferentiableOptions(hidden: .indices([layers]), logits: .rows(rows))))
            var rng = SplitMix64(seed: 9)
            let deltaT = Tensor(shape: [d]) { p in for i in 0..<d { p[i] = 0.2 * rng.nextGaussian() } }
            func run(_ hidden: HiddenCapture) throws -> (Tensor, Tensor) {
                let delta = Variable(deltaT, requiresGrad: true)
                let out = try model.forwardDifferentiable(batch, options: DifferentiableOptions(
                    hidden: hidden, logits: .rows(rows), interventions: [Intervention(layer: .mid, delta: delta)]))
                let logits = try XCTUnwrap(out.logits)
                Ops.crossEntropy(logits: logits, targets: [3, 7, 11]).backward()
                return (logits.value, try XCTUnwrap(delta.grad))
            }
            let (trimmed, gTrimmed) = try run(.none)
            let (full, gFull) = try run(.indices([layers]))
            let dl = maxAbsDiff(trimmed, full), dg = maxAbsDiff(gTrimmed, gFull)
            XCTAssertLessThanOrEqual(dl, 1e-5, "\(name): kept-query logits vs full last block, max abs diff \(dl)")
            XCTAssertLessThanOrEqual(dg, 1e-5 * max(1, gFull.scalars.map { abs($0) }.max() ?? 1),
                                     "\(name): delta gradient, max abs diff \(dg)")
        }
    }
}
