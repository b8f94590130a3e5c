// ChatModel: a causal LM with its tokenizer and chat template, as the attack stages use it
// (chat-formatted prompts with the generation prompt, greedy generation, decoding).
import Foundation
import Models
import Tokenizers

/// A loaded causal LM plus tokenizer.
public final class ChatModel: @unchecked Sendable {
    // @unchecked: the model and tokenizer are only read after loading.
    public let model: TransformerModel
    public let tokenizer: Tokenizer
    /// Stop ids for generation: the config's (generation_config) plus the tokenizer's EOS.
    public let stopIds: [Int]

    /// Wraps a model and tokenizer.
    public init(model: TransformerModel, tokenizer: Tokenizer) {
        self.model = model
        self.tokenizer = tokenizer
        var stops = model.config.eosTokenIds
        if let e = tokenizer.eosTokenId, !stops.contains(e) { stops.append(e) }
        stopIds = stops
    }

    /// Loads a Hugging Face directory or `.gguf` file through the process-wide checkpoint cache.
    public static func load(path: String, cacheKey: String? = nil) throws -> ChatModel {
        let ckpt = try Checkpoint.cached(path: path, key: cacheKey)
        return ChatModel(model: try TransformerModel(checkpoint: ckpt), tokenizer: try tokenizer(of: ckpt))
    }

    /// The tokenizer described by a checkpoint's tokenizer files or GGUF metadata.
    public static func tokenizer(of ckpt: Checkpoint) throws -> Tokenizer {
        let files = ckpt.tokenizer
        if let json = files.tokenizerJSON {
            return try Tokenizer.load(tokenizerJSON: json, tokenizerConfigJSON: files.tokenizerConfigJSON)
        }
        let m = files.ggufMetadata
        if let tokens = m["tokenizer.ggml.tokens"]?.strings, let model = m["tokenizer.ggml.model"]?.string {
            return try Tokenizer.fromGGUF(model: model, pre: m["tokenizer.ggml.pre"]?.string, tokens: tokens,
                                          merges: m["tokenizer.ggml.merges"]?.strings ?? [],
                                          tokenTypes: m["tokenizer.ggml.token_type"]?.ints ?? [],
                                          scores: m["tokenizer.ggml.scores"]?.doubles?.map { Float($0) },
                                          bosId: m["tokenizer.ggml.bos_token_id"]?.int,
                                          eosId: m["tokenizer.ggml.eos_token_id"]?.int,
                                          addBos: m["tokenizer.ggml.add_bos_token"]?.bool,
                                          chatTemplate: files.chatTemplate,
                                          padId: m["tokenizer.ggml.padding_token_id"]?.int,
                                          unkId: m["tokenizer.ggml.unknown_token_id"]?.int,
                                          addSpacePrefix: m["tokenizer.ggml.add_space_prefix"]?.bool)
        }
        throw StudyError.invalidConfiguration("model \(ckpt.source.path) has no tokenizer (tokenizer.json or GGUF tokenizer metadata); the attack stages need one")
    }

    /// Ids of one user turn rendered with the chat template and its generation prompt, tokenised
    /// without adding special tokens again (transformers' `apply_chat_template(tokenize=True)`).
    public func chatPrompt(_ user: String) throws -> [Int] {
        guard tokenizer.chatTemplate != nil else {
            throw StudyError.invalidConfiguration("the model's tokenizer has no chat template; the attack stages format prompts with it")
        }
        let text = try tokenizer.applyChatTemplate(messages: [ChatMessage(role: "user", content: user)], addGenerationPrompt: true)
        return tokenizer.encode(text, addSpecialTokens: false)
    }

    /// Ids of plain text without special tokens (the attack target).
    public func plainIds(_ text: String) -> [Int] { tokenizer.encode(text, addSpecialTokens: false) }

    /// Greedy continuation ids (the stop id, if reached, is kept as the last id).
    public func greedy(_ prompt: [Int], maxNewTokens: Int, interventions: [Intervention] = []) throws -> [Int] {
        let out = try model.generate(prompts: [prompt], options: GenerationOptions(
            maxNewTokens: maxNewTokens, eosTokenIds: stopIds, interventions: interventions,
            padTokenId: model.config.padTokenId ?? tokenizer.padTokenId ?? 0))
        return out.tokens.first ?? []
    }

    /// Response text: generated ids without the final stop id, special tokens skipped.
    public func responseText(_ ids: [Int]) -> String {
        var ids = ids
        if let last = ids.last, stopIds.contains(last) { ids.removeLast() }
        return tokenizer.decode(ids, skipSpecialTokens: true)
    }
}
