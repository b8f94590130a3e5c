// ChatModel: a causal LM with its tokenizer and chat template, as the attack stages use it
// (chat-formatted prompts with the generation prompt, greedy generation, decoding).
import Foundation
import Models
import Pipeline
import Tokenizers

/// A loaded causal LM plus tokenizer.
public final class ChatModel: @unchecked Sendable {
    // @unchecked: the model and tokenizer are only read after loading.
    public let model: TransformerModel
    public let tokenizer: Tokenizer
    /// Stop ids for generation (`StageModel.stopTokenIds`).
    public let stopIds: [Int]
    /// Id used to pad generation batches.
    public let padId: Int

    /// Wraps a stage model; throws when it has no tokenizer.
    public init(_ m: StageModel) throws {
        model = m.model
        tokenizer = try m.requireTokenizer()
        stopIds = m.stopTokenIds
        padId = m.padTokenId
    }

    /// The stage's model (param `model` or input `model`, through the checkpoint cache).
    public static func load(_ context: StageContext) throws -> ChatModel {
        try ChatModel(StageSupport.loadModel(context))
    }

    /// A model directory or `.gguf` file (tests, benches).
    public static func load(path: URL) throws -> ChatModel {
        try ChatModel(StageSupport.loadModel(path: path))
    }

    /// Ids of one user turn rendered with the chat template and its generation prompt.
    public func chatPrompt(_ user: String) throws -> [Int] {
        try StageSupport.encodePrompt(tokenizer, prompt: user)
    }

    /// Ids of plain text without special tokens (the attack target).
    public func plainIds(_ text: String) -> [Int] { tokenizer.encode(text, addSpecialTokens: false) }

    /// Greedy continuation ids (the stop id, if reached, is kept as the last id).
    public func greedy(_ prompt: [Int], maxNewTokens: Int, interventions: [Intervention] = []) throws -> [Int] {
        let out = try model.generate(prompts: [prompt], options: GenerationOptions(
            maxNewTokens: maxNewTokens, eosTokenIds: stopIds, interventions: interventions, padTokenId: padId))
        return out.tokens.first ?? []
    }

    /// Response text: generated ids without the final stop id, special tokens skipped.
    public func responseText(_ ids: [Int]) -> String {
        var ids = ids
        if let last = ids.last, stopIds.contains(last) { ids.removeLast() }
        return tokenizer.decode(ids, skipSpecialTokens: true)
    }
}
