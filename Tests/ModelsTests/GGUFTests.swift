import Foundation
import Numerics
import XCTest
@testable import Models

final class GGUFTests: XCTestCase {
    private func tempCopy(_ name: String, mutate: (inout Data) -> Void) throws -> URL {
        var data = try Data(contentsOf: LoadingFixtures.url(name))
        mutate(&data)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("auditgap-\(UUID().uuidString).gguf")
        try data.write(to: url)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    private func message(_ body: () throws -> Void) -> String {
        do { try body(); return "no error" } catch { return "\(error)" }
    }

    func testMetadataOfEveryValueType() throws {
        let f = try GGUFFile(url: LoadingFixtures.url("quant_types.gguf"))
        XCTAssertEqual(f.version, 3)
        XCTAssertEqual(f.alignment, 64)
        XCTAssertEqual(f.dataStart % 64, 0)
        let m = f.metadata
        XCTAssertEqual(m["general.architecture"], .string("llama"))
        XCTAssertEqual(m["test.u8"], .uint8(200))
        XCTAssertEqual(m["test.i8"], .int8(-100))
        XCTAssertEqual(m["test.u16"], .uint16(60000))
        XCTAssertEqual(m["test.i16"], .int16(-30000))
        XCTAssertEqual(m["test.u32"], .uint32(4_000_000_000))
        XCTAssertEqual(m["test.i32"], .int32(-2_000_000_000))
        XCTAssertEqual(m["test.f32"], .float32(0.25))
        XCTAssertEqual(m["test.u64"], .uint64(1 << 40))
        XCTAssertEqual(m["test.i64"], .int64(-(1 << 40)))
        XCTAssertEqual(m["test.f64"], .float64(3.5))
        XCTAssertEqual(m["test.bool"], .bool(true))
        XCTAssertEqual(m["test.string"], .string("héllo"))
        XCTAssertEqual(m["test.array"]?.strings, ["a", "bc", ""])
        XCTAssertEqual(m["test.nested"]?.array?.map { $0.ints ?? [] }, [[1, 2], [3]])
        XCTAssertEqual(m["test.u32"]?.int, 4_000_000_000)
        XCTAssertEqual(m["test.f32"]?.double, 0.25)
        XCTAssertEqual(f.metadataKeys.first, "general.architecture")
    }

    func testDequantisationOfEveryType() throws {
        let f = try GGUFFile(url: LoadingFixtures.url("quant_types.gguf"))
        let expected = try SafeTensors.read(LoadingFixtures.url("quant_types.expected.safetensors"))
        XCTAssertEqual(Set(f.tensors.map(\.name)), Set(expected.keys))
        let types = Dictionary(uniqueKeysWithValues: f.tensors.map { ($0.name, $0.type.description) })
        XCTAssertEqual(types["t_q4_k"], "Q4_K")
        XCTAssertEqual(types["t_q6_k"], "Q6_K")
        XCTAssertEqual(types["t_bf16"], "BF16")
        XCTAssertEqual(types["t_q5_0"], "Q5_0")
        XCTAssertEqual(types["t_q5_1"], "Q5_1")
        for info in f.tensors {
            let got = try f.dequantize(info)
            let want = try XCTUnwrap(expected[info.name])
            XCTAssertEqual(got.shape, want.shape, info.name)
            let diff = zip(got.scalars, want.scalars).map { abs($0 - $1) }.max() ?? 0
            XCTAssertEqual(diff, 0, "\(info.name) (\(info.type)): max |diff| \(diff)")
        }
        let t3 = try XCTUnwrap(f.tensorInfo("t_3d"))
        XCTAssertEqual(t3.dims, [32, 3, 2], "GGUF lists dims fastest first")
        XCTAssertEqual(t3.shape, [2, 3, 32])
    }

    func testVersion2AcceptedOtherVersionsRejected() throws {
        let v2 = try tempCopy("quant_types.gguf") { $0[4] = 2 }
        XCTAssertEqual(try GGUFFile(url: v2).version, 2)
        let v4 = try tempCopy("quant_types.gguf") { $0[4] = 4 }
        XCTAssertTrue(message { _ = try GGUFFile(url: v4) }.contains("version 2 or 3, got 4"))
        let bigEndian = try tempCopy("quant_types.gguf") { $0[4] = 0; $0[7] = 3 }
        XCTAssertTrue(message { _ = try GGUFFile(url: bigEndian) }.contains("big-endian"))
        let magic = try tempCopy("quant_types.gguf") { $0[0] = UInt8(ascii: "X") }
        let text = message { _ = try GGUFFile(url: magic) }
        XCTAssertTrue(text.contains("not a GGUF file") && text.contains(magic.path), text)
    }

    func testTruncatedFilesNameWhatIsMissing() throws {
        let header = try tempCopy("quant_types.gguf") { $0 = $0.prefix(40) }
        let h = message { _ = try GGUFFile(url: header) }
        XCTAssertTrue(h.contains("truncated") && h.contains(header.path) && h.contains("metadata"), h)
        let size = try Data(contentsOf: LoadingFixtures.url("quant_types.gguf")).count
        let data = try tempCopy("quant_types.gguf") { $0 = $0.prefix(size - 100) }
        let d = message { _ = try GGUFFile(url: data) }
        XCTAssertTrue(d.contains("tensor 't_") && d.contains("truncated"), d)
        let empty = try tempCopy("quant_types.gguf") { $0 = Data() }
        XCTAssertTrue(message { _ = try GGUFFile(url: empty) }.contains("truncated"))
    }

    func testUnsupportedTypeIsNamed() throws {
        let url = LoadingFixtures.url("unsupported_q2_k.gguf")
        let f = try GGUFFile(url: url)
        XCTAssertFalse(f.tensors[0].type.isSupported)
        XCTAssertEqual(f.tensors[0].byteCount, 84)
        let text = message { _ = try f.dequantize(f.tensors[0]) }
        XCTAssertTrue(text.contains("'t_q2_k'") && text.contains("Q2_K") && text.contains(url.path), text)
        XCTAssertTrue(message { _ = try Checkpoint.load(url: url) }.contains("Q2_K"))
    }

    func testTinyLlamaUnpermutedAndTied() throws {
        let ckpt = try Checkpoint.load(url: LoadingFixtures.url("tiny_llama.gguf"))
        try LoadingFixtures.assertMatches(ckpt.weights, expectedFile: "tiny_llama.expected.safetensors")
        let c = ckpt.config
        XCTAssertEqual(ckpt.format, .gguf)
        XCTAssertEqual(c.architecture, .llama)
        XCTAssertEqual([c.vocabSize, c.hiddenSize, c.intermediateSize, c.numLayers, c.numHeads, c.numKVHeads, c.headDim],
                       [48, 32, 64, 2, 4, 2, 8])
        XCTAssertEqual(c.maxPositions, 256)
        XCTAssertEqual(c.normEps, 1e-5)
        XCTAssertEqual(c.ropeTheta, 100_000)
        XCTAssertTrue(c.tieWordEmbeddings)
        XCTAssertEqual(c.eosTokenIds, [1])
        XCTAssertEqual(c.bosTokenId, 0)
        XCTAssertEqual(ckpt.missingWeights, [])
        XCTAssertEqual(ckpt.sourceDTypes["model.embed_tokens.weight"], "Q8_0")
        let tok = ckpt.tokenizer
        XCTAssertTrue(tok.isPresent)
        XCTAssertEqual(tok.ggufMetadata["tokenizer.ggml.model"]?.string, "gpt2")
        XCTAssertEqual(tok.ggufMetadata["tokenizer.ggml.pre"]?.string, "smollm")
        XCTAssertEqual(tok.ggufMetadata["tokenizer.ggml.tokens"]?.strings?.count, 48)
        XCTAssertEqual(tok.ggufMetadata["tokenizer.ggml.merges"]?.strings, ["t 1", "t 2"])
        XCTAssertEqual(tok.ggufMetadata["tokenizer.ggml.add_bos_token"]?.bool, false)
        XCTAssertEqual(tok.chatTemplate, "{% for m in messages %}{{ m['content'] }}{% endfor %}")
        XCTAssertNil(tok.ggufMetadata["llama.block_count"], "only tokenizer.* keys")
        XCTAssertEqual(ckpt.ggufMetadata["llama.block_count"]?.int, 2)
        XCTAssertThrowsError(try ckpt.weight("lm_head.weight")) { error in
            XCTAssertEqual("\(error)", "missing weight lm_head.weight in \(LoadingFixtures.url("tiny_llama.gguf").path)")
        }
    }

    func testTinyGemma2NormsShifted() throws {
        let ckpt = try Checkpoint.load(url: LoadingFixtures.url("tiny_gemma2.gguf"))
        try LoadingFixtures.assertMatches(ckpt.weights, expectedFile: "tiny_gemma2.expected.safetensors")
        let c = ckpt.config
        XCTAssertEqual(c.architecture, .gemma2)
        XCTAssertEqual(c.attnLogitSoftcap, 50)
        XCTAssertEqual(c.finalLogitSoftcap, 30)
        XCTAssertEqual(c.slidingWindow, 16)
        XCTAssertEqual(c.slidingLayers, [true])
        XCTAssertEqual(c.headDim, 8)
        XCTAssertEqual(c.queryPreAttnScalar, 8)
        XCTAssertEqual(c.hiddenAct, "gelu_pytorch_tanh")
        XCTAssertEqual(ckpt.missingWeights, [])
    }

    func testTinyQwen2BiasesAndUntiedOutput() throws {
        let ckpt = try Checkpoint.load(url: LoadingFixtures.url("tiny_qwen2.gguf"))
        try LoadingFixtures.assertMatches(ckpt.weights, expectedFile: "tiny_qwen2.expected.safetensors")
        XCTAssertTrue(ckpt.config.attentionBias)
        XCTAssertFalse(ckpt.config.tieWordEmbeddings)
        XCTAssertEqual(ckpt.missingWeights, [])
    }

    func testNameMapping() {
        let cases: [(String, Architecture, String)] = [
            ("token_embd.weight", .llama, "model.embed_tokens.weight"),
            ("output.weight", .llama, "lm_head.weight"),
            ("output_norm.weight", .qwen2, "model.norm.weight"),
            ("blk.12.attn_output.weight", .llama, "model.layers.12.self_attn.o_proj.weight"),
            ("blk.0.attn_k.bias", .qwen2, "model.layers.0.self_attn.k_proj.bias"),
            ("blk.3.ffn_norm.weight", .llama, "model.layers.3.post_attention_layernorm.weight"),
            ("blk.3.ffn_norm.weight", .gemma2, "model.layers.3.pre_feedforward_layernorm.weight"),
            ("blk.3.post_attention_norm.weight", .gemma2, "model.layers.3.post_attention_layernorm.weight"),
            ("blk.3.post_ffw_norm.weight", .gemma2, "model.layers.3.post_feedforward_layernorm.weight"),
            ("blk.1.ffn_gate.weight", .llama, "model.layers.1.mlp.gate_proj.weight"),
            ("rope_freqs.weight", .llama, "rope_freqs.weight"),
        ]
        for (gguf, arch, hf) in cases { XCTAssertEqual(Checkpoint.hfName(gguf, architecture: arch), hf, gguf) }
    }

    func testUnpermuteInvertsLlamaCppPermutation() {
        // 2 heads of width 4, 1 column: HF rows [h0: a0 a1 b0 b1 | h1: ...] are stored as [a0 b0 a1 b1 | ...].
        let stored = Tensor(shape: [8, 1], data: [0, 2, 1, 3, 4, 6, 5, 7])
        XCTAssertEqual(Checkpoint.unpermuteRows(stored, heads: 2).scalars, [0, 1, 2, 3, 4, 5, 6, 7])
        let bias = Tensor(shape: [4], data: [10, 12, 11, 13])
        XCTAssertEqual(Checkpoint.unpermuteRows(bias, heads: 1).scalars, [10, 11, 12, 13])
    }
}
