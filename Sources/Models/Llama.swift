// Llama (3.x with llama3 RoPE scaling, SmolLM2): pre-norm RMSNorm blocks, rotate-half RoPE,
// grouped-query attention, SwiGLU MLP, optional tied embeddings.
//
// Dimension legend: D hidden, H heads, Hkv key/value heads, Dh head width, F intermediate.
// Weights: q_proj [H*Dh, D], k_proj/v_proj [Hkv*Dh, D], o_proj [D, H*Dh],
// gate_proj/up_proj [F, D], down_proj [D, F].
import Foundation
import Numerics

/// Llama family layout.
public enum Llama {
    /// Block paths shared by Llama-style checkpoints (`model.layers.i.*`).
    static func block(_ i: Int, window: Int? = nil) -> BlockSpec {
        let p = "model.layers.\(i)"
        return BlockSpec(attnNorm: "\(p).input_layernorm", attnPostNorm: nil, mlpNorm: "\(p).post_attention_layernorm",
                         mlpPostNorm: nil, q: "\(p).self_attn.q_proj", k: "\(p).self_attn.k_proj",
                         v: "\(p).self_attn.v_proj", o: "\(p).self_attn.o_proj", gate: "\(p).mlp.gate_proj",
                         up: "\(p).mlp.up_proj", down: "\(p).mlp.down_proj", window: window)
    }

    /// The Llama layout for `config`.
    public static func spec(_ config: ModelConfig) -> ArchitectureSpec {
        ArchitectureSpec(embed: "model.embed_tokens", positionEmbed: nil, embedScale: nil, finalNorm: "model.norm",
                         lmHead: config.tieWordEmbeddings ? "model.embed_tokens" : "lm_head", score: "score",
                         norm: .rms(addOne: false), usesRope: true,
                         activation: Activation(transformersName: config.hiddenAct) ?? .silu,
                         queryScale: 1 / Float(config.headDim).squareRoot(),
                         blocks: (0..<config.numLayers).map { block($0) })
    }
}
