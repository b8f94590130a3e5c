// PGDExample: one prompt through the whole latent attack: clean greedy response, attack,
// perturbed greedy response with the intervention active.
import Foundation
import Models

/// The generation-level outcome of attacking one prompt.
public struct PGDExampleResult: Sendable {
    /// Chat-formatted prompt length P.
    public var promptTokens: Int
    /// Clean response y and its ids (stop id included when reached).
    public var clean: String
    public var cleanIds: [Int]
    /// Perturbed response y' and its ids.
    public var perturbed: String
    public var perturbedIds: [Int]
    /// The attack's numbers.
    public var outcome: PGDOutcome
}

/// Runs `PGDAttack` on prompts of a `ChatModel`.
public struct PGDExampleRunner: Sendable {
    public let chat: ChatModel
    public let attack: PGDAttack
    /// Target text (paper: "Sure, here is").
    public let target: String
    /// Greedy tokens per response (paper / release: 128).
    public let maxNewTokens: Int

    /// A runner; throws on bad options or an empty target.
    public init(chat: ChatModel, options: PGDOptions, target: String = "Sure, here is", maxNewTokens: Int = 128) throws {
        self.chat = chat
        attack = try PGDAttack(model: chat.model, options: options)
        guard !chat.plainIds(target).isEmpty else { throw StudyError.invalidConfiguration("the PGD target text is empty") }
        guard maxNewTokens > 0 else { throw StudyError.invalidConfiguration("max_new_tokens must be > 0, got \(maxNewTokens)") }
        self.target = target
        self.maxNewTokens = maxNewTokens
    }

    /// Attacks one user prompt; `seed` drives the random baseline.
    public func run(prompt: String, seed: UInt64) throws -> PGDExampleResult {
        let ids = try chat.chatPrompt(prompt)
        let cleanIds = try chat.greedy(ids, maxNewTokens: maxNewTokens)
        var yIds = cleanIds
        if let last = yIds.last, chat.stopIds.contains(last) { yIds.removeLast() }
        let outcome = try attack.run(prompt: ids, target: chat.plainIds(target), cleanResponse: yIds, seed: seed)
        let pertIds = try chat.greedy(ids, maxNewTokens: maxNewTokens, interventions: [outcome.intervention])
        return PGDExampleResult(promptTokens: ids.count, clean: chat.responseText(cleanIds), cleanIds: cleanIds,
                                perturbed: chat.responseText(pertIds), perturbedIds: pertIds, outcome: outcome)
    }
}
