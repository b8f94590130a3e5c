// Seeded, platform-independent random numbers (SplitMix64): same seed, same numbers everywhere.
// Also seeded tensor initialisers, dropout masks and a Fisher-Yates shuffle.
//
// Dimension legend: random tensors are filled element by element in row-major order, so a
// tensor's values depend only on the seed, the shape and the calls made before it.
import Foundation

/// SplitMix64 generator (Steele, Lea, Flood 2014); 64-bit state, no platform dependence.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    @usableFromInline var state: UInt64

    /// A generator starting from `seed`.
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= Self.gamma
        return Self.mix(state)
    }

    /// The counter increment (the golden-ratio constant).
    @usableFromInline static let gamma: UInt64 = 0x9E37_79B9_7F4A_7C15

    /// The output function applied to a counter value.
    @inlinable
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Advances the generator by `n` outputs without computing them.
    public mutating func skip(_ n: Int) { state &+= Self.gamma &* UInt64(n) }

    /// Output number `i` (0-based) counted from the current state, without advancing: the
    /// value the (i+1)-th call to `next()` would return. SplitMix64 is a counter passed
    /// through a mixer, so any output can be computed directly (parallel dropout masks).
    @inlinable
    public func peek(_ i: Int) -> UInt64 { Self.mix(state &+ Self.gamma &* UInt64(i + 1)) }

    /// Whether output `i` from the current state drops an element under dropout `p`
    /// (the uniform `nextFloat()` would return is below p).
    @inlinable
    public func drops(_ i: Int, p: Float) -> Bool { Self.unitFloat(peek(i)) < p }

    /// The integer form of `drops(_:p:)`: output i drops when its top 24 bits are below
    /// this threshold. `unitFloat` is exact (a 24-bit integer times 2^-24), so
    /// `unitFloat(z) < p` holds exactly when `z >> 40 < ceil(p * 2^24)`.
    @inlinable
    public static func dropThreshold(p: Float) -> UInt64 { UInt64((Double(p) * 16_777_216).rounded(.up)) }

    /// Bits i..<i+count (count <= 64) of a dropout mask: bit j set when output i + j from the
    /// current state drops (`drops(i + j, p:)`, with `threshold` from `dropThreshold`).
    @inlinable
    public func dropBits(from i: Int, count: Int, threshold: UInt64) -> UInt64 {
        var word: UInt64 = 0
        var counter = state &+ Self.gamma &* UInt64(i + 1)
        for j in 0..<count {
            word |= UInt64(truncatingIfNeeded: Self.mix(counter) >> 40 < threshold ? 1 : 0) << UInt64(j)
            counter &+= Self.gamma
        }
        return word
    }

    /// A uniform Float in [0, 1) built from the top 24 bits.
    public mutating func nextFloat() -> Float { Self.unitFloat(next()) }

    /// The top 24 bits of `bits` as a Float in [0, 1).
    @inlinable
    static func unitFloat(_ bits: UInt64) -> Float { Float(bits >> 40) * (1.0 / 16_777_216.0) }

    /// A uniform Double in [0, 1) built from the top 53 bits.
    public mutating func nextDouble() -> Double { Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0) }

    /// A standard normal sample (Box-Muller, using two uniforms).
    public mutating func nextGaussian() -> Float {
        let u1 = max(nextDouble(), 1e-300), u2 = nextDouble()
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }

    /// A uniform integer in 0..<bound without modulo bias.
    public mutating func nextInt(below bound: Int) -> Int {
        precondition(bound > 0)
        return Int(next(upperBound: UInt64(bound)))
    }
}


extension SplitMix64 {
    /// Fisher-Yates shuffle (Durstenfeld): the same seed gives the same order on every machine
    /// (unlike `Array.shuffle(using:)`, whose algorithm the standard library may change).
    public mutating func shuffle<T>(_ array: inout [T]) {
        guard array.count > 1 else { return }
        for i in stride(from: array.count - 1, to: 0, by: -1) {
            let j = nextInt(below: i + 1)
            if i != j { array.swapAt(i, j) }
        }
    }

    /// A shuffled copy of `array`.
    public mutating func shuffled<T>(_ array: [T]) -> [T] {
        var copy = array
        shuffle(&copy)
        return copy
    }

    /// A random permutation of 0..<n.
    public mutating func permutation(_ n: Int) -> [Int] { shuffled(Array(0..<n)) }
}

extension Tensor {
    /// Samples from N(mean, std^2), filled in row-major order.
    public static func randomNormal(shape: [Int], mean: Float = 0, std: Float, rng: inout SplitMix64) -> Tensor {
        var out = Tensor(uninitialized: shape)
        let p = out.mutablePointer()
        for i in 0..<out.count { p[i] = mean + std * rng.nextGaussian() }
        return out
    }

    /// Samples from U[low, high), filled in row-major order.
    public static func randomUniform(shape: [Int], low: Float = 0, high: Float = 1, rng: inout SplitMix64) -> Tensor {
        var out = Tensor(uninitialized: shape)
        let p = out.mutablePointer()
        for i in 0..<out.count { p[i] = low + (high - low) * rng.nextFloat() }
        return out
    }

    /// Kaiming-uniform initialisation as PyTorch's nn.Linear default: U(-1/sqrt(fanIn), 1/sqrt(fanIn)).
    public static func kaimingUniform(shape: [Int], fanIn: Int, rng: inout SplitMix64) -> Tensor {
        let bound = 1 / Float(Swift.max(fanIn, 1)).squareRoot()
        return randomUniform(shape: shape, low: -bound, high: bound, rng: &rng)
    }

    /// An inverted-dropout mask: 0 with probability p, else 1/(1-p).
    public static func dropoutMask(shape: [Int], p: Float, rng: inout SplitMix64) -> Tensor {
        precondition(p >= 0 && p < 1, "dropout probability must be in [0, 1), got \(p)")
        var out = Tensor(uninitialized: shape)
        let ptr = out.mutablePointer(), keep = 1 / (1 - p), start = rng
        // Element i takes output i of the stream (the values a sequential loop would draw).
        Threading.parallelChunks(out.count, costPerItem: 8) { r in
            for i in r { ptr[i] = start.drops(i, p: p) ? 0 : keep }
        }
        rng.skip(out.count)
        return out
    }
}
