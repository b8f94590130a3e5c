import XCTest
@testable import Models
import Numerics

/// Frozen weights run on packed copies (DerivedWeights.swift): results must match sgemm,
/// copies must follow replaced or unfrozen weights, and the budget must hold.
final class PackedWeightsTests: XCTestCase {
    override func tearDown() {
        TransformerModel.packedWeightBudget = 2048 << 20
        super.tearDown()
    }

    /// Logits, every hidden state and the gradient to a mid-layer delta (the PGD step), and
    /// the inference forward, with packing against without, on every family.
    func testPackedMatchesSgemm() throws {
        for name in ["llama", "qwen2", "gemma2", "gpt2"] {
            let fx = try ArchFixture(name)
            let batch = fx.batch, d = try fx.model().config.hiddenSize
            var rng = SplitMix64(seed: 3)
            let deltaT = Tensor(shape: [d]) { p in for i in 0..<d { p[i] = 0.2 * rng.nextGaussian() } }
            func run(budget: Int) throws -> (logits: Tensor, grad: Tensor, hidden: [Tensor], inference: Tensor, packed: Int) {
                TransformerModel.packedWeightBudget = budget
                let model = try fx.model()
                let delta = Variable(deltaT, requiresGrad: true)
                let out = try model.forwardDifferentiable(batch, options: DifferentiableOptions(
                    logits: .rows([batch.length - 1, 2 * batch.length - 2]),
                    interventions: [Intervention(layer: .mid, delta: delta)]))
                let logits = try XCTUnwrap(out.logits)
                Ops.crossEntropy(logits: logits, targets: [3, 7]).backward()
                let full = try model.forward(batch, options: ForwardOptions(hidden: .all, logits: .all))
                let hidden = (0...model.config.numLayers).compactMap { full.hidden[$0] }
                return (logits.value, try XCTUnwrap(delta.grad), hidden, try XCTUnwrap(full.logits),
                        model.derived.count(.packed))
            }
            let plain = try run(budget: 0), packed = try run(budget: 2048 << 20)
            XCTAssertEqual(plain.packed, 0)
            XCTAssertGreaterThan(packed.packed, 0, "\(name): packed copies were used")
            // Only the summation order differs: 1e-5 relative to the largest magnitude (Gemma-2's
            // scaled embeddings reach tens).
            func close(_ a: Tensor, _ e: Tensor, _ what: String) {
                let scale = max(1, e.scalars.map { abs($0) }.max() ?? 1), diff = maxAbsDiff(a, e)
                XCTAssertLessThanOrEqual(diff, 1e-5 * scale, "\(name): \(what), max abs diff \(diff), scale \(scale)")
            }
            close(packed.logits, plain.logits, "logits")
            close(packed.inference, plain.inference, "inference logits")
            close(packed.grad, plain.grad, "delta gradient")
            XCTAssertEqual(packed.hidden.count, plain.hidden.count)
            for (i, (a, e)) in zip(packed.hidden, plain.hidden).enumerated() { close(a, e, "hidden state \(i)") }
        }
    }

    /// A replaced weight is repacked; unfreezing drops every copy and trainable weights are
    /// never packed; a spent budget keeps sgemm.
    func testCopiesFollowTheWeights() throws {
        let fx = try ArchFixture("llama")
        let model = try fx.model()
        let name = "model.layers.0.mlp.down_proj.weight"
        let w = model.tensor(name)
        let input = Variable(Tensor(zeros: [8, w.shape[1]]))  // an 8-row product
        let first = try XCTUnwrap(model.packedParameter(name, input: input))
        XCTAssertTrue(model.packedParameter(name, input: input) === first, "cached")
        model.parameters[name]?.value = Tensor(shape: w.shape, data: w.scalars.map { $0 * 2 })
        let second = try XCTUnwrap(model.packedParameter(name, input: input))
        XCTAssertFalse(second === first, "a replaced weight is repacked")
        var y = [Float](repeating: 0, count: second.rows)
        let x = [Float](repeating: 1, count: second.cols)
        x.withUnsafeBufferPointer { px in y.withUnsafeMutableBufferPointer { py in
            second.product(x: px.baseAddress!, m: 1, ldx: second.cols, y: py.baseAddress!, ldy: second.rows)
        } }
        let doubled = model.tensor(name).scalars
        XCTAssertEqual(y[0], (0..<second.cols).map { doubled[$0] }.reduce(0, +), accuracy: 1e-4)
        model.setTrainable { $0 == name }
        XCTAssertEqual(model.derived.count(.packed), 0, "unfreezing drops the copies")
        XCTAssertNil(model.packedParameter(name, input: input), "trainable weights are not packed")
        model.freezeAll()
        TransformerModel.packedWeightBudget = PackedMatrix.liveBytes + 1024
        XCTAssertNil(model.packedParameter(name, input: input), "over the budget: sgemm")
    }
}
