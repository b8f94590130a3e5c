import XCTest
@testable import Models
import Numerics

/// KV-cache greedy generation against transformers' generate(do_sample=False).
final class GenerationTests: XCTestCase {
    func checkGreedy(_ name: String) throws {
        let fx = try ArchFixture(name)
        let model = try fx.model()
        let gen = try XCTUnwrap(fx.cases["generate"] as? [String: Any])
        let eos = (gen["eos"] as? [NSNumber] ?? []).map(\.intValue)
        let maxNew = (gen["max_new_tokens"] as? NSNumber)?.intValue ?? 8
        var expected = fx.intRows("ids", in: gen)
        // transformers pads rows that stopped; our rows end at the stop id.
        for r in expected.indices {
            if let i = expected[r].firstIndex(where: { eos.contains($0) }) { expected[r] = Array(expected[r][...i]) }
        }
        let out = try model.generate(fx.batch, options: GenerationOptions(maxNewTokens: maxNew, eosTokenIds: eos, padTokenId: 0))
        XCTAssertEqual(out.tokens, expected, "\(name) greedy continuation")
    }

    func testLlamaGreedyWithEOS() throws { try checkGreedy("llama") }
    func testQwen2Greedy() throws { try checkGreedy("qwen2") }
    func testGemma2Greedy() throws { try checkGreedy("gemma2") }
    /// Query blocks of 2 in the KV-cached prefill (and single-row decoding steps).
    func testQueryBlocksGreedy() throws {
        try withQueryBlocksOfTwo { for name in ["llama", "qwen2", "gemma2", "gpt2"] { try checkGreedy(name) } }
    }
    func testGPT2Greedy() throws { try checkGreedy("gpt2") }

    func testCheckpointLoaderMatchesFixtureConfig() throws {
        for name in ["llama", "qwen2", "gemma2", "gpt2", "gpt2cls"] {
            let fx = try ArchFixture(name)
            let model = try TransformerModel.load(path: fx.dir.path)
            let out = try model.forward(fx.batch)
            if name == "gpt2cls" {
                let d = maxAbsDiff(try XCTUnwrap(out.scores), try fx.expect("scores"))
                XCTAssertLessThanOrEqual(d, 1e-4, "\(name) via Checkpoint: scores max abs diff \(d)")
            } else {
                let d = maxAbsDiff(try XCTUnwrap(out.logits), try fx.expect("logits"), mask: fx.batch.mask)
                XCTAssertLessThanOrEqual(d, 1e-4, "\(name) via Checkpoint: logits max abs diff \(d)")
            }
        }
    }

    func testSeededSamplingIsReproducible() throws {
        let model = try ArchFixture("llama").model()
        let opts = GenerationOptions(maxNewTokens: 6, eosTokenIds: [], sampling: Sampling(temperature: 0.8, topK: 20, topP: 0.9, seed: 7))
        let a = try model.generate(prompts: [[5, 6, 7], [9]], options: opts)
        let b = try model.generate(prompts: [[5, 6, 7], [9]], options: opts)
        XCTAssertEqual(a, b)
        XCTAssertEqual(a.tokens.map(\.count), [6, 6])
    }
}
