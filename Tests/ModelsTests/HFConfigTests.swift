import Foundation
import XCTest
@testable import Models

final class HFConfigTests: XCTestCase {
    private func parse(_ json: String) throws -> HFConfig {
        try HFConfig.parse(Data(json.utf8), file: "config.json")
    }

    private let llamaCore = #""hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100"#

    func testLlamaDefaultsAndRope4x() throws {
        let h = try parse(#"{"architectures": ["LlamaForCausalLM"], \#(llamaCore), "rope_theta": 500000, "rope_scaling": {"type": "linear", "factor": 4}}"#)
        XCTAssertEqual(h.config.numKVHeads, 4, "num_key_value_heads defaults to num_attention_heads")
        XCTAssertEqual(h.config.headDim, 16)
        XCTAssertEqual(h.config.ropeTheta, 500_000)
        XCTAssertEqual(h.config.ropeScaling, .linear(factor: 4))
        XCTAssertFalse(h.config.tieWordEmbeddings)
        XCTAssertEqual(h.config.hiddenAct, "silu")
        XCTAssertNil(h.config.slidingLayers)
        let none = try parse(#"{"model_type": "llama", \#(llamaCore), "rope_scaling": null}"#)
        XCTAssertEqual(none.config.ropeScaling, .none)
        XCTAssertEqual(none.config.ropeTheta, 10_000)
    }

    func testRope5xAndPerLayerTypeParameters() throws {
        let h = try parse(#"{"architectures": ["LlamaForCausalLM"], \#(llamaCore), "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}"#)
        XCTAssertEqual(h.config.ropeTheta, 500_000)
        XCTAssertEqual(h.config.ropeScaling, .llama3(factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192))
        let nested = try parse(#"{"model_type": "gemma2", \#(llamaCore), "rope_parameters": {"full_attention": {"rope_type": "default", "rope_theta": 20000}, "sliding_attention": {"rope_type": "default", "rope_theta": 10000}}}"#)
        XCTAssertEqual(nested.config.ropeTheta, 20_000)
    }

    func testSequenceClassificationHeads() throws {
        let h = try parse(#"{"architectures": ["Qwen2ForSequenceClassification"], \#(llamaCore), "id2label": {"1": "safe", "0": "unsafe"}, "pad_token_id": 7, "eos_token_id": [5, 6]}"#)
        XCTAssertEqual(h.config.architecture, .qwen2)
        XCTAssertEqual(h.config.head, .sequenceClassification)
        XCTAssertEqual(h.labels, ["unsafe", "safe"])
        XCTAssertEqual(h.config.numLabels, 2)
        XCTAssertEqual(h.config.padTokenId, 7)
        XCTAssertEqual(h.config.eosTokenIds, [5, 6])
        XCTAssertTrue(h.config.attentionBias, "Qwen2 has q/k/v biases")
        let g = try parse(#"{"architectures": ["Gemma2ForSequenceClassification"], \#(llamaCore), "num_labels": 3}"#)
        XCTAssertEqual(g.config.head, .sequenceClassification)
        XCTAssertEqual(g.config.numLabels, 3)
        XCTAssertTrue(g.config.tieWordEmbeddings, "gemma2 ties by default")
        XCTAssertEqual(g.config.slidingLayers, [true, false], "gemma2 without layer_types: even layers slide")
        let l = try parse(#"{"architectures": ["LlamaForSequenceClassification"], \#(llamaCore)}"#)
        XCTAssertEqual(l.config.numLabels, 2, "transformers' default num_labels")
    }

    func testGPT2Keys() throws {
        let h = try parse(#"{"architectures": ["GPT2ForSequenceClassification"], "n_embd": 1280, "n_layer": 36, "n_head": 20, "n_positions": 1024, "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new", "vocab_size": 50257, "pad_token_id": 50256, "id2label": {"0": "LABEL_0"}}"#)
        XCTAssertEqual(h.config.architecture, .gpt2)
        XCTAssertEqual(h.config.hiddenSize, 1280)
        XCTAssertEqual(h.config.numLayers, 36)
        XCTAssertEqual(h.config.numHeads, 20)
        XCTAssertEqual(h.config.numKVHeads, 20)
        XCTAssertEqual(h.config.headDim, 64)
        XCTAssertEqual(h.config.intermediateSize, 5120)
        XCTAssertEqual(h.config.numLabels, 1)
        XCTAssertEqual(h.config.padTokenId, 50256)
        XCTAssertTrue(h.config.tieWordEmbeddings)
    }

    func testQwen2SlidingWindowOnlyWhenEnabled() throws {
        let off = try parse(#"{"model_type": "qwen2", \#(llamaCore), "sliding_window": 4096, "use_sliding_window": false}"#)
        XCTAssertNil(off.config.slidingWindow)
        let on = try parse(#"{"model_type": "qwen2", \#(llamaCore), "sliding_window": 4096, "use_sliding_window": true, "max_window_layers": 1}"#)
        XCTAssertEqual(on.config.slidingWindow, 4096)
        XCTAssertEqual(on.config.slidingLayers, [false, true])
    }

    func testErrorsNameFileAndKey() {
        func message(_ json: String) -> String {
            do { _ = try parse(json); return "no error" } catch { return "\(error)" }
        }
        XCTAssertTrue(message(#"{"architectures": ["MistralForCausalLM"]}"#).contains("unsupported architecture 'MistralForCausalLM'"))
        XCTAssertTrue(message(#"{"model_type": "llama", "hidden_size": 64}"#).contains("config.json: key 'num_attention_heads'"))
        XCTAssertTrue(message(#"{"model_type": "llama", \#(llamaCore), "rope_scaling": {"rope_type": "yarn", "factor": 2}}"#)
            .contains("key 'rope_scaling.rope_type'"))
        XCTAssertTrue(message(#"{"model_type": "llama", \#(llamaCore), "rope_parameters": {"rope_type": "linear"}}"#)
            .contains("rope_parameters.factor"))
        XCTAssertTrue(message(#"{"model_type": "llama", \#(llamaCore), "hidden_size": "big"}"#).contains("key 'hidden_size': expected an integer"))
        XCTAssertTrue(message(#"{"model_type": "gemma2", \#(llamaCore), "layer_types": ["full_attention"]}"#).contains("layer_types"))
        XCTAssertTrue(message(#"{"model_type": "gemma2", \#(llamaCore), "layer_types": ["full_attention", "chunked"]}"#).contains("layer_types[1]"))
        XCTAssertTrue(message("[1, 2]").contains("a JSON object"))
        XCTAssertTrue(message("{not json").contains("valid JSON"))
        XCTAssertTrue(message(#"{"model_type": "llama", \#(llamaCore), "num_key_value_heads": 3}"#).contains("num_attention_heads"))
    }

    func testGenerationConfigEos() throws {
        var c = try parse(#"{"model_type": "llama", \#(llamaCore), "eos_token_id": 2}"#).config
        XCTAssertEqual(c.eosTokenIds, [2])
        try HFConfig.applyGenerationConfig(Data(#"{"eos_token_id": [1, 107], "pad_token_id": 0}"#.utf8), file: "g.json", to: &c)
        XCTAssertEqual(c.eosTokenIds, [1, 107])
        XCTAssertEqual(c.padTokenId, 0)
        try HFConfig.applyGenerationConfig(Data(#"{"eos_token_id": 9}"#.utf8), file: "g.json", to: &c)
        XCTAssertEqual(c.eosTokenIds, [9])
        XCTAssertThrowsError(try HFConfig.applyGenerationConfig(Data(#"{"eos_token_id": "x"}"#.utf8), file: "g.json", to: &c))
    }
}
