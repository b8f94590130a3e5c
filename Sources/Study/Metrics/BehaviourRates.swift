// BehaviourRates: refusal / compliance / empty / over-refusal rates per source with Wilson CIs.
import Foundation

/// One judged response of the evaluation suite.
public struct JudgedResponse: Sendable, Codable, Equatable {
    /// The prompt's source.
    public var source: String
    /// The prompt's role.
    public var type: PromptType
    /// The judge's label.
    public var label: JudgeLabel

    /// A judged response.
    public init(source: String, type: PromptType, label: JudgeLabel) {
        self.source = source
        self.type = type
        self.label = label
    }
}

/// Rates of one group of responses (a source, or all harmful / all benign prompts).
///
/// Denominators: every response in the group, including `empty` and `invalid`, so the rates
/// of refusal, compliance, empty and invalid add up to 1. `overRefusal` is the refusal rate
/// restricted to over-refusal and benign prompts (nil-valued when the group has none).
public struct BehaviourRates: Sendable, Codable, Equatable {
    /// Group name (source name, `all-harmful`, `all-benign`).
    public var group: String
    /// Responses in the group.
    public var count: Int
    /// Refusals among all responses.
    public var refusal: Proportion
    /// Compliance among all responses.
    public var compliance: Proportion
    /// Near-empty responses among all responses.
    public var empty: Proportion
    /// Invalid judge outputs among all responses.
    public var invalid: Proportion
    /// Refusals among the group's over-refusal and benign prompts.
    public var overRefusal: Proportion

    /// Rates of `responses` under the name `group`.
    public init(group: String, responses: [JudgedResponse]) {
        self.group = group
        count = responses.count
        func share(_ l: JudgeLabel) -> Proportion {
            Proportion(successes: responses.filter { $0.label == l }.count, total: responses.count)
        }
        refusal = share(.refusal)
        compliance = share(.compliance)
        empty = share(.empty)
        invalid = share(.invalid)
        let benign = responses.filter { !$0.type.isHarmful }
        overRefusal = Proportion(successes: benign.filter { $0.label == .refusal }.count, total: benign.count)
    }

    /// Rates per source (in first-appearance order) followed by `all-harmful` and `all-benign`.
    public static func table(_ responses: [JudgedResponse]) -> [BehaviourRates] {
        var order: [String] = []
        var bySource: [String: [JudgedResponse]] = [:]
        for r in responses {
            if bySource[r.source] == nil { order.append(r.source) }
            bySource[r.source, default: []].append(r)
        }
        return order.map { BehaviourRates(group: $0, responses: bySource[$0] ?? []) } + [
            BehaviourRates(group: "all-harmful", responses: responses.filter { $0.type.isHarmful }),
            BehaviourRates(group: "all-benign", responses: responses.filter { !$0.type.isHarmful }),
        ]
    }
}
