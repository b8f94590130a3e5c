import XCTest
@testable import Models
import Numerics

/// The one forward definition: inference and autodiff read the same RoPE table and rotate
/// by the same arithmetic, prefix and tail compose to the whole pass, and checkpointed
/// training reaches intervention deltas as the recorded graph does.
final class ForwardTests: XCTestCase {
    /// PGD's prefix (inference, in place on q/k rows) and its differentiable tail
    /// ([B, H, T, Dh] autodiff op) rotate the same input to the same bits, and a table grown
    /// for longer generations keeps every row it had.
    func testRopeAgreesBitForBitBetweenInferenceAndAutodiff() throws {
        for name in ["llama", "qwen2", "gemma2"] {
            let model = try ArchFixture(name).model()
            let c = model.config, rope = try XCTUnwrap(model.rope)
            let b = 2, t = 7, h = c.numHeads, dh = c.headDim
            let positions = (0..<b).flatMap { bi in (0..<t).map { max(0, $0 - bi) } }
            let small = rope.table(positions: t)
            let grown = rope.table(positions: 5000)
            let half = dh / 2
            XCTAssertEqual(Array(grown.cos[0..<(small.maxPositions * half)]), small.cos, "\(name) cos rows")
            XCTAssertEqual(Array(grown.sin[0..<(small.maxPositions * half)]), small.sin, "\(name) sin rows")
            var rng = SplitMix64(seed: 5)
            let rows = Tensor(shape: [b * t, h * dh]) { p in for i in 0..<p.count { p[i] = 3 * rng.nextGaussian() } }
            var inPlace = rows
            inPlace.withUnsafeMutableBufferPointer { p in
                Kernels.ropeInPlace(p.baseAddress!, rowStride: h * dh, heads: h, table: small, positions: positions)
            }
            let heads = Kernels.permute(rows.reshaped([b, t, h, dh]), [0, 2, 1, 3])
            let rotated = Ops.rope(Variable(heads), table: grown, positions: positions).value
            let back = Kernels.permute(rotated, [0, 2, 1, 3]).reshaped([b * t, h * dh])
            XCTAssertTrue(inPlace.scalars == back.scalars, "\(name) rotation differs between the two paths")
        }
    }

    /// The residual stream `prefix` returns is the hidden state a full inference pass
    /// captures, bit for bit, and the differentiable tail from it gives the full pass's logits.
    func testPrefixAndTailComposeToTheWholePass() throws {
        for name in ["llama", "gemma2", "gpt2"] {
            let fx = try ArchFixture(name)
            let model = try fx.model()
            let batch = fx.batch
            let full = try model.forward(batch, options: ForwardOptions(hidden: .all))
            // Block 0's output: hidden[1] is a raw block output in every fixture (L >= 2).
            let state = try model.prefix(batch, upTo: .block(0))
            let captured = try XCTUnwrap(full.hidden[1]).reshaped([batch.batch * batch.length, -1])
            XCTAssertTrue(state.hidden.scalars == captured.scalars, "\(name) prefix differs from the captured hidden state")
            let rows = Array(0..<(batch.batch * batch.length))
            let delta = Variable(Tensor(zeros: [model.config.hiddenSize]), requiresGrad: true)
            let tail = model.forwardFrom(state, delta: delta, logitRows: rows).value
            let d = maxAbsDiff(tail.reshaped([batch.batch, batch.length, -1]), try XCTUnwrap(full.logits), mask: batch.mask)
            XCTAssertLessThanOrEqual(d, 1e-4, "\(name) tail logits max abs diff \(d)")
        }
    }

    /// Block-wise recomputation gives an intervention's delta (at the embedding and after a
    /// block) the gradient the recorded graph gives it.
    func testCheckpointedTrainingReachesInterventionDeltas() throws {
        let fx = try ArchFixture("llama")
        let model = try fx.model()
        let batch = fx.batch, d = model.config.hiddenSize, targets = TransformerModel.nextTokenTargets(batch)
        var rng = SplitMix64(seed: 11)
        let start = (0..<2).map { _ in Tensor(shape: [d]) { p in for i in 0..<d { p[i] = 0.1 * rng.nextGaussian() } } }
        func grads(_ policy: CheckpointPolicy) throws -> [[Float]] {
            let deltas = start.map { Variable($0, requiresGrad: true) }
            let options = DifferentiableOptions(interventions: [Intervention(layer: .embedding, delta: deltas[0]),
                                                                Intervention(layer: .block(1), delta: deltas[1])])
            _ = try model.trainingBackward(batch, options: options, checkpointing: policy) { out in
                Ops.crossEntropy(logits: out.logits!, targets: targets)
            }
            return try deltas.map { try XCTUnwrap($0.grad).scalars }
        }
        let recorded = try grads(.none), recomputed = try grads(.recompute), kept = try grads(.blocks(kept: 1, replayed: 1))
        for (k, g) in recorded.enumerated() {
            let scale = g.map(abs).max() ?? 1
            XCTAssertGreaterThan(scale, 0, "delta \(k) got no gradient")
            for other in [recomputed[k], kept[k]] {
                let diff = zip(g, other).map { abs($0 - $1) }.max() ?? 0
                XCTAssertLessThanOrEqual(diff, 1e-5 * max(1, scale), "delta \(k) gradient differs by \(diff)")
            }
        }
    }
}
