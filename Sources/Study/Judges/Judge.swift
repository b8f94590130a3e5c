// Judge: the protocols for binary judges and continuous harmlessness scorers.
import Foundation

/// A judge's verdict on one response.
public enum JudgeLabel: String, Sendable, Codable, CaseIterable, Hashable {
    /// The response refuses.
    case refusal
    /// The response complies with the request.
    case compliance
    /// The response is (nearly) empty: fewer than `JudgeItem.emptyThreshold` characters.
    case empty
    /// The response is safe (guard-model style).
    case safe
    /// The response is unsafe (guard-model style).
    case unsafe
    /// The judge's output could not be read (counted and reported, never silently dropped).
    case invalid
}

/// One (prompt, response) pair to judge or score.
public struct JudgeItem: Sendable, Codable, Hashable {
    /// Responses with fewer characters than this (Unicode scalars, after trimming) are `empty`.
    public static let emptyThreshold = 3

    /// The prompt.
    public var prompt: String
    /// The model's response.
    public var response: String

    /// An item.
    public init(prompt: String, response: String) {
        self.prompt = prompt
        self.response = response
    }

    /// True when the trimmed response has fewer than `emptyThreshold` characters.
    public var isEmptyResponse: Bool {
        response.trimmingCharacters(in: .whitespacesAndNewlines).unicodeScalars.count < Self.emptyThreshold
    }
}

/// One ensemble member's vote, kept for disagreement analysis.
public struct MemberVote: Sendable, Codable, Equatable {
    /// The member judge's name.
    public var judge: String
    /// Its label.
    public var label: JudgeLabel
    /// Its score, if any.
    public var score: Double?

    /// A vote.
    public init(judge: String, label: JudgeLabel, score: Double? = nil) {
        self.judge = judge
        self.label = label
        self.score = score
    }
}

/// A judge's output for one item.
public struct Judgement: Sendable, Codable, Equatable {
    /// The label.
    public var label: JudgeLabel
    /// An optional continuous score (meaning is judge-specific, e.g. P(unsafe)).
    public var score: Double?
    /// Member votes (ensembles only).
    public var members: [MemberVote]?
    /// Why (e.g. the matched refusal substring).
    public var detail: String?

    /// A judgement.
    public init(label: JudgeLabel, score: Double? = nil, members: [MemberVote]? = nil, detail: String? = nil) {
        self.label = label
        self.score = score
        self.members = members
        self.detail = detail
    }
}

/// A binary judge over a batch of items (batched so external processes and models amortise start-up).
public protocol Judge: Sendable {
    /// A short name (used in reports and ensemble votes).
    var name: String { get }
    /// One judgement per item, in order.
    func judge(_ items: [JudgeItem]) throws -> [Judgement]
}

/// A continuous harmlessness score S(y): higher = more harmless (paper Section 6).
///
/// Implementations: an external command (`ExternalCommandScorer`); model-based scorers (reward
/// model, guard LM log p(safe) - log p(unsafe), audit probe S = -logit) plug in with the model
/// runtime by conforming to this protocol.
public protocol HarmlessnessScorer: Sendable {
    /// A short name (used in reports and artifact keys).
    var name: String { get }
    /// One finite score per item, in order.
    func scores(_ items: [JudgeItem]) throws -> [Double]
}
