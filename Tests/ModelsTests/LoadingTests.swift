import Foundation
import Numerics
import XCTest
@testable import Models

/// Fixture helpers (files written by Tests/Fixtures/make_loading_fixtures.py).
enum LoadingFixtures {
    static var root: URL {
        guard let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
            preconditionFailure("ModelsTests Fixtures resource missing")
        }
        return url
    }
    static func url(_ name: String) -> URL { root.appendingPathComponent(name) }

    /// Largest |a - b| over every expected tensor; fails on a missing name or shape mismatch.
    static func assertMatches(_ weights: [String: Tensor], expectedFile: String, tolerance: Float = 0,
                              file: StaticString = #filePath, line: UInt = #line) throws {
        let expected = try SafeTensors.read(url(expectedFile))
        XCTAssertFalse(expected.isEmpty, file: file, line: line)
        for (name, want) in expected {
            guard let got = weights[name] else {
                XCTFail("\(expectedFile): missing \(name); have \(weights.keys.sorted().prefix(8))", file: file, line: line)
                continue
            }
            XCTAssertEqual(got.shape, want.shape, name, file: file, line: line)
            guard got.shape == want.shape else { continue }
            let diff = zip(got.scalars, want.scalars).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThanOrEqual(diff, tolerance, "\(name): max |diff| \(diff)", file: file, line: line)
        }
        XCTAssertEqual(Set(weights.keys), Set(expected.keys), "weight names differ from \(expectedFile)", file: file, line: line)
    }
}

final class LoadingTests: XCTestCase {
    func testLlama4xDirectoryBF16() throws {
        let ckpt = try Checkpoint.load(url: LoadingFixtures.url("hf_llama4x"))
        try LoadingFixtures.assertMatches(ckpt.weights, expectedFile: "hf_llama4x.expected.safetensors")
        let c = ckpt.config
        XCTAssertEqual(c.architecture, .llama)
        XCTAssertEqual(ckpt.architectureName, "LlamaForCausalLM")
        XCTAssertEqual(c.ropeTheta, 500_000)
        XCTAssertEqual(c.ropeScaling, .llama3(factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192))
        XCTAssertFalse(c.tieWordEmbeddings)
        XCTAssertEqual(ckpt.eosTokenIds, [2, 7], "generation_config.json eos list wins over config.json")
        XCTAssertEqual(c.headDim, 4)
        XCTAssertEqual(ckpt.sourceDTypes["model.embed_tokens.weight"], "BF16")
        XCTAssertEqual(ckpt.format, .safetensors)
        XCTAssertTrue(ckpt.tokenizer.isPresent)
        XCTAssertEqual(ckpt.tokenizer.tokenizerJSON?.lastPathComponent, "tokenizer.json")
        XCTAssertEqual(ckpt.tokenizer.tokenizerConfigJSON?.lastPathComponent, "tokenizer_config.json")
        XCTAssertEqual(ckpt.tokenizer.chatTemplate, "{{ messages[0]['content'] }}")
        XCTAssertEqual(ckpt.missingWeights, [])
        XCTAssertNoThrow(try ckpt.validate())
        XCTAssertEqual(try ckpt.outputWeight().scalars, try ckpt.weight("lm_head.weight").scalars)
        var untied = ckpt
        untied.weights["lm_head.weight"] = nil
        XCTAssertThrowsError(try untied.outputWeight())
    }

    func testLlama5xShardedTied() throws {
        let ckpt = try Checkpoint.load(path: LoadingFixtures.url("hf_llama5x_sharded").path)
        try LoadingFixtures.assertMatches(ckpt.weights, expectedFile: "hf_llama5x_sharded.expected.safetensors")
        XCTAssertEqual(ckpt.config.ropeScaling, .linear(factor: 2))
        XCTAssertEqual(ckpt.config.ropeTheta, 10_000)
        XCTAssertTrue(ckpt.config.tieWordEmbeddings)
        XCTAssertFalse(ckpt.hasWeight("lm_head.weight"))
        XCTAssertTrue(ckpt.weightsFile.hasSuffix("model.safetensors.index.json"))
        XCTAssertTrue(try ckpt.outputWeight().storage === ckpt.weight("model.embed_tokens.weight").storage, "tied output")
        XCTAssertEqual(ckpt.missingWeights, [])
        XCTAssertFalse(ckpt.tokenizer.isPresent)
        XCTAssertNil(ckpt.tokenizer.chatTemplate)
    }

    func testQwen2F16() throws {
        let ckpt = try Checkpoint.load(url: LoadingFixtures.url("hf_qwen2"))
        try LoadingFixtures.assertMatches(ckpt.weights, expectedFile: "hf_qwen2.expected.safetensors")
        XCTAssertEqual(ckpt.config.architecture, .qwen2)
        XCTAssertTrue(ckpt.config.attentionBias)
        XCTAssertEqual(ckpt.config.slidingLayers, [false, false])
        XCTAssertNil(ckpt.config.slidingWindow)
        XCTAssertEqual(ckpt.sourceDTypes["model.layers.0.self_attn.q_proj.bias"], "F16")
        XCTAssertEqual(ckpt.missingWeights, [])
    }

    func testGemma2() throws {
        let ckpt = try Checkpoint.load(url: LoadingFixtures.url("hf_gemma2"))
        try LoadingFixtures.assertMatches(ckpt.weights, expectedFile: "hf_gemma2.expected.safetensors")
        let c = ckpt.config
        XCTAssertEqual(c.architecture, .gemma2)
        XCTAssertEqual(c.headDim, 8)
        XCTAssertEqual(c.queryPreAttnScalar, 8)
        XCTAssertEqual(c.attnLogitSoftcap, 50)
        XCTAssertEqual(c.finalLogitSoftcap, 30)
        XCTAssertEqual(c.slidingWindow, 16)
        XCTAssertEqual(c.slidingLayers, [true, false, true])
        XCTAssertEqual(c.hiddenAct, "gelu_pytorch_tanh")
        XCTAssertTrue(c.tieWordEmbeddings)
        XCTAssertEqual(c.normEps, 1e-6)
        XCTAssertEqual(ckpt.missingWeights, [])
    }

    func testGPT2SequenceClassification() throws {
        let ckpt = try Checkpoint.load(url: LoadingFixtures.url("hf_gpt2_cls"))
        try LoadingFixtures.assertMatches(ckpt.weights, expectedFile: "hf_gpt2_cls.expected.safetensors")
        let c = ckpt.config
        XCTAssertEqual(c.architecture, .gpt2)
        XCTAssertEqual(c.head, .sequenceClassification)
        XCTAssertEqual(c.numLabels, 1)
        XCTAssertEqual(ckpt.labels, ["LABEL_0"])
        XCTAssertEqual(c.padTokenId, 0)
        XCTAssertEqual(c.hiddenSize, 16)
        XCTAssertEqual(c.numLayers, 2)
        XCTAssertEqual(c.numHeads, 4)
        XCTAssertEqual(c.intermediateSize, 64, "n_inner null -> 4 * n_embd")
        XCTAssertEqual(c.maxPositions, 32)
        XCTAssertEqual(c.hiddenAct, "gelu_new")
        XCTAssertEqual(c.normEps, 1e-5)
        XCTAssertEqual(ckpt.missingWeights, [])
        XCTAssertEqual(try ckpt.weight("transformer.h.0.attn.c_attn.weight").shape, [16, 48], "Conv1D keeps [in, out]")
    }

    func testGPT2LegacyNamesAreNormalised() throws {
        let ckpt = try Checkpoint.load(url: LoadingFixtures.url("hf_gpt2_legacy"))
        try LoadingFixtures.assertMatches(ckpt.weights, expectedFile: "hf_gpt2_legacy.expected.safetensors")
        XCTAssertFalse(ckpt.hasWeight("transformer.h.0.attn.bias"), "causal-mask buffers are dropped")
        XCTAssertEqual(ckpt.config.head, .causalLM)
        XCTAssertTrue(ckpt.config.tieWordEmbeddings)
        XCTAssertEqual(ckpt.eosTokenIds, [50256])
        XCTAssertTrue(ckpt.tokenizer.isPresent)
        XCTAssertEqual(ckpt.tokenizer.vocabJSON?.lastPathComponent, "vocab.json")
        XCTAssertEqual(ckpt.tokenizer.mergesTXT?.lastPathComponent, "merges.txt")
    }

    func testMissingWeightNamesPathAndFile() throws {
        let ckpt = try Checkpoint.load(url: LoadingFixtures.url("hf_qwen2"))
        XCTAssertThrowsError(try ckpt.weight("model.layers.3.mlp.up_proj.weight")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix("missing weight model.layers.3.mlp.up_proj.weight in "), text)
            XCTAssertTrue(text.hasSuffix("hf_qwen2/model.safetensors"), text)
        }
        XCTAssertThrowsError(try ckpt.weight("model.norm.weight", shape: [17])) { error in
            XCTAssertTrue("\(error)".contains("has shape [16], expected [17]"), "\(error)")
        }
        var partial = ckpt
        partial.weights["model.layers.1.mlp.down_proj.weight"] = nil
        XCTAssertEqual(partial.missingWeights, ["model.layers.1.mlp.down_proj.weight"])
        XCTAssertThrowsError(try partial.validate())
    }

    func testMissingFilesAndBadPaths() throws {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("auditgap-loading-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }
        XCTAssertThrowsError(try Checkpoint.load(url: tmp.appendingPathComponent("nope"))) { error in
            XCTAssertTrue("\(error)".contains("not found"), "\(error)")
        }
        XCTAssertThrowsError(try Checkpoint.load(url: tmp)) { error in
            XCTAssertTrue("\(error)".contains("config.json not found"), "\(error)")
        }
        // Config present, weights absent.
        let cfg = try Data(contentsOf: LoadingFixtures.url("hf_qwen2/config.json"))
        try cfg.write(to: tmp.appendingPathComponent("config.json"))
        XCTAssertThrowsError(try Checkpoint.load(url: tmp)) { error in
            XCTAssertTrue("\(error)".contains("model.safetensors"), "\(error)")
        }
        // Index naming a shard that does not exist.
        try Data(#"{"weight_map": {"a": "model-00001-of-00002.safetensors"}}"#.utf8)
            .write(to: tmp.appendingPathComponent("model.safetensors.index.json"))
        XCTAssertThrowsError(try Checkpoint.load(url: tmp)) { error in
            XCTAssertTrue("\(error)".contains("model-00001-of-00002.safetensors"), "\(error)")
        }
        // A truncated safetensors file surfaces the safetensors error with the file name.
        try FileManager.default.removeItem(at: tmp.appendingPathComponent("model.safetensors.index.json"))
        let full = try Data(contentsOf: LoadingFixtures.url("hf_qwen2/model.safetensors"))
        try full.prefix(full.count - 10).write(to: tmp.appendingPathComponent("model.safetensors"))
        XCTAssertThrowsError(try Checkpoint.load(url: tmp)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("model.safetensors") && text.contains("truncated"), text)
        }
        // A plain file that is neither a directory, a .gguf nor a file of a model directory.
        try Data("x".utf8).write(to: tmp.appendingPathComponent("notes.txt"))
        XCTAssertThrowsError(try Checkpoint.load(url: tmp.appendingPathComponent("notes.txt"))) { error in
            XCTAssertTrue("\(error)".contains("expected a Hugging Face model directory or a .gguf file"), "\(error)")
        }
        // The weights file of a directory loads the directory.
        let viaFile = try Checkpoint.load(url: LoadingFixtures.url("hf_qwen2/model.safetensors"))
        XCTAssertEqual(viaFile.config.architecture, .qwen2)
    }

    func testCacheLoadsOnce() throws {
        let cache = CheckpointCache()
        let path = LoadingFixtures.url("hf_llama5x_sharded").path
        let a = try cache.checkpoint(path: path)
        let b = try cache.checkpoint(path: path)
        XCTAssertEqual(cache.count, 1)
        // Same storage: the second call returned the cached tensors, not a reload.
        let ta = try a.weight("model.norm.weight"), tb = try b.weight("model.norm.weight")
        XCTAssertTrue(ta.storage === tb.storage)
        _ = try cache.checkpoint(path: path, key: "sha256:abc")
        XCTAssertEqual(cache.count, 2)
        _ = try cache.checkpoint(path: LoadingFixtures.url("tiny_llama.gguf").path)
        XCTAssertEqual(cache.count, 3)
        cache.removeAll()
        XCTAssertEqual(cache.count, 0)
        // Concurrent first requests load once and share storage.
        let results = LockedList()
        DispatchQueue.concurrentPerform(iterations: 6) { _ in
            if let c = try? cache.checkpoint(path: path), let t = c.weights["model.norm.weight"] { results.append(t.storage) }
        }
        XCTAssertEqual(cache.count, 1)
        XCTAssertEqual(results.items.count, 6)
        XCTAssertTrue(results.items.allSatisfy { $0 === results.items[0] })
        XCTAssertThrowsError(try cache.checkpoint(path: "/nonexistent/model"))
    }
}

/// Thread-safe list for collecting results in concurrent tests.
final class LockedList: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [TensorStorage] = []
    func append(_ s: TensorStorage) { lock.lock(); storage.append(s); lock.unlock() }
    var items: [TensorStorage] { lock.lock(); defer { lock.unlock() }; return storage }
}
