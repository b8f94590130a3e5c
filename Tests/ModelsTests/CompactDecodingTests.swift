import XCTest
@testable import Models
import Numerics

/// Decoding steps read bf16-exact frozen weights from compact copies (DerivedWeights.swift):
/// their logits must match the float32 path.
final class CompactDecodingTests: XCTestCase {
    override func tearDown() {
        TransformerModel.compactDecoding = true
        super.tearDown()
    }

    /// The fixture model with every weight rounded to the nearest bfloat16 value.
    func bf16Model(_ name: String) throws -> TransformerModel {
        let fx = try ArchFixture(name)
        let config = try XCTUnwrap(fx.config)
        let weights = try readSafeTensors(fx.dir.appendingPathComponent("model.safetensors")).mapValues { t in
            Tensor(shape: t.shape, data: t.scalars.map { Float(bitPattern: ($0.bitPattern &+ 0x8000) & 0xFFFF_0000) })
        }
        return try TransformerModel(config: config, weights: weights)
    }

    /// Logits of a prefill and three cached single-row steps at batch `b`.
    func stepLogits(_ model: TransformerModel, batch b: Int) -> [Tensor] {
        let prompt = 5, c = model.config
        let cache = KVCache(config: c, batch: b, capacity: prompt + 3)
        var ids = (0..<(b * prompt)).map { 3 + ($0 * 7) % (c.vocabSize - 3) }
        var out: [Tensor] = []
        var r = model.run(ids: ids, mask: [Float](repeating: 1, count: b * prompt),
                          positions: (0..<b).flatMap { _ in Array(0..<prompt) }, batch: b, length: prompt, cache: cache,
                          promptLength: prompt, interventions: [], capture: .none, logits: .last).result
        for step in 0..<3 {
            guard let logits = r.logits else { return out }
            out.append(logits)
            ids = (0..<b).map { 4 + ($0 + step * 5) % (c.vocabSize - 4) }
            r = model.run(ids: ids, mask: [Float](repeating: 1, count: b), positions: [Int](repeating: prompt + step, count: b),
                          batch: b, length: 1, cache: cache, promptLength: prompt, interventions: [], capture: .none,
                          logits: .last).result
        }
        return out
    }

    func checkMatchesFloat32(_ name: String) throws {
        for b in [1, 3] {
            TransformerModel.compactDecoding = false
            let reference = stepLogits(try bf16Model(name), batch: b)
            TransformerModel.compactDecoding = true
            let model = try bf16Model(name)
            let compact = stepLogits(model, batch: b)
            XCTAssertGreaterThan(model.derived.count(.compact), 0, "\(name): compact copies were used")
            XCTAssertEqual(compact.count, reference.count)
            for (i, (a, e)) in zip(compact, reference).enumerated() {
                let diff = zip(a.scalars, e.scalars).map { abs($0 - $1) }.max() ?? .infinity
                XCTAssertLessThanOrEqual(diff, 1e-4, "\(name) batch \(b) step \(i): max abs diff \(diff)")
            }
        }
    }

    func testLlamaSteps() throws { try checkMatchesFloat32("llama") }
    func testQwen2StepsWithBiases() throws { try checkMatchesFloat32("qwen2") }
    func testGemma2Steps() throws { try checkMatchesFloat32("gemma2") }

    func testFloat32WeightsAndTrainableWeightsStayOnSgemm() throws {
        let fx = try ArchFixture("llama")
        let model = try fx.model()  // float32 random weights: not bf16-exact
        _ = stepLogits(model, batch: 1)
        XCTAssertEqual(model.derived.count(.compact), 0)
        let bf16 = try bf16Model("llama")
        bf16.setTrainable()
        _ = stepLogits(bf16, batch: 1)
        XCTAssertEqual(bf16.derived.count(.compact), 0, "trainable weights change in place: no copies")
    }
}
