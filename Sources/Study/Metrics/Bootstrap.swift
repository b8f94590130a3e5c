// Bootstrap: median, percentiles and a seeded percentile-bootstrap CI of the median.
import Foundation
import Numerics

/// A confidence interval.
public struct ConfidenceInterval: Sendable, Codable, Equatable {
    /// Lower bound.
    public var lower: Double
    /// Upper bound.
    public var upper: Double
    /// Coverage (e.g. 0.95).
    public var level: Double

    /// An interval.
    public init(lower: Double, upper: Double, level: Double) {
        self.lower = lower
        self.upper = upper
        self.level = level
    }
}

/// Order statistics and the bootstrap.
public enum Bootstrap {
    /// The q-quantile (0...1) of ascending `sorted` with linear interpolation (NumPy's default).
    public static func percentile(sorted: [Double], _ q: Double) -> Double? {
        guard !sorted.isEmpty else { return nil }
        let pos = min(max(q, 0), 1) * Double(sorted.count - 1)
        let lo = Int(pos.rounded(.down)), hi = min(lo + 1, sorted.count - 1)
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - Double(lo))
    }

    /// The median (mean of the two middle values for even counts); nil when empty.
    public static func median(_ values: [Double]) -> Double? { percentile(sorted: values.sorted(), 0.5) }

    /// The arithmetic mean; nil when empty.
    public static func mean(_ values: [Double]) -> Double? {
        values.isEmpty ? nil : values.reduce(0, +) / Double(values.count)
    }

    /// Percentile-bootstrap CI of the median: `resamples` resamples with replacement drawn by
    /// SplitMix64(seed) (index = high 64 bits of next() * n, identical on every platform); the
    /// interval is the (1-level)/2 and (1+level)/2 percentiles of the resampled medians.
    /// - Returns: nil when `values` is empty; a zero-width interval for one value.
    public static func medianCI(_ values: [Double], resamples: Int = 1000, seed: UInt64 = 0, level: Double = 0.95) -> ConfidenceInterval? {
        guard !values.isEmpty, resamples > 0 else { return nil }
        var rng = SplitMix64(seed: seed)
        let n = values.count
        var medians = [Double](repeating: 0, count: resamples)
        var sample = [Double](repeating: 0, count: n)
        for r in 0..<resamples {
            for i in 0..<n { sample[i] = values[Int(rng.next().multipliedFullWidth(by: UInt64(n)).high)] }
            sample.sort()
            medians[r] = percentile(sorted: sample, 0.5) ?? 0
        }
        medians.sort()
        guard let lo = percentile(sorted: medians, (1 - level) / 2), let hi = percentile(sorted: medians, (1 + level) / 2) else { return nil }
        return ConfidenceInterval(lower: lo, upper: hi, level: level)
    }
}
