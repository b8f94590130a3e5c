// Proportion: a rate with its Wilson score interval.
import Foundation

/// k successes out of n with a Wilson score confidence interval; all values nil when n = 0.
public struct Proportion: Sendable, Codable, Equatable {
    /// z for a two-sided 95% interval.
    public static let z95 = 1.959963984540054

    /// Successes.
    public var successes: Int
    /// Trials.
    public var total: Int
    /// k / n.
    public var rate: Double?
    /// Lower Wilson bound.
    public var lower: Double?
    /// Upper Wilson bound.
    public var upper: Double?

    /// The proportion `successes / total` with a Wilson interval at `z` (default 95%).
    public init(successes: Int, total: Int, z: Double = Proportion.z95) {
        precondition(successes >= 0 && successes <= total, "successes must be within 0...total")
        self.successes = successes
        self.total = total
        guard total > 0 else { return }
        let n = Double(total), p = Double(successes) / n, z2 = z * z
        let denom = 1 + z2 / n
        let center = (p + z2 / (2 * n)) / denom
        let half = z * (p * (1 - p) / n + z2 / (4 * n * n)).squareRoot() / denom
        rate = p
        lower = max(0, center - half)
        upper = min(1, center + half)
    }

    /// Encodes absent values as JSON null (not omitted).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(successes, forKey: .successes)
        try c.encode(total, forKey: .total)
        try c.encode(rate, forKey: .rate)
        try c.encode(lower, forKey: .lower)
        try c.encode(upper, forKey: .upper)
    }
}
