// Records: the typed rows produced by the dataset schemas.
import Foundation

/// The role of a prompt in the evaluation suite (paper Appendix A.1, A.4).
public enum PromptType: String, Sendable, Codable, CaseIterable, Hashable {
    /// A harmful request asked directly.
    case harmfulDirect = "harmful-direct"
    /// A harmful request wrapped in a jailbreak.
    case jailbreak
    /// A benign prompt that looks harmful (XSTest-style over-refusal probe).
    case overRefusal = "over-refusal"
    /// An ordinary benign prompt.
    case benign

    /// True for prompts a safe model should refuse.
    public var isHarmful: Bool { self == .harmfulDirect || self == .jailbreak }
}

/// A binary safety label of a prompt or response.
public enum SafetyLabel: String, Sendable, Codable, CaseIterable, Hashable {
    case safe, unsafe
}

/// One prompt (optionally with a response and labels) read from a dataset.
public struct PromptRecord: Sendable, Codable, Hashable {
    /// The prompt text, trimmed.
    public var prompt: String
    /// The paired response, when the dataset has one.
    public var response: String?
    /// The safety label of the record, when the dataset has one.
    public var label: SafetyLabel?
    /// Harm category (several joined with `,`).
    public var category: String?
    /// The prompt's role, when the schema can tell it.
    public var type: PromptType?
    /// Further schema fields kept verbatim (e.g. AdvBench `target`, HarmBench `FunctionalCategory`).
    public var extras: [String: String]
    /// File and line of the record.
    public var location: SourceLocation

    /// A record with every field given.
    public init(prompt: String, response: String? = nil, label: SafetyLabel? = nil, category: String? = nil,
                type: PromptType? = nil, extras: [String: String] = [:], location: SourceLocation) {
        self.prompt = prompt
        self.response = response
        self.label = label
        self.category = category
        self.type = type
        self.extras = extras
        self.location = location
    }
}

/// A PKU-SafeRLHF example: a prompt, two responses and an independent safety label for each.
public struct PreferencePair: Sendable, Codable, Hashable {
    /// The prompt.
    public var prompt: String
    /// `response_0`.
    public var response0: String
    /// `response_1`.
    public var response1: String
    /// `is_response_0_safe`.
    public var isResponse0Safe: Bool
    /// `is_response_1_safe`.
    public var isResponse1Safe: Bool
    /// File and line of the record.
    public var location: SourceLocation

    /// A pair with every field given.
    public init(prompt: String, response0: String, response1: String, isResponse0Safe: Bool,
                isResponse1Safe: Bool, location: SourceLocation) {
        self.prompt = prompt
        self.response0 = response0
        self.response1 = response1
        self.isResponse0Safe = isResponse0Safe
        self.isResponse1Safe = isResponse1Safe
        self.location = location
    }
}
