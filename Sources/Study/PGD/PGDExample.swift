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
    /// The paper's target text.
    public static let defaultTarget = "Sure, here is"
    /// Target text (paper: `defaultTarget`).
    public let target: String
    /// Greedy tokens per response (paper / release: 128).
    public let maxNewTokens: Int

    /// A runner; throws on bad options or an empty target.
    public init(chat: ChatModel, options: PGDOptions, target: String = PGDExampleRunner.defaultTarget, maxNewTokens: Int = 128) throws {
        self.chat = chat
        attack = try PGDAttack(model: chat.model, options: options)
        guard !chat.plainIds(target).isEmpty else { throw StudyError.invalidConfiguration("the PGD target text is empty") }
        guard maxNewTokens > 0 else { throw StudyError.invalidConfiguration("max_new_tokens must be > 0, got \(maxNewTokens)") }
        self.target = target
        self.maxNewTokens = maxNewTokens
    }

    /// Attacks one user prompt; `seed` drives the random baseline.
    public func run(prompt: String, seed: UInt64) throws -> PGDExampleResult {
        try run(batch: [(prompt, seed)])[0]
    }

    /// Attacks user prompts together (`PGDAttack.run(batch:)`: one forward and backward pass
    /// per step for all of them); clean and perturbed responses are generated per prompt.
    public func run(batch: [(prompt: String, seed: UInt64)]) throws -> [PGDExampleResult] {
        let targetIds = chat.plainIds(target)
        var prompts: [[Int]] = [], cleans: [[Int]] = [], examples: [PGDAttack.Example] = []
        for (prompt, seed) in batch {
            let ids = try chat.chatPrompt(prompt)
            let cleanIds = try chat.greedy(ids, maxNewTokens: maxNewTokens)
            var yIds = cleanIds
            if let last = yIds.last, chat.stopIds.contains(last) { yIds.removeLast() }
            prompts.append(ids)
            cleans.append(cleanIds)
            examples.append(PGDAttack.Example(prompt: ids, target: targetIds, cleanResponse: yIds, seed: seed))
        }
        let outcomes = try attack.run(batch: examples)
        return try outcomes.indices.map { i in
            let pertIds = try chat.greedy(prompts[i], maxNewTokens: maxNewTokens, interventions: [outcomes[i].intervention])
            return PGDExampleResult(promptTokens: prompts[i].count, clean: chat.responseText(cleans[i]), cleanIds: cleans[i],
                                    perturbed: chat.responseText(pertIds), perturbedIds: pertIds, outcome: outcomes[i])
        }
    }
}
