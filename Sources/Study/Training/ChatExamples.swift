// ChatExamples: (prompt, response) pairs tokenised with the model's chat template, with a
// response-only loss mask, truncation to a maximum length and right-padded training batches.
//
// Dimension legend: B batch rows, T padded length, N = B*T flattened positions, R rows whose
// next token is a response token (the loss rows).
import Foundation
import Models
import Tokenizers

/// One tokenised conversation: chat-formatted prompt followed by the response.
public struct ChatExample: Sendable, Equatable {
    /// Token ids (prompt then response), at most `maxTokens`.
    public var ids: [Int]
    /// Index of the first response token in `ids` (== ids.count when truncation removed it all).
    public var responseStart: Int
    /// Whether the example was cut to the maximum length.
    public var truncated: Bool

    /// An example.
    public init(ids: [Int], responseStart: Int, truncated: Bool = false) {
        self.ids = ids
        self.responseStart = responseStart
        self.truncated = truncated
    }

    /// Number of response tokens (the supervised positions).
    public var responseTokens: Int { max(0, ids.count - responseStart) }
}

/// Tokenises prompts and (prompt, response) pairs as the other study stages do
/// (`StageSupport.encodePrompt` / `encodeChat`: the chat template's user turn with the generation
/// prompt, and the full two-turn rendering, as transformers' `apply_chat_template`); the loss
/// covers the tokens after the prompt (the response and the template's end-of-turn marker).
public struct ChatExampleEncoder: Sendable {
    public let tokenizer: Tokenizer
    /// Sequences are cut to this many tokens (right truncation, as transformers' default).
    public let maxTokens: Int
    /// Chat-format with the tokenizer's template (else plain text, as `StageSupport` does).
    public let useChatTemplate: Bool

    /// An encoder.
    public init(tokenizer: Tokenizer, maxTokens: Int = 512, useChatTemplate: Bool = true) {
        self.tokenizer = tokenizer
        self.maxTokens = maxTokens
        self.useChatTemplate = useChatTemplate
    }

    /// Token ids of the chat-formatted prompt (for generation), truncated to `maxTokens` from the left.
    public func promptIds(_ prompt: String) throws -> [Int] {
        let ids = try StageSupport.encodePrompt(tokenizer, prompt: prompt, useChatTemplate: useChatTemplate)
        return StageSupport.truncate(ids, maxTokens: maxTokens, keepStart: false)
    }

    /// Prompt + response ids and where the response starts, truncated to `maxTokens`.
    /// The response starts after the longest common prefix of the prompt and full encodings
    /// (they agree up to the generation prompt unless a merge crosses the boundary).
    public func encode(prompt: String, response: String) throws -> ChatExample {
        let pIds = try StageSupport.encodePrompt(tokenizer, prompt: prompt, useChatTemplate: useChatTemplate)
        var full = try StageSupport.encodeChat(tokenizer, prompt: prompt, response: response, useChatTemplate: useChatTemplate)
        var start = 0
        while start < min(pIds.count, full.count) && pIds[start] == full[start] { start += 1 }
        let truncated = full.count > maxTokens
        if truncated { full = StageSupport.truncate(full, maxTokens: maxTokens, keepStart: true) }
        return ChatExample(ids: full, responseStart: min(start, full.count), truncated: truncated)
    }

    /// The padding id for batches: pad, else EOS, else 0.
    public var padId: Int { tokenizer.padTokenId ?? tokenizer.eosTokenId ?? 0 }
}

/// A right-padded batch of examples with its causal-LM loss rows.
public struct ChatBatch {
    /// Ids and attention mask [B, T].
    public var tokens: TokenBatch
    /// Flattened positions b*T + t whose next token is a response token (the loss rows) [R].
    public var lossRows: [Int]
    /// The next token at each loss row [R].
    public var lossTargets: [Int]
    /// Row index (0..<B) of each loss row [R].
    public var lossRowExample: [Int]

    /// Pads `examples` on the right with `padId`.
    public init(_ examples: [ChatExample], padId: Int) {
        let t = max(1, examples.map(\.ids.count).max() ?? 1)
        var ids: [[Int]] = [], mask: [[Int]] = []
        var rows: [Int] = [], targets: [Int] = [], owner: [Int] = []
        for (b, e) in examples.enumerated() {
            ids.append(e.ids + [Int](repeating: padId, count: t - e.ids.count))
            mask.append([Int](repeating: 1, count: e.ids.count) + [Int](repeating: 0, count: t - e.ids.count))
            // Position p predicts token p+1; supervised when p+1 is a response token.
            if e.responseStart < e.ids.count {
                for p in max(0, e.responseStart - 1)..<(e.ids.count - 1) {
                    rows.append(b * t + p)
                    targets.append(e.ids[p + 1])
                    owner.append(b)
                }
            }
        }
        tokens = TokenBatch(ids: ids, mask: mask)
        lossRows = rows
        lossTargets = targets
        lossRowExample = owner
    }

    /// Number of examples.
    public var count: Int { tokens.batch }
}
