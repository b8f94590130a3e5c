// Vectorised transcendental functions on SIMD8<Float> and buffer maps built on them, for the
// elementwise passes of the model runtime (SiLU, GELU-tanh, softmax). `exp` follows the
// Cephes single-precision scheme: range reduction by ln 2 in two parts, a degree-6
// polynomial, and 2^n built from the exponent bits. Relative error is within 2 ulp of
// Foundation.exp over the whole float range (checked by VectorMathTests).
//
// Dimension legend: N elements of a buffer.
import Foundation

/// SIMD8<Float> math used by the runtime's kernels.
public enum VectorMath {
    /// exp(x) lane-wise; 0 below -87.33 (including -inf; Foundation gives subnormals there), +inf above 88.72.
    @inlinable @inline(__always)
    public static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let lo = SIMD8<Float>(repeating: -87.336_55), hi = SIMD8<Float>(repeating: 88.722_83)
        var r = x.replacing(with: lo, where: x .< lo).replacing(with: hi, where: x .> hi)
        // n = round(x / ln 2) through the 1.5 * 2^23 trick: the integer sits in the low mantissa bits.
        let shifter = SIMD8<Float>(repeating: 12_582_912)
        let shifted = r * 1.442_695_04 + shifter
        let fx = shifted - shifter
        r = r - fx * 0.693_359_375
        r = r + fx * 2.121_944_4e-4
        let z = r * r
        var y = SIMD8<Float>(repeating: 1.987_569_15e-4)
        y = y * r + 1.398_199_95e-3
        y = y * r + 8.333_451_9e-3
        y = y * r + 4.166_579_59e-2
        y = y * r + 1.666_666_55e-1
        y = y * r + 5.000_000_12e-1
        y = y * z + r + 1
        // 2^n as two factors 2^(n>>1) * 2^(n - n>>1) so n = 128 (x near the top of the range)
        // does not overflow the exponent field.
        let n = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
        let n1 = n &>> 1, n2 = n &- n1
        let s1 = unsafeBitCast((n1 &+ 127) &<< 23, to: SIMD8<Float>.self)
        let s2 = unsafeBitCast((n2 &+ 127) &<< 23, to: SIMD8<Float>.self)
        return (y * s1 * s2).replacing(with: 0, where: x .< lo).replacing(with: .infinity, where: x .> hi)
    }

    /// Logistic sigmoid 1 / (1 + exp(-x)).
    @inlinable @inline(__always)
    public static func sigmoid(_ x: SIMD8<Float>) -> SIMD8<Float> { 1 / (1 + exp(-x)) }

    /// tanh(x) = 1 - 2 / (exp(2x) + 1), exact to a few ulp, +-1 in the tails.
    @inlinable @inline(__always)
    public static func tanh(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let y = 1 - 2 / (exp(x + x) + 1)
        // Near 0 the subtraction cancels: use the odd series x - x^3/3 + 2x^5/15 there.
        let x2 = x * x
        var poly = SIMD8<Float>(repeating: -17.0 / 315)
        poly = poly * x2 + 2.0 / 15
        poly = poly * x2 - 1.0 / 3
        poly = poly * x2 + 1
        let series = x * poly
        return y.replacing(with: series, where: x2 .< 0.0025)
    }

    /// SiLU x * sigmoid(x).
    @inlinable @inline(__always)
    public static func silu(_ x: SIMD8<Float>) -> SIMD8<Float> { x * sigmoid(x) }

    /// d/dx SiLU = s (1 + x (1 - s)) with s = sigmoid(x).
    @inlinable @inline(__always)
    public static func siluGrad(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let s = sigmoid(x)
        return s * (1 + x * (1 - s))
    }

    /// Tanh-approximate GELU 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
    @inlinable @inline(__always)
    public static func geluTanh(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let u = 0.797_884_56 * (x + 0.044715 * x * x * x)
        return 0.5 * x * (1 + tanh(u))
    }

    /// Derivative of the tanh-approximate GELU.
    @inlinable @inline(__always)
    public static func geluTanhGrad(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let x2 = x * x
        let t = tanh(0.797_884_56 * (x + 0.044715 * x2 * x))
        let du = 0.797_884_56 * (1 + 3 * 0.044715 * x2)
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du
    }

    /// Loads up to 8 floats from `p` (missing lanes are `fill`).
    @inlinable @inline(__always)
    public static func load(_ p: UnsafePointer<Float>, count: Int, fill: Float = 0) -> SIMD8<Float> {
        if count >= 8 { return UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }
        var v = SIMD8<Float>(repeating: fill)
        for i in 0..<count { v[i] = p[i] }
        return v
    }

    /// Stores the first `count` (up to 8) lanes of `v` at `p`.
    @inlinable @inline(__always)
    public static func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>, count: Int) {
        if count >= 8 { UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self); return }
        for i in 0..<count { p[i] = v[i] }
    }

    /// dst[i] = f(a[i]) for i < n, eight lanes at a time.
    @inlinable @inline(__always)
    public static func map(_ n: Int, _ a: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>,
                           _ f: (SIMD8<Float>) -> SIMD8<Float>) {
        var i = 0
        while i < n {
            let c = Swift.min(8, n - i)
            store(f(load(a + i, count: c)), dst + i, count: c)
            i += 8
        }
    }

    /// dst[i] = f(a[i], b[i]) for i < n, eight lanes at a time.
    @inlinable @inline(__always)
    public static func map(_ n: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                           _ dst: UnsafeMutablePointer<Float>, _ f: (SIMD8<Float>, SIMD8<Float>) -> SIMD8<Float>) {
        var i = 0
        while i < n {
            let c = Swift.min(8, n - i)
            store(f(load(a + i, count: c), load(b + i, count: c)), dst + i, count: c)
            i += 8
        }
    }

    /// Largest of `c` values (-inf for an empty row).
    @inlinable
    public static func maximum(_ src: UnsafePointer<Float>, _ c: Int) -> Float {
        var acc = SIMD8<Float>(repeating: -.infinity)
        var j = 0
        while j + 8 <= c {
            let v = load(src + j, count: 8)
            acc = acc.replacing(with: v, where: v .> acc)
            j += 8
        }
        var m = acc.max()
        while j < c { m = Swift.max(m, src[j]); j += 1 }
        return m
    }

    /// log(sum(exp(src))) of one row (-inf when every value is -inf).
    @inlinable
    public static func logSumExp(_ src: UnsafePointer<Float>, _ c: Int) -> Float {
        let m = maximum(src, c)
        if m == -Float.infinity { return m }
        var acc = SIMD8<Float>(repeating: 0)
        var j = 0
        let mv = SIMD8<Float>(repeating: m)
        while j < c {
            acc += exp(load(src + j, count: Swift.min(8, c - j), fill: -.infinity) - mv)
            j += 8
        }
        return m + Foundation.log(acc.sum())
    }

    /// dst = scale * exp(src - shift) over `c` values (a softmax row times a gradient
    /// weight when shift is the row's log-sum-exp). `src` and `dst` may be the same buffer.
    @inlinable
    public static func shiftedExp(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ c: Int,
                                  shift: Float, scale: Float) {
        let sv = SIMD8<Float>(repeating: shift), kv = SIMD8<Float>(repeating: scale)
        var j = 0
        while j < c {
            let n = Swift.min(8, c - j)
            store(exp(load(src + j, count: n, fill: -.infinity) - sv) * kv, dst + j, count: n)
            j += 8
        }
    }

    /// In-place softmax of `row[visible]` with every entry outside `visible` set to 0 (no
    /// exp is spent on them): attention rows with causal / sliding-window masks.
    @inlinable
    public static func softmaxRow(_ row: UnsafeMutablePointer<Float>, count: Int, visible: Range<Int>) {
        if visible.lowerBound > 0 { row.update(repeating: 0, count: visible.lowerBound) }
        if visible.upperBound < count { (row + visible.upperBound).update(repeating: 0, count: count - visible.upperBound) }
        softmaxRow(row + visible.lowerBound, row + visible.lowerBound, visible.count)
    }

    /// Softmax of one row of `c` values into `dst` (zeros when every value is -inf). `src`
    /// and `dst` may be the same buffer.
    @inlinable
    public static func softmaxRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ c: Int) {
        let m = maximum(src, c)
        if m == -Float.infinity {
            dst.update(repeating: 0, count: c)
            return
        }
        var acc = SIMD8<Float>(repeating: 0)
        var j = 0
        let mv = SIMD8<Float>(repeating: m)
        while j < c {
            let n = Swift.min(8, c - j)
            // Missing lanes load -inf and contribute exp(-inf) = 0.
            let e = exp(load(src + j, count: n, fill: -.infinity) - mv)
            acc += e
            store(e, dst + j, count: n)
            j += 8
        }
        let inv = 1 / acc.sum()
        j = 0
        let iv = SIMD8<Float>(repeating: inv)
        while j < c {
            let n = Swift.min(8, c - j)
            store(load(dst + j, count: n) * iv, dst + j, count: n)
            j += 8
        }
    }
}
