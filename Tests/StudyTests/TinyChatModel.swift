import Foundation
import Models
import Numerics
@testable import Study

/// A tiny random Llama with a byte-level tokenizer and a ChatML template, written as a Hugging
/// Face directory (for the attack tests; replaceable by the stages helper's factory).
enum TinyChatModel {
    static let hidden = 32, layers = 4, vocab = 260

    /// GPT-2's byte -> printable character map.
    static func byteChars() -> [Character] {
        var bs: [Int] = Array(33...126) + Array(161...172) + Array(174...255)
        var cs = bs
        var n = 0
        for b in 0..<256 where !bs.contains(b) {
            bs.append(b)
            cs.append(256 + n)
            n += 1
        }
        var table = [Character](repeating: " ", count: 256)
        for (b, c) in zip(bs, cs) { table[b] = Character(Unicode.Scalar(UInt32(c))!) }
        return table
    }

    /// Random weights with a fixed seed.
    static func model(seed: UInt64 = 7) throws -> TransformerModel {
        var c = ModelConfig(architecture: .llama, vocabSize: vocab, hiddenSize: hidden, intermediateSize: 64,
                            numLayers: layers, numHeads: 4, numKVHeads: 2)
        c.eosTokenIds = [257]
        c.bosTokenId = 256
        c.maxPositions = 512
        var rng = SplitMix64(seed: seed)
        func w(_ shape: [Int], _ scale: Float) -> Tensor {
            Tensor(shape: shape) { p in for i in 0..<p.count { p[i] = scale * rng.nextGaussian() } }
        }
        let d = hidden
        var weights: [String: Tensor] = [
            "model.embed_tokens.weight": w([vocab, d], 1),
            "model.norm.weight": Tensor(shape: [d], repeating: 1),
            "lm_head.weight": w([vocab, d], 0.3),
        ]
        for i in 0..<layers {
            let p = "model.layers.\(i)."
            weights[p + "input_layernorm.weight"] = Tensor(shape: [d], repeating: 1)
            weights[p + "post_attention_layernorm.weight"] = Tensor(shape: [d], repeating: 1)
            weights[p + "self_attn.q_proj.weight"] = w([d, d], 0.2)
            weights[p + "self_attn.k_proj.weight"] = w([d / 2, d], 0.2)
            weights[p + "self_attn.v_proj.weight"] = w([d / 2, d], 0.2)
            weights[p + "self_attn.o_proj.weight"] = w([d, d], 0.2)
            weights[p + "mlp.gate_proj.weight"] = w([64, d], 0.2)
            weights[p + "mlp.up_proj.weight"] = w([64, d], 0.2)
            weights[p + "mlp.down_proj.weight"] = w([d, 64], 0.2)
        }
        return try TransformerModel(config: c, weights: weights)
    }

    static let template = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"

    /// Writes model + tokenizer files into a new directory under `parent`.
    static func write(to parent: URL, name: String = "tiny", seed: UInt64 = 7) throws -> URL {
        let dir = parent.appendingPathComponent(name)
        try model(seed: seed).saveHF(to: dir)
        var vocabMap: [String: Int] = [:]
        for (i, ch) in byteChars().enumerated() { vocabMap[String(ch)] = i }
        let tokenizer: [String: Any] = [
            "version": "1.0",
            "model": ["type": "BPE", "vocab": vocabMap, "merges": [String]()],
            "added_tokens": [
                ["id": 256, "content": "<|im_start|>", "special": true, "normalized": false],
                ["id": 257, "content": "<|im_end|>", "special": true, "normalized": false],
            ],
            "pre_tokenizer": ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true],
            "decoder": ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true],
        ]
        try JSONSerialization.data(withJSONObject: tokenizer, options: [.sortedKeys])
            .write(to: dir.appendingPathComponent("tokenizer.json"))
        let cfg: [String: Any] = ["bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "chat_template": template]
        try JSONSerialization.data(withJSONObject: cfg, options: [.sortedKeys])
            .write(to: dir.appendingPathComponent("tokenizer_config.json"))
        return dir
    }

    /// A ChatModel loaded from a fresh directory.
    static func chat(in parent: URL, seed: UInt64 = 7) throws -> ChatModel {
        try ChatModel.load(path: write(to: parent, seed: seed).path)
    }
}
