// AnchorFilter: discards unusable base-model generations for benign anchors (paper Appendix A.4).
import Foundation

/// Why an anchor generation was kept or discarded.
public enum AnchorVerdict: String, Sendable, Codable, Hashable, CaseIterable {
    /// Usable.
    case keep
    /// Empty or whitespace only.
    case empty
    /// The generation terminated after a single token.
    case singleToken
    /// Classified as a refusal.
    case refusal
}

/// The anchor filter: empty, single-token and refusal generations are discarded.
public struct AnchorFilter: Sendable {
    /// Counts generated tokens of a response (from the model's tokenizer, or the generator's count).
    public var tokenCount: @Sendable (String) -> Int
    /// Classifies a response as a refusal.
    public var isRefusal: @Sendable (String) -> Bool

    /// A filter; the default refusal test is the paper's A.5 substring list (case-insensitive).
    public init(tokenCount: @escaping @Sendable (String) -> Int,
                isRefusal: @escaping @Sendable (String) -> Bool = { text in
                    RefusalLexicon.firstMatch(in: text, substrings: RefusalLexicon.paperSubstrings, caseSensitive: false) != nil
                }) {
        self.tokenCount = tokenCount
        self.isRefusal = isRefusal
    }

    /// The verdict for one generation (checked in the order empty, single token, refusal).
    public func verdict(_ response: String) -> AnchorVerdict {
        if response.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return .empty }
        if tokenCount(response) <= 1 { return .singleToken }
        if isRefusal(response) { return .refusal }
        return .keep
    }

    /// Filters (prompt, response) pairs; returns the kept pairs and counts per verdict.
    public func apply(_ items: [(prompt: String, response: String)]) -> (kept: [(prompt: String, response: String)], counts: [AnchorVerdict: Int]) {
        var counts: [AnchorVerdict: Int] = [:]
        var kept: [(prompt: String, response: String)] = []
        for item in items {
            let v = verdict(item.response)
            counts[v, default: 0] += 1
            if v == .keep { kept.append(item) }
        }
        return (kept, counts)
    }
}
