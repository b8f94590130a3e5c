// RefusalTraceFilter: drops unsafe responses that still refuse or disclaim (paper Appendix A.5).
import Foundation

/// Why a response was dropped by the refusal-trace filter.
public enum RefusalTraceVerdict: Sendable, Equatable, Hashable {
    /// Kept: no refusal substring and long enough.
    case keep
    /// Dropped: contains this substring (as listed).
    case refusalSubstring(String)
    /// Dropped: fewer than `minLength` characters.
    case tooShort(Int)
}

/// Filter counts.
public struct RefusalTraceStats: Sendable, Codable, Equatable {
    /// Responses examined.
    public var total: Int = 0
    /// Dropped for a refusal substring.
    public var refusal: Int = 0
    /// Dropped as too short.
    public var tooShort: Int = 0
    /// Kept.
    public var kept: Int = 0
    /// Drops per matched substring.
    public var bySubstring: [String: Int] = [:]
}

/// The lexical refusal-trace filter for the harmful-compliance baseline.
///
/// After lowercasing (and folding typographic apostrophes to `'` on both sides), a response
/// containing any of `substrings` is dropped; so is one shorter than `minLength` characters
/// (Unicode scalars of the trimmed text). The paper leaves the threshold to its configuration;
/// our default is 10 characters, the same floor eval prep uses for prompts.
public struct RefusalTraceFilter: Sendable, Codable, Equatable {
    /// Lowercased substrings (default: the paper's 16).
    public var substrings: [String]
    /// Minimum response length in characters.
    public var minLength: Int

    /// A filter with the paper's list and a length floor.
    public init(substrings: [String] = RefusalLexicon.paperSubstrings, minLength: Int = 10) {
        self.substrings = substrings
        self.minLength = minLength
    }

    /// The verdict for one response (the substring check comes first).
    public func verdict(_ response: String) -> RefusalTraceVerdict {
        if let hit = RefusalLexicon.firstMatch(in: response, substrings: substrings, caseSensitive: false) {
            return .refusalSubstring(hit)
        }
        let n = response.trimmingCharacters(in: .whitespacesAndNewlines).unicodeScalars.count
        return n < minLength ? .tooShort(n) : .keep
    }

    /// Keeps the triples whose unsafe response passes, with counts.
    public func apply(_ triples: [ContrastTriple]) -> (kept: [ContrastTriple], stats: RefusalTraceStats) {
        var stats = RefusalTraceStats()
        var kept: [ContrastTriple] = []
        for t in triples {
            stats.total += 1
            switch verdict(t.unsafe) {
            case .keep:
                kept.append(t)
                stats.kept += 1
            case let .refusalSubstring(s):
                stats.refusal += 1
                stats.bySubstring[s, default: 0] += 1
            case .tooShort:
                stats.tooShort += 1
            }
        }
        return (kept, stats)
    }
}
