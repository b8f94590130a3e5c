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

/// Tokenises prompts and (prompt, response) pairs the way transformers' chat-SFT recipes do:
/// `apply_chat_template([user], add_generation_prompt=True)` for the prompt and the full
/// two-turn rendering for prompt + response, without extra special tokens; the loss covers the
/// tokens after the prompt (the response and the template's end-of-turn marker).
/// Without a chat template: the prompt followed by a newline, the response and the EOS token.
public struct ChatExampleEncoder: Sendable {
    public let tokenizer: Tokenizer
    /// Sequences are cut to this many tokens (right truncation).
    public let maxTokens: Int
    /// Optional system message placed before the user turn.
    public let systemPrompt: String?

    /// An encoder.
    public init(tokenizer: Tokenizer, maxTokens: Int = 512, systemPrompt: String? = nil) {
        self.tokenizer = tokenizer
        self.maxTokens = maxTokens
        self.systemPrompt = systemPrompt
    }

    private func messages(_ prompt: String, _ response: String?) -> [ChatMessage] {
        var m: [ChatMessage] = []
        if let systemPrompt { m.append(ChatMessage(role: "system", content: systemPrompt)) }
        m.append(ChatMessage(role: "user", content: prompt))
        if let response { m.append(ChatMessage(role: "assistant", content: response)) }
        return m
    }

    /// The chat-formatted prompt text ending with the generation prompt.
    public func promptText(_ prompt: String) throws -> String {
        guard tokenizer.chatTemplate != nil else { return prompt + "\n" }
        return try tokenizer.applyChatTemplate(messages: messages(prompt, nil), addGenerationPrompt: true)
    }

    /// Token ids of the chat-formatted prompt (for generation), truncated to `maxTokens` from the left.
    public func promptIds(_ prompt: String) throws -> [Int] {
        let ids = tokenizer.encode(try promptText(prompt), addSpecialTokens: false)
        return ids.count > maxTokens ? Array(ids.suffix(maxTokens)) : ids
    }

    /// Prompt + response ids and where the response starts, truncated to `maxTokens`.
    public func encode(prompt: String, response: String) throws -> ChatExample {
        let pText = try promptText(prompt)
        let pIds = tokenizer.encode(pText, addSpecialTokens: false)
        var full: [Int]
        if tokenizer.chatTemplate != nil {
            let fText = try tokenizer.applyChatTemplate(messages: messages(prompt, response), addGenerationPrompt: false)
            let fIds = tokenizer.encode(fText, addSpecialTokens: false)
            if fIds.count >= pIds.count && Array(fIds.prefix(pIds.count)) == pIds {
                full = fIds
            } else if fText.hasPrefix(pText) {
                // Token merges across the boundary: tokenise the two parts separately.
                full = pIds + tokenizer.encode(String(fText.dropFirst(pText.count)), addSpecialTokens: false)
            } else {
                // Templates that render the last assistant turn differently: append the response.
                full = pIds + tokenizer.encode(response, addSpecialTokens: false) + (tokenizer.eosTokenId.map { [$0] } ?? [])
            }
        } else {
            full = pIds + tokenizer.encode(response, addSpecialTokens: false) + (tokenizer.eosTokenId.map { [$0] } ?? [])
        }
        let truncated = full.count > maxTokens
        if truncated { full = Array(full.prefix(maxTokens)) }
        return ChatExample(ids: full, responseStart: min(pIds.count, full.count), truncated: truncated)
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
