// Gemma-2: embedding scaled by sqrt(D), RMSNorm times (1 + w), norms before and after both
// attention and MLP, query scale query_pre_attn_scalar^-0.5, attention logit soft-cap,
// sliding-window attention on alternate layers, GeGLU (tanh GELU), final logit soft-cap,
// tied embeddings; head_dim comes from the config.
//
// Dimension legend: D hidden, H heads, Hkv key/value heads, Dh head width (config), F intermediate.
import Numerics

/// Gemma-2 family layout.
public enum Gemma2 {
    /// The Gemma-2 layout for `config`.
    public static func spec(_ config: ModelConfig) -> ArchitectureSpec {
        let blocks = (0..<config.numLayers).map { i -> BlockSpec in
            let sliding = config.slidingLayers.map { i < $0.count ? $0[i] : false } ?? (i % 2 == 0)
            var b = Llama.block(i, window: sliding ? config.slidingWindow : nil)
            let p = "model.layers.\(i)"
            b.attnPostNorm = "\(p).post_attention_layernorm"
            b.mlpNorm = "\(p).pre_feedforward_layernorm"
            b.mlpPostNorm = "\(p).post_feedforward_layernorm"
            return b
        }
        return ArchitectureSpec(embed: "model.embed_tokens", positionEmbed: nil,
                                embedScale: Float(Double(config.hiddenSize).squareRoot()), finalNorm: "model.norm",
                                lmHead: config.tieWordEmbeddings ? "model.embed_tokens" : "lm_head", score: "score",
                                norm: .rms(addOne: true), usesRope: true,
                                activation: Activation(transformersName: config.hiddenAct) ?? .geluTanh,
                                queryScale: Float(1 / (config.queryPreAttnScalar ?? Double(config.headDim)).squareRoot()),
                                blocks: blocks)
    }
}
