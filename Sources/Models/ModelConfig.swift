// ModelConfig: architecture hyper-parameters shared by every model family.
//
// Filled from a Hugging Face config.json (transformers 4.x or 5.x style) or from GGUF
// metadata (`llama.*`, `qwen2.*`, `gemma2.*`, `gpt2.*`). Field names follow transformers.
import Numerics

/// Supported architecture families.
public enum Architecture: String, Sendable, Codable, CaseIterable {
    case llama, qwen2, gemma2, gpt2
}

/// Which head sits on top of the decoder stack.
public enum HeadKind: String, Sendable, Codable {
    /// `lm_head` (or tied embeddings) producing vocabulary logits.
    case causalLM
    /// `score` layer with `numLabels` outputs; reward = logit at the last non-pad token.
    case sequenceClassification
}

/// Hyper-parameters of one checkpoint.
public struct ModelConfig: Sendable, Equatable, Codable {
    public var architecture: Architecture
    public var head: HeadKind = .causalLM
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numLayers: Int
    public var numHeads: Int
    public var numKVHeads: Int
    /// Per-head width; `hiddenSize / numHeads` unless the config says otherwise (Gemma-2).
    public var headDim: Int
    public var maxPositions: Int = 8192
    public var normEps: Double = 1e-5
    public var ropeTheta: Double = 10_000
    public var ropeScaling: RopeScaling = .none
    public var tieWordEmbeddings: Bool = false
    /// Qwen2: q/k/v projections carry biases.
    public var attentionBias: Bool = false
    /// Gemma-2 extras.
    public var queryPreAttnScalar: Double? = nil
    public var attnLogitSoftcap: Double? = nil
    public var finalLogitSoftcap: Double? = nil
    public var slidingWindow: Int? = nil
    /// Per layer: true where the layer uses sliding-window attention (`layer_types`).
    public var slidingLayers: [Bool]? = nil
    /// Activation of the MLP: "silu", "gelu_pytorch_tanh", "gelu_new", "gelu".
    public var hiddenAct: String = "silu"
    /// Sequence classification: number of labels and the pad token used to find the last token.
    public var numLabels: Int = 1
    public var padTokenId: Int? = nil
    public var bosTokenId: Int? = nil
    public var eosTokenIds: [Int] = []

    public init(architecture: Architecture, vocabSize: Int, hiddenSize: Int, intermediateSize: Int,
                numLayers: Int, numHeads: Int, numKVHeads: Int, headDim: Int? = nil) {
        self.architecture = architecture
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numLayers = numLayers
        self.numHeads = numHeads
        self.numKVHeads = numKVHeads
        self.headDim = headDim ?? hiddenSize / max(numHeads, 1)
    }
}
