// ContrastTriples: PKU-style pairs with disagreeing safety labels -> (prompt, safe, unsafe) (A.3).
import Foundation

/// A contrast triple (p, y+, y-).
public struct ContrastTriple: Sendable, Codable, Hashable {
    /// The prompt.
    public var prompt: String
    /// The response labelled safe (y+).
    public var safe: String
    /// The response labelled unsafe (y-).
    public var unsafe: String
    /// Where the source pair was read.
    public var location: SourceLocation

    /// A triple with every field given.
    public init(prompt: String, safe: String, unsafe: String, location: SourceLocation) {
        self.prompt = prompt
        self.safe = safe
        self.unsafe = unsafe
        self.location = location
    }
}

/// Extraction counts.
public struct ContrastStats: Sendable, Codable, Equatable {
    /// Pairs examined.
    public var pairs: Int
    /// Pairs dropped because both responses were safe.
    public var bothSafe: Int
    /// Pairs dropped because both responses were unsafe.
    public var bothUnsafe: Int
    /// Triples kept.
    public var kept: Int
}

/// Contrast-triple extraction.
public enum ContrastTriples {
    /// Keeps pairs whose two labels disagree, ordering the responses as (safe, unsafe).
    public static func extract(_ pairs: [PreferencePair]) -> (triples: [ContrastTriple], stats: ContrastStats) {
        var triples: [ContrastTriple] = []
        var stats = ContrastStats(pairs: pairs.count, bothSafe: 0, bothUnsafe: 0, kept: 0)
        for p in pairs {
            switch (p.isResponse0Safe, p.isResponse1Safe) {
            case (true, true): stats.bothSafe += 1
            case (false, false): stats.bothUnsafe += 1
            case (true, false):
                triples.append(ContrastTriple(prompt: p.prompt, safe: p.response0, unsafe: p.response1, location: p.location))
            case (false, true):
                triples.append(ContrastTriple(prompt: p.prompt, safe: p.response1, unsafe: p.response0, location: p.location))
            }
        }
        stats.kept = triples.count
        return (triples, stats)
    }
}
