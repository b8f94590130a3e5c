// FeatureExtractor: attention-masked mean-pooled hidden states of every layer above the
// embedding for chat-formatted (prompt, response) sequences (paper Section 3, Appendix B).
//
// Dimension legend: N sequences, B batch, T positions, L layers (hidden_states[1:], the last
// one after the final norm, as transformers' output_hidden_states), D hidden width.
import Foundation
import Models
import Numerics

/// Settings of feature extraction.
public struct FeatureOptions: Sendable, Equatable {
    /// Sequences are truncated to this many tokens (the first ones kept, as transformers' default truncation).
    public var maxTokens = 512
    /// Sequences per forward batch.
    public var batchSize = 8
    /// Chat-format z(p, y) with the tokenizer's template (else prompt + blank line + response).
    public var useChatTemplate = true

    public init() {}
}

/// Computes pooled features h(p, y) in R^{L x D} with a model.
public struct FeatureExtractor: @unchecked Sendable {
    // @unchecked: holds a StageModel (class-backed), used from one thread at a time.
    public let model: StageModel
    public let options: FeatureOptions

    public init(model: StageModel, options: FeatureOptions = FeatureOptions()) {
        self.model = model
        self.options = options
    }

    /// Layers L and width D of the features.
    public var shape: (layers: Int, hidden: Int) { (model.checkpoint.config.numLayers, model.checkpoint.config.hiddenSize) }

    /// Token ids of z(p, y), truncated.
    public func ids(prompt: String, response: String) throws -> [Int] {
        let ids = try StageSupport.encodeChat(try model.requireTokenizer(), prompt: prompt, response: response,
                                              useChatTemplate: options.useChatTemplate)
        return StageSupport.truncate(ids, maxTokens: options.maxTokens, keepStart: true)
    }

    /// Pooled features [N, L, D] of (prompt, response) items; `progress` gets the count done.
    public func features(_ items: [JudgeItem], progress: (Int) -> Void = { _ in }) throws -> Tensor {
        let encoded = try items.map { try ids(prompt: $0.prompt, response: $0.response) }
        return try features(ids: encoded, progress: progress)
    }

    /// Pooled features [N, L, D] of token sequences.
    public func features(ids encoded: [[Int]], progress: (Int) -> Void = { _ in }) throws -> Tensor {
        let (layers, d) = shape
        var out = Tensor(zeros: [encoded.count, layers, d])
        let order = encoded.indices.sorted { (encoded[$0].count, $0) < (encoded[$1].count, $1) }
        let pad = model.padTokenId
        let capture = HiddenCapture.indices(Set(1...layers))
        var done = 0
        let step = max(1, options.batchSize)
        for start in stride(from: 0, to: order.count, by: step) {
            let idx = Array(order[start..<min(order.count, start + step)])
            guard idx.allSatisfy({ !encoded[$0].isEmpty }) else {
                throw StudyError.invalidConfiguration("feature extraction: an item encodes to no tokens")
            }
            let batch = TokenBatch.leftPadded(idx.map { encoded[$0] }, padId: pad)
            let r = try model.model.forward(batch, options: ForwardOptions(hidden: capture, logits: .none))
            // [B, L*D] layer-major: row b is item idx[b]'s [L, D] block.
            let pooled = ProbeFeatures.pooled(hidden: r.hidden, batch: batch)
            out.withUnsafeMutableBufferPointer { po in
                pooled.withUnsafeBufferPointer { pp in
                    for (b, n) in idx.enumerated() {
                        (po.baseAddress! + n * layers * d).update(from: pp.baseAddress! + b * layers * d, count: layers * d)
                    }
                }
            }
            done += idx.count
            progress(done)
        }
        return out
    }
}
