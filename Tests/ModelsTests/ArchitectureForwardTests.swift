import XCTest
@testable import Models
import Numerics

/// Forward passes of the tiny fixtures against transformers (logits and every hidden state).
final class ArchitectureForwardTests: XCTestCase {
    let tolerance: Float = 1e-4

    func checkForward(_ name: String, file: String = "model.safetensors", logitsKey: String = "logits",
                      tolerance: Float = 1e-4) throws {
        let fx = try ArchFixture(name)
        let model = try fx.model(file: file)
        let batch = fx.batch
        let out = try model.forward(batch, options: ForwardOptions(hidden: .all))
        let logits = try XCTUnwrap(out.logits)
        let dl = maxAbsDiff(logits, try fx.expect(logitsKey), mask: batch.mask)
        XCTAssertLessThanOrEqual(dl, tolerance, "\(name) logits max abs diff \(dl)")
        guard file == "model.safetensors" else {
            print("[arch] \(name) \(file) logits max abs diff \(dl)")
            return
        }
        var worstHidden: Float = 0
        defer { print("[arch] \(name) logits max abs diff \(dl), hidden states max abs diff \(worstHidden)") }
        for i in 0...model.config.numLayers {
            let h = try XCTUnwrap(out.hidden[i], "\(name) hidden \(i) missing")
            let dh = maxAbsDiff(h, try fx.expect("hidden.\(i)"), mask: batch.mask)
            worstHidden = max(worstHidden, dh)
            XCTAssertLessThanOrEqual(dh, tolerance, "\(name) hidden.\(i) max abs diff \(dh)")
        }
    }

    func testLlamaMatchesTransformers() throws { try checkForward("llama") }
    func testQwen2MatchesTransformers() throws { try checkForward("qwen2") }
    func testQwen2BF16MatchesTransformers() throws {
        try checkForward("qwen2", file: "bf16/model.safetensors", logitsKey: "bf16.logits")
    }
    func testGemma2MatchesTransformers() throws { try checkForward("gemma2") }
    /// Query blocks of 2: several blocks per sequence, left padding, Gemma-2's window.
    func testQueryBlocksMatchTransformers() throws {
        try withQueryBlocksOfTwo { for name in ["llama", "qwen2", "gemma2", "gpt2"] { try checkForward(name) } }
    }
    func testGPT2MatchesTransformers() throws { try checkForward("gpt2") }

    func testGPT2SequenceClassificationScores() throws {
        let fx = try ArchFixture("gpt2cls")
        let model = try fx.model()
        let out = try model.forward(fx.batch, options: ForwardOptions(hidden: .all, logits: .none))
        let d = maxAbsDiff(try XCTUnwrap(out.scores), try fx.expect("scores"))
        XCTAssertLessThanOrEqual(d, tolerance, "gpt2cls scores max abs diff \(d)")
        let dh = maxAbsDiff(try XCTUnwrap(out.hidden[2]), try fx.expect("hidden.2"), mask: fx.batch.mask)
        XCTAssertLessThanOrEqual(dh, tolerance, "gpt2cls hidden.2 max abs diff \(dh)")
    }

    func testHiddenOnlyStopsEarlyAndMatches() throws {
        let fx = try ArchFixture("gemma2")
        let model = try fx.model()
        let out = try model.forward(fx.batch, options: ForwardOptions(hidden: .indices([0, 2]), logits: .none))
        XCTAssertNil(out.logits)
        XCTAssertNil(out.hidden[3])
        let d = maxAbsDiff(try XCTUnwrap(out.hidden[2]), try fx.expect("hidden.2"), mask: fx.batch.mask)
        XCTAssertLessThanOrEqual(d, tolerance, "gemma2 hidden.2 (early stop) max abs diff \(d)")
    }
}
