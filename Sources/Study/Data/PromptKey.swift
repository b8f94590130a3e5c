// PromptKey and HashSplit: dedup keys and the deterministic train/eval partition of prompts.
import Foundation

/// Prompt normalisation for deduplication (paper Appendix A.2).
public enum PromptKey {
    /// The dedup key: lowercased, every whitespace run collapsed to one space, trimmed.
    public static func normalize(_ prompt: String) -> String {
        prompt.lowercased().split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
    }

    /// Length of a prompt in Unicode scalars (what Python's `len` counts) after normalisation.
    public static func length(_ prompt: String) -> Int {
        prompt.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ").unicodeScalars.count
    }
}

/// Which side of the split a prompt falls on.
public enum SplitSide: String, Sendable, Codable, Hashable {
    /// The training (anchor) partition.
    case train
    /// The held-out evaluation partition.
    case eval
}

/// A deterministic hash split (paper Appendix A.4: 90/10 by a hash of each prompt).
///
/// bucket = H(normalised key) mod 10000, with H the first 8 bytes of SHA-256 read big-endian
/// (default) or FNV-1a 64; a prompt is `train` when bucket < round(trainFraction * 10000).
/// Depends only on the key's UTF-8 bytes, so it is identical on every platform and run.
public struct HashSplit: Sendable, Codable, Equatable {
    /// The hash function.
    public enum Function: String, Sendable, Codable {
        case sha256
        case fnv1a64
    }

    /// Fraction of prompts on the train side (0...1).
    public var trainFraction: Double
    /// The hash function.
    public var function: Function

    /// A split with the given fraction (default 0.9) and hash (default SHA-256).
    public init(trainFraction: Double = 0.9, function: Function = .sha256) {
        self.trainFraction = trainFraction
        self.function = function
    }

    /// The bucket 0..<10000 of an already normalised key.
    public func bucket(key: String) -> Int {
        let h = function == .sha256 ? StableHash.sha256Prefix64(key) : StableHash.fnv1a64(key)
        return Int(h % 10_000)
    }

    /// The side of the split of a prompt (normalised here).
    public func side(of prompt: String) -> SplitSide {
        bucket(key: PromptKey.normalize(prompt)) < Int((trainFraction * 10_000).rounded()) ? .train : .eval
    }
}
