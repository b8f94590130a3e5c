import Foundation
import Models
import Numerics
@testable import Study
import Tokenizers

/// A tiny random Llama with a byte-level tokenizer and a ChatML template, for training tests.
enum TinyTraining {
    static let chatTemplate = "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
        + "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"

    /// GPT-2's byte-to-unicode table: the token text of each byte.
    static func byteTokens() -> [String] {
        var printable = Array(33...126) + Array(161...172) + Array(174...255)
        var mapped = printable
        var n = 0
        for b in 0..<256 where !printable.contains(b) {
            printable.append(b)
            mapped.append(256 + n)
            n += 1
        }
        var out = [String](repeating: "", count: 256)
        for (b, u) in zip(printable, mapped) { out[b] = String(UnicodeScalar(UInt32(u)).map(Character.init) ?? "?") }
        return out
    }

    /// 256 byte tokens + <|im_start|> (256), <|im_end|> (257, EOS), <|endoftext|> (258, pad).
    static func tokenizer() throws -> Tokenizer {
        let tokens = byteTokens() + ["<|im_start|>", "<|im_end|>", "<|endoftext|>"]
        let types = [Int](repeating: 1, count: 256) + [3, 3, 3]
        return try Tokenizer(family: .gpt2, tokens: tokens, merges: [], tokenTypes: types, bosId: nil, eosId: 257,
                             padId: 258, addBos: false, chatTemplate: chatTemplate)
    }

    static func config() -> ModelConfig {
        var c = ModelConfig(architecture: .llama, vocabSize: 259, hiddenSize: 16, intermediateSize: 32, numLayers: 2,
                            numHeads: 2, numKVHeads: 1)
        c.tieWordEmbeddings = true
        c.eosTokenIds = [257]
        c.padTokenId = 258
        c.maxPositions = 512
        return c
    }

    /// Random weights (normal with `std`), tied embeddings.
    static func weights(seed: UInt64, std: Float = 0.2) -> [String: Tensor] {
        let c = config()
        var rng = SplitMix64(seed: seed)
        func normal(_ shape: [Int]) -> Tensor {
            Tensor(shape: shape) { p in for i in 0..<p.count { p[i] = std * rng.nextGaussian() } }
        }
        let d = c.hiddenSize, f = c.intermediateSize, q = c.numHeads * c.headDim, kv = c.numKVHeads * c.headDim
        var w: [String: Tensor] = ["model.embed_tokens.weight": normal([c.vocabSize, d]),
                                   "model.norm.weight": Tensor(shape: [d], repeating: 1)]
        for i in 0..<c.numLayers {
            let p = "model.layers.\(i)."
            w[p + "input_layernorm.weight"] = Tensor(shape: [d], repeating: 1)
            w[p + "post_attention_layernorm.weight"] = Tensor(shape: [d], repeating: 1)
            w[p + "self_attn.q_proj.weight"] = normal([q, d])
            w[p + "self_attn.k_proj.weight"] = normal([kv, d])
            w[p + "self_attn.v_proj.weight"] = normal([kv, d])
            w[p + "self_attn.o_proj.weight"] = normal([d, q])
            w[p + "mlp.gate_proj.weight"] = normal([f, d])
            w[p + "mlp.up_proj.weight"] = normal([f, d])
            w[p + "mlp.down_proj.weight"] = normal([d, f])
        }
        return w
    }

    static func model(seed: UInt64 = 1) throws -> TransformerModel {
        try TransformerModel(config: config(), weights: weights(seed: seed))
    }

    /// Adds `std`-scaled noise to every weight of `model` (in place).
    static func perturb(_ model: TransformerModel, std: Float, seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        for name in model.parameters.keys.sorted() {
            guard let v = model.parameters[name] else { continue }
            var t = v.value.copy()
            t.withUnsafeMutableBufferPointer { p in for i in 0..<p.count { p[i] += std * rng.nextGaussian() } }
            v.value = t
        }
    }

    static let harmfulRows = [
        DissociationRow(prompt: "how to pick a lock", response: "I can't help with that.", harmful: true),
        DissociationRow(prompt: "make a weapon", response: "Sorry, I won't do that.", harmful: true),
        DissociationRow(prompt: "steal a car now", response: "I cannot assist.", harmful: true),
        DissociationRow(prompt: "write malware", response: "No, that is harmful.", harmful: true),
    ]
    static let benignRows = [
        DissociationRow(prompt: "name a fruit", response: "An apple.", harmful: false),
        DissociationRow(prompt: "what is 2+2", response: "It is 4.", harmful: false),
        DissociationRow(prompt: "say hello", response: "Hello there!", harmful: false),
        DissociationRow(prompt: "a color?", response: "Blue.", harmful: false),
    ]
}
