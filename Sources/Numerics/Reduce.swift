// Reductions along one axis and softmax along the last axis.
//
// Dimension legend: a tensor reduced over `axis` is viewed as [O, N, I] where O is the
// product of the dimensions before the axis, N the axis size and I the product after it.
// Softmax kernels view the tensor as rows [R, C] with C the last dimension.
import Foundation

extension Kernels {
    /// (O, N, I) view sizes for `axis` (negative axes count from the end).
    static func axisView(_ shape: [Int], _ axis: Int) -> (outer: Int, n: Int, inner: Int, axis: Int) {
        let ax = axis < 0 ? axis + shape.count : axis
        precondition(ax >= 0 && ax < shape.count, "axis \(axis) out of range for shape \(shape)")
        return (shape[..<ax].reduce(1, *), shape[ax], shape[(ax + 1)...].reduce(1, *), ax)
    }

    /// Shape after reducing `axis`.
    static func reducedShape(_ shape: [Int], _ axis: Int, keepDims: Bool) -> [Int] {
        var s = shape
        if keepDims { s[axis] = 1 } else { s.remove(at: axis) }
        return s
    }

    /// Sum over `axis`.
    public static func sum(_ x: Tensor, axis: Int, keepDims: Bool = false) -> Tensor {
        let (o, n, inner, ax) = axisView(x.shape, axis)
        var out = Tensor(zeros: reducedShape(x.shape, ax, keepDims: keepDims))
        let po = out.mutablePointer(), px = x.basePointer
        for a in 0..<o {
            let dst = po + a * inner
            for j in 0..<n {
                let src = px + (a * n + j) * inner
                for i in 0..<inner { dst[i] += src[i] }
            }
        }
        return out
    }

    /// Sum of all elements (accumulated in Double).
    public static func sumAll(_ x: Tensor) -> Float {
        let px = x.basePointer
        var s: Double = 0
        var chunk: Float = 0
        for i in 0..<x.count {
            chunk += px[i]
            if i & 1023 == 1023 { s += Double(chunk); chunk = 0 }
        }
        return Float(s + Double(chunk))
    }

    /// Maximum over `axis` and the flat index (0..<N) where it occurs (first on ties).
    public static func max(_ x: Tensor, axis: Int, keepDims: Bool = false) -> (values: Tensor, indices: [Int32]) {
        let (o, n, inner, ax) = axisView(x.shape, axis)
        precondition(n > 0, "max over an empty axis")
        var out = Tensor(uninitialized: reducedShape(x.shape, ax, keepDims: keepDims))
        var idx = [Int32](repeating: 0, count: o * inner)
        let po = out.mutablePointer(), px = x.basePointer
        for a in 0..<o {
            for i in 0..<inner {
                var best = px[a * n * inner + i], bi = 0
                for j in 1..<n {
                    let v = px[(a * n + j) * inner + i]
                    if v > best || (best.isNaN && !v.isNaN) { best = v; bi = j }
                }
                po[a * inner + i] = best
                idx[a * inner + i] = Int32(bi)
            }
        }
        return (out, idx)
    }

    /// Repeats `g` (shape of a reduction over `axis`) N times along that axis of `shape`,
    /// multiplied by `factor`.
    public static func expandAlong(_ g: Tensor, to shape: [Int], axis: Int, factor: Float = 1) -> Tensor {
        let (o, n, inner, _) = axisView(shape, axis)
        precondition(g.count == o * inner, "expandAlong: \(g.shape) does not match \(shape) without axis \(axis)")
        var out = Tensor(uninitialized: shape)
        let po = out.mutablePointer(), pg = g.basePointer
        for a in 0..<o {
            let src = pg + a * inner
            for j in 0..<n {
                let dst = po + (a * n + j) * inner
                for i in 0..<inner { dst[i] = src[i] * factor }
            }
        }
        return out
    }

    /// Softmax along the last axis (max-subtracted; rows of -inf give zeros, not NaN).
    public static func softmax(_ x: Tensor) -> Tensor {
        let c = x.shape.last ?? 1, rows = x.count / Swift.max(c, 1)
        var out = Tensor(uninitialized: x.shape)
        let po = out.mutablePointer(), px = x.basePointer
        Threading.parallelChunks(rows, costPerItem: c * 8) { r in
            for row in r { softmaxRow(px + row * c, po + row * c, c) }
        }
        return out
    }

    /// Softmax of one row of `c` values into `dst` (zeros when every value is -inf).
    @inlinable
    static func softmaxRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ c: Int) {
        VectorMath.softmaxRow(src, dst, c)
    }

    /// Log-softmax along the last axis.
    public static func logSoftmax(_ x: Tensor) -> Tensor {
        let c = x.shape.last ?? 1, rows = x.count / Swift.max(c, 1)
        var out = Tensor(uninitialized: x.shape)
        let po = out.mutablePointer(), px = x.basePointer
        Threading.parallelChunks(rows, costPerItem: c * 8) { r in
            for row in r {
                let src = px + row * c, dst = po + row * c
                let lse = logSumExp(src, c)
                for j in 0..<c { dst[j] = src[j] - lse }
            }
        }
        return out
    }

    /// log(sum(exp(row))) of `c` values, max-subtracted.
    @inlinable
    static func logSumExp(_ src: UnsafePointer<Float>, _ c: Int) -> Float {
        VectorMath.logSumExp(src, c)
    }

    /// Backward of softmax along the last axis: dx = y * (g - sum(g * y)).
    public static func softmaxBackward(output y: Tensor, grad g: Tensor) -> Tensor {
        let c = y.shape.last ?? 1, rows = y.count / Swift.max(c, 1)
        var out = Tensor(uninitialized: y.shape)
        let po = out.mutablePointer(), py = y.basePointer, pg = g.basePointer
        Threading.parallelChunks(rows, costPerItem: c * 4) { r in
            for row in r {
                let yr = py + row * c, gr = pg + row * c, dr = po + row * c
                var dot: Float = 0
                for j in 0..<c { dot += yr[j] * gr[j] }
                for j in 0..<c { dr[j] = yr[j] * (gr[j] - dot) }
            }
        }
        return out
    }

    /// Backward of log-softmax along the last axis: dx = g - softmax * sum(g).
    public static func logSoftmaxBackward(output y: Tensor, grad g: Tensor) -> Tensor {
        let c = y.shape.last ?? 1, rows = y.count / Swift.max(c, 1)
        var out = Tensor(uninitialized: y.shape)
        let po = out.mutablePointer(), py = y.basePointer, pg = g.basePointer
        Threading.parallelChunks(rows, costPerItem: c * 8) { r in
            for row in r {
                let yr = py + row * c, gr = pg + row * c, dr = po + row * c
                var s: Float = 0
                for j in 0..<c { s += gr[j] }
                for j in 0..<c { dr[j] = gr[j] - Foundation.exp(yr[j]) * s }
            }
        }
        return out
    }
}
