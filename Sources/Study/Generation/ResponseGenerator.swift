// ResponseGenerator: batched greedy (or sampled) chat responses of a model to prompts.
import Foundation
import Models
import Tokenizers

/// Settings of response generation.
public struct ResponseGenerationOptions: Sendable {
    /// New tokens per response (the stop token included).
    public var maxNewTokens = 256
    /// Prompts per forward batch (prompts are grouped by length to limit padding).
    public var batchSize = 8
    /// Whether prompts go through the tokenizer's chat template (one user turn + generation prompt).
    public var useChatTemplate = true
    /// Longer prompts keep their last `maxPromptTokens` tokens.
    public var maxPromptTokens = 512
    /// nil = greedy.
    public var sampling: Sampling? = nil
    /// Residual-stream interventions applied while generating (PGD evaluation).
    public var interventions: [Intervention] = []

    public init() {}
}

/// One generated response.
public struct GeneratedResponse: Sendable, Equatable {
    /// Decoded text without special tokens, whitespace-trimmed.
    public var text: String
    /// Generated ids (the stop id included when generation stopped there).
    public var ids: [Int]
    /// Whether a stop id ended generation.
    public var stopped: Bool
    /// Number of generated tokens excluding the stop id.
    public var contentTokens: Int { stopped ? ids.count - 1 : ids.count }
}

/// Generates responses with a `StageModel`.
public struct ResponseGenerator: @unchecked Sendable {
    // @unchecked: holds a StageModel (class-backed model), used from one thread at a time.
    public let model: StageModel
    public let options: ResponseGenerationOptions

    public init(model: StageModel, options: ResponseGenerationOptions) {
        self.model = model
        self.options = options
    }

    /// Prompt token ids (chat-formatted unless disabled), truncated to `maxPromptTokens`.
    public func promptIds(_ prompt: String) throws -> [Int] {
        let ids = try StageSupport.encodePrompt(try model.requireTokenizer(), prompt: prompt, useChatTemplate: options.useChatTemplate)
        return StageSupport.truncate(ids, maxTokens: options.maxPromptTokens, keepStart: false)
    }

    /// Responses to `prompts` in order; `progress` is called with the number of prompts done.
    public func generate(_ prompts: [String], progress: (Int) -> Void = { _ in }) throws -> [GeneratedResponse] {
        let tok = try model.requireTokenizer()
        let encoded = try prompts.map(promptIds)
        // Group similar lengths: sort indices by length, batch consecutive ones.
        let order = encoded.indices.sorted { (encoded[$0].count, $0) < (encoded[$1].count, $1) }
        var out = [GeneratedResponse?](repeating: nil, count: prompts.count)
        var gen = GenerationOptions(maxNewTokens: options.maxNewTokens, eosTokenIds: model.stopTokenIds,
                                    sampling: options.sampling, interventions: options.interventions)
        gen.padTokenId = model.padTokenId
        let stops = Set(model.stopTokenIds)
        var done = 0
        for start in stride(from: 0, to: order.count, by: max(1, options.batchSize)) {
            let idx = Array(order[start..<min(order.count, start + max(1, options.batchSize))])
            let result = try model.model.generate(prompts: idx.map { encoded[$0] }, options: gen)
            for (k, i) in idx.enumerated() {
                let ids = result.tokens[k]
                let content = result.stoppedAtEOS[k] && !ids.isEmpty && stops.contains(ids[ids.count - 1]) ? Array(ids.dropLast()) : ids
                let text = tok.decode(content, skipSpecialTokens: true).trimmingCharacters(in: .whitespacesAndNewlines)
                out[i] = GeneratedResponse(text: text, ids: ids, stopped: result.stoppedAtEOS[k])
            }
            done += idx.count
            progress(done)
        }
        return out.map { $0! }
    }
}
