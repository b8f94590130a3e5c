// Rotary position embeddings (rotate-half convention of transformers' Llama/Gemma/Qwen2):
// for i < Dh/2, out[i] = x[i] cos - x[i + Dh/2] sin, out[i + Dh/2] = x[i + Dh/2] cos + x[i] sin,
// with angle = position * invFreq[i].
//
// One table and one rotation serve inference (in place on q/k rows of [N, H*Dh], KV cache)
// and autodiff (x [B, H, T, Dh]), so both paths rotate by the same values, bit for bit.
//
// Dimension legend: x [B, H, T, Dh]; positions [B*T]; tables [P, Dh/2] with P = maxPositions;
// N rows of an inference call.
import Foundation

/// How RoPE inverse frequencies are rescaled for long contexts.
public enum RopeScaling: Sendable, Equatable, Codable {
    /// Plain RoPE.
    case none
    /// Linear position interpolation: positions divided by `factor` (same as invFreq / factor).
    case linear(factor: Double)
    /// Llama 3 frequency-dependent scaling (transformers `_compute_llama3_parameters`).
    case llama3(factor: Double, lowFreqFactor: Double, highFreqFactor: Double, originalMaxPositions: Int)
}

/// Precomputed cos/sin tables for rotary embeddings.
public struct RopeTable: Sendable {
    /// Head width Dh (even).
    public let headDim: Int
    /// Number of table rows (positions 0..<maxPositions).
    public let maxPositions: Int
    /// Inverse frequencies [Dh/2] after scaling.
    public let inverseFrequencies: [Float]
    /// cos(position * invFreq) [P, Dh/2].
    public let cos: [Float]
    /// sin(position * invFreq) [P, Dh/2].
    public let sin: [Float]

    /// Builds tables for `headDim` with base `theta`, as transformers computes them in
    /// float32: invFreq = 1 / theta^(2i/Dh), then the scaling, angle = Float(pos) * invFreq.
    public init(headDim: Int, theta: Double, maxPositions: Int, scaling: RopeScaling = .none,
                attentionFactor: Float = 1) {
        precondition(headDim > 0 && headDim % 2 == 0, "RoPE head width must be even, got \(headDim)")
        precondition(maxPositions > 0, "RoPE needs maxPositions > 0")
        let half = headDim / 2
        var inv = (0..<half).map { i -> Float in
            let exponent = Float(2 * i) / Float(headDim)
            return Float(1.0 / Foundation.pow(theta, Double(exponent)))
        }
        switch scaling {
        case .none: break
        case .linear(let factor):
            inv = inv.map { $0 / Float(factor) }
        case .llama3(let factor, let low, let high, let original):
            let lowWavelen = Double(original) / low, highWavelen = Double(original) / high
            inv = inv.map { f -> Float in
                let wavelen = 2 * Double.pi / Double(f)
                if wavelen < highWavelen { return f }
                if wavelen > lowWavelen { return Float(Double(f) / factor) }
                let smooth = (Double(original) / wavelen - low) / (high - low)
                return Float((1 - smooth) * Double(f) / factor + smooth * Double(f))
            }
        }
        var c = [Float](repeating: 0, count: maxPositions * half), s = c
        for p in 0..<maxPositions {
            for i in 0..<half {
                let angle = Float(p) * inv[i]
                c[p * half + i] = Float(Foundation.cos(Double(angle))) * attentionFactor
                s[p * half + i] = Float(Foundation.sin(Double(angle))) * attentionFactor
            }
        }
        self.headDim = headDim
        self.maxPositions = maxPositions
        self.inverseFrequencies = inv
        self.cos = c
        self.sin = s
    }
}

/// The RoPE table of one model, grown on demand: row p of every table it hands out is the
/// same (it depends only on p), so a call reads the same values whatever its length.
public final class RopeTableCache: @unchecked Sendable {
    // @unchecked: `current` is read and replaced under `lock` only.
    public let headDim: Int
    public let theta: Double
    public let scaling: RopeScaling
    private let lock = NSLock()
    private var current: RopeTable?

    public init(headDim: Int, theta: Double, scaling: RopeScaling) {
        self.headDim = headDim
        self.theta = theta
        self.scaling = scaling
    }

    /// A table with at least `positions` rows (capacity doubles, from 256).
    public func table(positions: Int) -> RopeTable {
        lock.withLock {
            if let t = current, t.maxPositions >= positions { return t }
            var size = Swift.max(256, current?.maxPositions ?? 0)
            while size < positions { size *= 2 }
            let t = RopeTable(headDim: headDim, theta: theta, maxPositions: size, scaling: scaling)
            current = t
            return t
        }
    }
}

extension Kernels {
    /// Rotate-half of one head vector: dst[i] = x1 c - x2 s, dst[i + half] = x2 c + x1 s, with
    /// s negated for the transposed rotation; `dst` may be `src`.
    @inline(__always)
    static func rotateHalf(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, cos c: UnsafePointer<Float>,
                           sin s: UnsafePointer<Float>, half: Int, sign: Float) {
        for i in 0..<half {
            let ci = c[i], si = sign * s[i]
            let x1 = src[i], x2 = src[i + half]
            dst[i] = x1 * ci - x2 * si
            dst[i + half] = x2 * ci + x1 * si
        }
    }

    /// Checks that every position has a row in `table`.
    private static func checkPositions(_ positions: [Int], _ table: RopeTable) {
        for p in positions {
            precondition(p >= 0 && p < table.maxPositions, "rope: position \(p) outside table of \(table.maxPositions)")
        }
    }

    /// Applies RoPE to x [B, H, T, Dh] with position ids [B*T]; `inverse` applies the
    /// transposed rotation (the backward pass).
    public static func rope(_ x: Tensor, table: RopeTable, positions: [Int], inverse: Bool = false) -> Tensor {
        precondition(x.rank == 4 && x.shape[3] == table.headDim,
                     "rope: x must be [B, H, T, \(table.headDim)], got \(x.shape)")
        let b = x.shape[0], h = x.shape[1], t = x.shape[2], dh = x.shape[3], half = dh / 2
        precondition(positions.count == b * t, "rope: \(positions.count) positions for B*T = \(b * t)")
        checkPositions(positions, table)
        var out = Tensor(uninitialized: x.shape)
        let po = out.mutablePointer(), px = x.basePointer
        let sign: Float = inverse ? -1 : 1
        table.cos.withUnsafeBufferPointer { pc in table.sin.withUnsafeBufferPointer { ps in
            for bi in 0..<b { for hi in 0..<h { for ti in 0..<t {
                let base = ((bi * h + hi) * t + ti) * dh, row = positions[bi * t + ti] * half
                rotateHalf(px + base, po + base, cos: pc.baseAddress! + row, sin: ps.baseAddress! + row, half: half, sign: sign)
            } } }
        } }
        return out
    }

    /// RoPE in place on `positions.count` rows of `heads` head vectors starting at `x`, rows
    /// `rowStride` floats apart (the q or k columns of separate or fused q/k/v outputs).
    public static func ropeInPlace(_ x: UnsafeMutablePointer<Float>, rowStride: Int, heads: Int, table: RopeTable,
                                   positions: [Int]) {
        let dh = table.headDim, half = dh / 2
        checkPositions(positions, table)
        table.cos.withUnsafeBufferPointer { pc in table.sin.withUnsafeBufferPointer { ps in
            for (r, p) in positions.enumerated() {
                let c = pc.baseAddress! + p * half, s = ps.baseAddress! + p * half
                for h in 0..<heads {
                    let v = x + r * rowStride + h * dh
                    rotateHalf(v, v, cos: c, sin: s, half: half, sign: 1)
                }
            }
        } }
    }
}

extension Ops {
    /// Rotary position embedding of x [B, H, T, Dh] at position ids [B*T].
    public static func rope(_ x: Variable, table: RopeTable, positions: [Int]) -> Variable {
        let y = Kernels.rope(x.value, table: table, positions: positions)
        guard Autograd.records(x) else { return Variable(y) }
        return Variable(y, parents: [x]) { g, _ in
            [Kernels.rope(g, table: table, positions: positions, inverse: true)]
        }
    }
}
