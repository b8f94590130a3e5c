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
    /// RoPE frequencies (nil for GPT-2).
    let rope: RotaryEmbedding?
    /// Fused q/k/v and gate/up weights of the inference path.
    let fusedCache = FusedProjectionCache()
    /// bf16 copies of frozen weights for decoding steps (CompactWeights.swift).
    let compactCache = CompactWeightCache()
    /// Frozen weights packed for the PackedMatrix GEMM kernel (PackedWeights.swift).
    let packedCache = PackedWeightCache()

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
        rope = s.usesRope ? RotaryEmbedding(headDim: config.headDim, theta: config.ropeTheta, scaling: config.ropeScaling)
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
                   capture: options.hidden, logits: options.logits)
    }

    /// Embedding output (token rows, learned positions, Gemma scaling) [N, D].
    func embed(ids: [Int], positions: [Int]) -> Tensor {
        var x = ModelOps.embedding(tensor(spec.embed + ".weight"), ids: ids)
        if let pe = spec.positionEmbed {
            let maxP = config.maxPositions
            x = ModelOps.add(x, ModelOps.embedding(tensor(pe + ".weight"), ids: positions.map { min($0, maxP - 1) }))
        }
        if let s = spec.embedScale { x = ModelOps.scale(x, s) }
        return x
    }

    /// Final norm of the residual stream [N, D].
    func finalNorm(_ x: Tensor) -> Tensor {
        let eps = Float(config.normEps)
        switch spec.norm {
        case .rms(let addOne):
            return ModelOps.rmsNorm(x, weight: tensor(spec.finalNorm + ".weight"), eps: eps, addOne: addOne)
        case .layer:
            return ModelOps.layerNorm(x, weight: tensor(spec.finalNorm + ".weight"),
                                      bias: tensor(spec.finalNorm + ".bias"), eps: eps)
        }
    }

    /// Vocabulary logits of normed rows [R, D] -> [R, V] (with Gemma's final soft-cap).
    func lmHead(_ rows: Tensor) -> Tensor {
        let name = spec.lmHead + ".weight"
        let logits = decodingLinear(rows, weight: tensor(name), bias: nil, key: name, frozen: isFrozen(name))
        if let cap = config.finalLogitSoftcap { return ModelOps.softcap(logits, Float(cap)) }
        return logits
    }

    /// Index of each row's last non-pad token (transformers' sequence-classification rule:
    /// the rightmost id different from pad_token_id; the last position without a pad id).
    func lastTokenRows(ids: [Int], batch: Int, length: Int) -> [Int] {
        (0..<batch).map { b in
            var last = length - 1
            if let pad = config.padTokenId {
                last = 0
                for t in 0..<length where ids[b * length + t] != pad { last = t }
            }
            return b * length + last
        }
    }

    /// Adds the interventions registered at `blockIndex` (-1 = embedding) to x [B*T, D].
    func applyInterventions(_ x: inout Tensor, blockIndex: Int, interventions: [Intervention], batch: Int,
                            length: Int, offset: Int, promptLength: Int) {
        let d = config.hiddenSize, layers = config.numLayers
        for iv in interventions where iv.layer.blockIndex(layers: layers) == blockIndex {
            let perPosition = iv.delta.count != d
            let rowsAvailable = perPosition ? iv.delta.count / d : 0
            iv.delta.withUnsafeBufferPointer { pd in
                x.withUnsafeMutableBufferPointer { px in
                    for b in 0..<batch {
                        for t in 0..<length {
                            let p = offset + t
                            if iv.scope == .prompt && p >= promptLength { continue }
                            if perPosition && p >= rowsAvailable { continue }
                            let src = pd.baseAddress! + (perPosition ? p * d : 0)
                            let dst = px.baseAddress! + (b * length + t) * d
                            for i in 0..<d { dst[i] += src[i] }
                        }
                    }
                }
            }
        }
    }

    /// The inference pass shared by `forward` and generation. With a `cache`, keys/values are
    /// appended to it and positions continue after its current length.
    func run(ids: [Int], mask: [Float], positions: [Int], batch: Int, length: Int, cache: KVCache?,
             promptLength: Int, interventions: [Intervention], capture: HiddenCapture, logits: LogitsMode) -> ForwardResult {
        let layers = config.numLayers, d = config.hiddenSize
        var hidden = [Tensor?](repeating: nil, count: layers + 1)
        let needHead = logits != .none || config.head == .sequenceClassification
        let needFinal = needHead || capture.contains(layers)
        let lastBlock = needFinal ? layers - 1 : min(layers - 1, capture.maxIndex(layers: layers) - 1)
        let backend = InferenceBackend(model: self, batch: batch, queries: length, positions: positions, cache: cache)
        backend.cache.appendMask(mask, t: length)
        let offset = backend.offset
        var x = embed(ids: ids, positions: positions)
        applyInterventions(&x, blockIndex: -1, interventions: interventions, batch: batch, length: length,
                           offset: offset, promptLength: promptLength)
        if capture.contains(0) { hidden[0] = x.reshaped([batch, length, d]) }
        if lastBlock >= 0 {
            for i in 0...lastBlock {
                x = runBlock(backend, spec: spec.blocks[i], layer: i, x: x)
                applyInterventions(&x, blockIndex: i, interventions: interventions, batch: batch, length: length,
                                   offset: offset, promptLength: promptLength)
                if i + 1 < layers && capture.contains(i + 1) { hidden[i + 1] = x.reshaped([batch, length, d]) }
            }
        }
        if let cache { cache.length += length }
        var result = ForwardResult(logits: nil, hidden: hidden, scores: nil)
        guard needFinal else { return result }
        let normed = finalNorm(x)
        if capture.contains(layers) { result.hidden[layers] = normed.reshaped([batch, length, d]) }
        switch config.head {
        case .sequenceClassification:
            let rows = ModelOps.embedding(normed, ids: lastTokenRows(ids: ids, batch: batch, length: length))
            result.scores = ModelOps.linear(rows, tensor(spec.score + ".weight"))
        case .causalLM:
            switch logits {
            case .none: break
            case .all: result.logits = lmHead(normed).reshaped([batch, length, config.vocabSize])
            case .last:
                result.logits = lmHead(ModelOps.embedding(normed, ids: (0..<batch).map { $0 * length + length - 1 }))
            case .rows(let r): result.logits = lmHead(ModelOps.embedding(normed, ids: r))
            }
        }
        return result
    }
}
