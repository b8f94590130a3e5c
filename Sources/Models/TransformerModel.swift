// TransformerModel: a decoder-only checkpoint (Llama, Qwen2, Gemma-2, GPT-2) with causal-LM
// or sequence-classification head; batched forward with padding masks, hidden-state
// capture in transformers' output_hidden_states convention and additive interventions.
//
// Dimension legend: B batch, T positions of a call, N = B*T rows, D hidden, V vocabulary,
// L decoder blocks, P learned positions (GPT-2).
// Weights are keyed by checkpoint path (`model.layers.3.self_attn.q_proj.weight`); GPT-2's
// Conv1D weights are stored transposed and c_attn split (see GPT2.swift).
import Foundation
import Numerics

/// A decoder-only transformer ready to run.
public final class TransformerModel: @unchecked Sendable {
    // @unchecked: weights and adapters are mutated only by training code that owns the model;
    // concurrent forward passes only read them.
    /// Hyper-parameters.
    public let config: ModelConfig
    /// Parameter paths and layout choices of the family.
    public let spec: ArchitectureSpec
    /// Parameters by checkpoint path (internal layout), frozen (requiresGrad false) unless
    /// made trainable; optimisers step these Variables and inference reads their values.
    public internal(set) var parameters: [String: Variable]
    /// LoRA adapters by wrapped module path (`model.layers.0.self_attn.q_proj`).
    public internal(set) var adapters: [String: LoRAAdapter] = [:]
    /// Hyper-parameters of the installed adapters (nil without LoRA).
    public internal(set) var loraConfig: LoRAConfig?
    /// Current weight values by checkpoint path (internal layout).
    public var weights: [String: Tensor] { parameters.mapValues(\.value) }
    /// RoPE tables of the inference and the differentiable forward (nil for GPT-2).
    let rope: RopeTableCache?
    /// Fused, packed and compact copies of frozen weights (DerivedWeights.swift).
    let derived = DerivedWeights()

    /// Builds a model from a config and weights keyed by Hugging Face names; checks that every
    /// weight the architecture needs is present with the right shape.
    public init(config: ModelConfig, weights hf: [String: Tensor]) throws {
        self.config = config
        var w = config.architecture == .gpt2 ? GPT2.internalWeights(hf, config: config) : hf
        var s = ArchitectureSpec.make(config)
        if s.lmHead == "lm_head" && w["lm_head.weight"] == nil && w[s.embed + ".weight"] != nil {
            s.lmHead = s.embed  // checkpoints that tie without saying so
        }
        // Drop RoPE buffers some exporters keep.
        for key in w.keys where key.hasSuffix("rotary_emb.inv_freq") { w[key] = nil }
        spec = s
        var params: [String: Variable] = [:]
        for (name, t) in w {
            let v = Variable(t)
            v.name = name
            params[name] = v
        }
        parameters = params
        rope = s.usesRope ? RopeTableCache(headDim: config.headDim, theta: config.ropeTheta, scaling: config.ropeScaling)
                          : nil
        try validate()
    }

    /// Builds a model from a loaded checkpoint (HF directory or GGUF).
    public convenience init(checkpoint: Checkpoint) throws {
        try self.init(config: checkpoint.config, weights: checkpoint.weights)
    }

    /// Loads a Hugging Face model directory or a `.gguf` file.
    public static func load(path: String) throws -> TransformerModel {
        try TransformerModel(checkpoint: Checkpoint.load(path: path))
    }

    /// Checks presence and shapes of the weights the forward pass reads.
    func validate() throws {
        let c = config, d = c.hiddenSize
        func need(_ name: String, _ shape: [Int]) throws {
            guard let t = parameters[name]?.value else { throw ModelError.missingWeight(name: name, source: "\(c.architecture) model") }
            guard t.shape == shape else {
                throw ModelError.badWeightShape(name: name, source: "\(c.architecture) model", shape: t.shape, expected: shape)
            }
        }
        func norm(_ m: String) throws {
            try need(m + ".weight", [d])
            if spec.norm == .layer { try need(m + ".bias", [d]) }
        }
        try need(spec.embed + ".weight", [c.vocabSize, d])
        if let pe = spec.positionEmbed { try need(pe + ".weight", [c.maxPositions, d]) }
        if spec.usesRope && (c.headDim <= 0 || c.headDim % 2 != 0) {
            throw ModelError.invalidInput("\(c.architecture) model: head_dim \(c.headDim) must be a positive even number for RoPE")
        }
        let qw = c.numHeads * c.headDim, kw = c.numKVHeads * c.headDim
        for b in spec.blocks {
            try norm(b.attnNorm)
            try norm(b.mlpNorm)
            if let p = b.attnPostNorm { try norm(p) }
            if let p = b.mlpPostNorm { try norm(p) }
            try need(b.q + ".weight", [qw, d])
            try need(b.k + ".weight", [kw, d])
            try need(b.v + ".weight", [kw, d])
            try need(b.o + ".weight", [d, qw])
            if let g = b.gate { try need(g + ".weight", [c.intermediateSize, d]) }
            try need(b.up + ".weight", [c.intermediateSize, d])
            try need(b.down + ".weight", [d, c.intermediateSize])
        }
        try norm(spec.finalNorm)
        switch c.head {
        case .causalLM: try need(spec.lmHead + ".weight", [c.vocabSize, d])
        case .sequenceClassification: try need(spec.score + ".weight", [c.numLabels, d])
        }
    }

    /// The weight at `name` (validated at init; a missing name is a programming error).
    @inline(__always)
    func tensor(_ name: String) -> Tensor {
        guard let v = parameters[name] else { preconditionFailure("TransformerModel: no weight \(name)") }
        return v.value
    }

    /// The weight at `name` if the checkpoint has it (biases).
    @inline(__always)
    func optionalTensor(_ name: String) -> Tensor? { parameters[name]?.value }

    /// The parameter Variable at `name` (validated at init).
    @inline(__always)
    func parameter(_ name: String) -> Variable {
        guard let v = parameters[name] else { preconditionFailure("TransformerModel: no weight \(name)") }
        return v
    }

    /// Checks ids against the vocabulary.
    func checkIds(_ ids: [Int]) throws {
        if let bad = ids.first(where: { $0 < 0 || $0 >= config.vocabSize }) {
            throw ModelError.invalidInput("token id \(bad) outside the vocabulary (size \(config.vocabSize))")
        }
    }

    /// Batched forward pass. Logits, hidden states and (for classification heads) scores as
    /// `options` asks; stops after the last block a caller needs when logits are skipped.
    public func forward(_ batch: TokenBatch, options: ForwardOptions = ForwardOptions()) throws -> ForwardResult {
        try checkIds(batch.ids)
        if config.architecture == .gpt2, batch.length > config.maxPositions {
            throw ModelError.invalidInput("sequence of \(batch.length) tokens exceeds GPT-2's \(config.maxPositions) positions")
        }
        return run(ids: batch.ids, mask: batch.mask, positions: batch.positions(options.positions), batch: batch.batch,
                   length: batch.length, cache: nil, promptLength: batch.length, interventions: options.interventions,
                   capture: options.hidden, logits: options.logits).result
    }
}
