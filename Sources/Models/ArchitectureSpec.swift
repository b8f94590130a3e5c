// ArchitectureSpec: parameter paths and layout choices of one decoder-only family.
//
// Dimension legend: D hidden width, L decoder blocks.
// Paths are transformers checkpoint names without the ".weight"/".bias" suffix
// (`model.layers.3.self_attn.q_proj`), so optimisers, LoRA and saving all speak HF names.
import Numerics

/// Normalisation flavour of a family.
public enum NormKind: Sendable, Equatable {
    /// RMSNorm; `addOne` multiplies by (1 + w) as Gemma does.
    case rms(addOne: Bool)
    /// LayerNorm with weight and bias (GPT-2).
    case layer
}

/// Module paths of one decoder block.
public struct BlockSpec: Sendable {
    /// Norm before attention (`input_layernorm`, `ln_1`).
    public var attnNorm: String
    /// Norm after attention, before the residual add (Gemma-2 `post_attention_layernorm`).
    public var attnPostNorm: String?
    /// Norm before the MLP (`post_attention_layernorm` in Llama, `pre_feedforward_layernorm`, `ln_2`).
    public var mlpNorm: String
    /// Norm after the MLP (Gemma-2 `post_feedforward_layernorm`).
    public var mlpPostNorm: String?
    public var q: String, k: String, v: String, o: String
    /// Gate projection of a gated MLP (nil for GPT-2's plain MLP).
    public var gate: String?
    public var up: String, down: String
    /// Sliding attention window of this block (nil = full causal attention).
    public var window: Int?

    /// Every linear module path of the block.
    public var linears: [String] { [q, k, v, o] + (gate.map { [$0] } ?? []) + [up, down] }
}

/// Layout of one architecture family for a given config.
public struct ArchitectureSpec: Sendable {
    /// Token embedding table [V, D].
    public var embed: String
    /// Learned position table [P, D] (GPT-2).
    public var positionEmbed: String?
    /// Multiplier applied to the embedding output (Gemma: sqrt(D) cast to float32).
    public var embedScale: Float?
    public var finalNorm: String
    /// Vocabulary projection [V, D]; equals `embed` + ".weight" owner when tied.
    public var lmHead: String
    /// Sequence-classification projection [numLabels, D].
    public var score: String
    public var norm: NormKind
    public var usesRope: Bool
    public var activation: Activation
    /// Query scale (Dh^-0.5, or query_pre_attn_scalar^-0.5 for Gemma-2).
    public var queryScale: Float
    public var blocks: [BlockSpec]

    /// The layout for `config`'s architecture.
    public static func make(_ config: ModelConfig) -> ArchitectureSpec {
        switch config.architecture {
        case .llama: return Llama.spec(config)
        case .qwen2: return Qwen2.spec(config)
        case .gemma2: return Gemma2.spec(config)
        case .gpt2: return GPT2.spec(config)
        }
    }
}
