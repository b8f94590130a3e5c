// Shape and indexing ops: reshape, permute, concat, slice/split, row gathers, embedding,
// masked mean pooling, dropout.
//
// Dimension legend: concat/slice view tensors as [O, N, I] around the axis; gatherRows
// and embedding use x/weight [N, D] (V vocabulary rows for embedding) and indices [M];
// pooling x [B, T, D] with mask [B*T].
import Foundation

extension Kernels {
    /// Permutes dimensions: output dimension i is input dimension `dims[i]`.
    public static func permute(_ x: Tensor, _ dims: [Int]) -> Tensor {
        precondition(dims.count == x.rank && Set(dims) == Set(0..<x.rank), "permute: \(dims) is not a permutation of rank \(x.rank)")
        let outShape = dims.map { x.shape[$0] }
        var inStrides = [Int](repeating: 1, count: x.rank)
        for i in stride(from: x.rank - 2, through: 0, by: -1) { inStrides[i] = inStrides[i + 1] * x.shape[i + 1] }
        let (cd, cs) = coalesce(outShape, [dims.map { inStrides[$0] }])
        var out = Tensor(uninitialized: outShape)
        if out.count == 0 { return out }
        let inner = cd[cd.count - 1], innerStride = cs[0][cd.count - 1], outer = out.count / inner
        let po = out.mutablePointer(), px = x.basePointer
        Threading.parallelChunks(outer, costPerItem: inner) { rows in
            for row in rows {
                var rem = row, off = 0
                for d in stride(from: cd.count - 2, through: 0, by: -1) {
                    off += (rem % cd[d]) * cs[0][d]
                    rem /= cd[d]
                }
                let dst = po + row * inner, src = px + off
                if innerStride == 1 { dst.update(from: src, count: inner) }
                else { for j in 0..<inner { dst[j] = src[j * innerStride] } }
            }
        }
        return out
    }

    /// Concatenates tensors along `axis` (all other dimensions equal).
    public static func concat(_ xs: [Tensor], axis: Int) -> Tensor {
        precondition(!xs.isEmpty, "concat of no tensors")
        let (o, _, inner, ax) = axisView(xs[0].shape, axis)
        var outShape = xs[0].shape
        outShape[ax] = xs.reduce(0) { $0 + $1.shape[ax] }
        for x in xs {
            var s = x.shape
            s[ax] = outShape[ax]
            precondition(s == outShape, "concat: shapes \(xs.map { $0.shape }) differ outside axis \(axis)")
        }
        var out = Tensor(uninitialized: outShape)
        let po = out.mutablePointer(), total = outShape[ax]
        var start = 0
        for x in xs {
            let n = x.shape[ax], px = x.basePointer
            for a in 0..<o { (po + (a * total + start) * inner).update(from: px + a * n * inner, count: n * inner) }
            start += n
        }
        return out
    }

    /// Elements `range` along `axis` (a contiguous copy).
    public static func slice(_ x: Tensor, axis: Int, range: Range<Int>) -> Tensor {
        let (o, n, inner, ax) = axisView(x.shape, axis)
        precondition(range.lowerBound >= 0 && range.upperBound <= n, "slice \(range) out of bounds for axis \(axis) of \(x.shape)")
        var outShape = x.shape
        outShape[ax] = range.count
        var out = Tensor(uninitialized: outShape)
        let po = out.mutablePointer(), px = x.basePointer, len = range.count * inner
        for a in 0..<o { (po + a * len).update(from: px + (a * n + range.lowerBound) * inner, count: len) }
        return out
    }

    /// x[..., range, ...] += g along `axis` (g has x's shape with `range.count` on that axis):
    /// the backward of a slice accumulated in place.
    public static func addIntoSlice(_ x: inout Tensor, _ g: Tensor, axis: Int, range: Range<Int>) {
        let (o, n, inner, ax) = axisView(x.shape, axis)
        precondition(range.lowerBound >= 0 && range.upperBound <= n && g.count == o * range.count * inner,
                     "addIntoSlice: gradient \(g.shape) does not fit \(range) of axis \(ax) of \(x.shape)")
        let px = x.mutablePointer(), pg = g.basePointer, len = range.count * inner
        for a in 0..<o {
            let dst = px + (a * n + range.lowerBound) * inner, src = pg + a * len
            for i in 0..<len { dst[i] += src[i] }
        }
    }

    /// Splits the columns of y [N, sum(widths)] into [N, w] tensors.
    public static func splitColumns(_ y: Tensor, widths: [Int]) -> [Tensor] {
        precondition(y.rank == 2 && widths.reduce(0, +) == y.shape[1], "splitColumns: \(y.shape) into widths \(widths)")
        let n = y.shape[0], total = y.shape[1], py = y.basePointer
        var start = 0
        return widths.map { w in
            defer { start += w }
            var part = Tensor(uninitialized: [n, w])
            let out = part.mutablePointer()
            for r in 0..<n { (out + r * w).update(from: py + r * total + start, count: w) }
            return part
        }
    }

    /// Rows `indices` of x [N, D] -> [M, D].
    public static func gatherRows(_ x: Tensor, indices: [Int]) -> Tensor {
        precondition(x.rank == 2, "gatherRows needs [N, D], got \(x.shape)")
        let n = x.shape[0], d = x.shape[1]
        var out = Tensor(uninitialized: [indices.count, d])
        let po = out.mutablePointer(), px = x.basePointer
        for (r, i) in indices.enumerated() {
            precondition(i >= 0 && i < n, "gatherRows: index \(i) out of range 0..<\(n)")
            (po + r * d).update(from: px + i * d, count: d)
        }
        return out
    }

    /// Adds rows of g [M, D] into a zero [N, D] at `indices` (backward of gatherRows).
    public static func scatterAddRows(_ g: Tensor, indices: [Int], rows n: Int) -> Tensor {
        let d = g.shape[1]
        var out = Tensor(zeros: [n, d])
        let po = out.mutablePointer(), pg = g.basePointer
        for (r, i) in indices.enumerated() {
            let dst = po + i * d, src = pg + r * d
            for j in 0..<d { dst[j] += src[j] }
        }
        return out
    }

    /// Weighted mean over positions: out[b] = sum_t m[b,t] x[b,t] / sum_t m[b,t] (0 if the
    /// weights sum to 0). x [B, T, D], mask [B*T] -> [B, D].
    public static func maskedMeanPool(_ x: Tensor, mask: [Float]) -> Tensor {
        precondition(x.rank == 3 && mask.count == x.shape[0] * x.shape[1],
                     "maskedMeanPool: x must be [B, T, D] with B*T mask weights, got \(x.shape), \(mask.count)")
        let b = x.shape[0], t = x.shape[1], d = x.shape[2]
        var out = Tensor(zeros: [b, d])
        let po = out.mutablePointer(), px = x.basePointer
        for bi in 0..<b {
            var total: Float = 0
            for ti in 0..<t { total += mask[bi * t + ti] }
            guard total != 0 else { continue }
            let dst = po + bi * d
            for ti in 0..<t {
                let w = mask[bi * t + ti] / total
                if w == 0 { continue }
                let src = px + (bi * t + ti) * d
                for j in 0..<d { dst[j] += w * src[j] }
            }
        }
        return out
    }
}

extension Ops {
    /// The same elements with a new shape (one dimension may be -1).
    public static func reshape(_ x: Variable, _ shape: [Int]) -> Variable {
        let y = x.value.reshaped(shape)
        guard Autograd.records(x) else { return Variable(y) }
        let s = x.shape
        return Variable(y, parents: [x]) { g, _ in [g.reshaped(s)] }
    }

    /// Permutes dimensions (output dimension i is input dimension `dims[i]`), e.g. [0, 2, 1, 3]
    /// turns [B, T, H, Dh] into [B, H, T, Dh].
    public static func permute(_ x: Variable, _ dims: [Int]) -> Variable {
        let y = Kernels.permute(x.value, dims)
        guard Autograd.records(x) else { return Variable(y) }
        var inverse = [Int](repeating: 0, count: dims.count)
        for (i, d) in dims.enumerated() { inverse[d] = i }
        return Variable(y, parents: [x]) { g, _ in [Kernels.permute(g, inverse)] }
    }

    /// Swaps two dimensions.
    public static func transpose(_ x: Variable, _ a: Int, _ b: Int) -> Variable {
        var dims = Array(0..<x.value.rank)
        dims.swapAt(a < 0 ? a + dims.count : a, b < 0 ? b + dims.count : b)
        return permute(x, dims)
    }

    /// Concatenation along `axis`.
    public static func concat(_ xs: [Variable], axis: Int) -> Variable {
        let y = Kernels.concat(xs.map { $0.value }, axis: axis)
        guard Autograd.records(xs) else { return Variable(y) }
        let sizes = xs.map { $0.shape[Kernels.axisView($0.shape, axis).axis] }
        return Variable(y, parents: xs) { g, need in
            var start = 0
            return sizes.enumerated().map { i, n in
                defer { start += n }
                return need[i] ? Kernels.slice(g, axis: axis, range: start..<(start + n)) : nil
            }
        }
    }

    /// Elements `range` along `axis`.
    public static func slice(_ x: Variable, axis: Int, range: Range<Int>) -> Variable {
        let y = Kernels.slice(x.value, axis: axis, range: range)
        guard Autograd.records(x) else { return Variable(y) }
        let shape = x.shape
        // The engine adds g into the parent's gradient itself (`slice:`); the closure states
        // the same gradient for any other reader of the tape.
        return Variable(y, parents: [x], slice: (axis, range)) { g, _ in
            var full = Tensor(zeros: shape)
            Kernels.addIntoSlice(&full, g, axis: axis, range: range)
            return [full]
        }
    }

    /// Splits along `axis` into consecutive pieces of the given sizes.
    public static func split(_ x: Variable, axis: Int, sizes: [Int]) -> [Variable] {
        precondition(sizes.reduce(0, +) == x.shape[Kernels.axisView(x.shape, axis).axis],
                     "split: sizes \(sizes) do not add up to axis \(axis) of \(x.shape)")
        var start = 0
        return sizes.map { n in
            defer { start += n }
            return slice(x, axis: axis, range: start..<(start + n))
        }
    }

    /// Rows `indices` of x [N, D] -> [M, D].
    public static func gatherRows(_ x: Variable, indices: [Int]) -> Variable {
        let y = Kernels.gatherRows(x.value, indices: indices)
        guard Autograd.records(x) else { return Variable(y) }
        let n = x.shape[0]
        return Variable(y, parents: [x]) { g, _ in [Kernels.scatterAddRows(g, indices: indices, rows: n)] }
    }

    /// Embedding lookup: rows `ids` of weight [V, D] -> [N, D].
    public static func embedding(weight: Variable, ids: [Int]) -> Variable { gatherRows(weight, indices: ids) }

    /// Weighted mean over positions of x [B, T, D] with weights [B*T] (1 keep, 0 padding) -> [B, D].
    public static func maskedMeanPool(_ x: Variable, mask: [Float]) -> Variable {
        let y = Kernels.maskedMeanPool(x.value, mask: mask)
        guard Autograd.records(x) else { return Variable(y) }
        let shape = x.shape
        return Variable(y, parents: [x]) { g, _ in
            let b = shape[0], t = shape[1], d = shape[2]
            var dx = Tensor(zeros: shape)
            let pd = dx.mutablePointer(), pg = g.basePointer
            for bi in 0..<b {
                var total: Float = 0
                for ti in 0..<t { total += mask[bi * t + ti] }
                guard total != 0 else { continue }
                for ti in 0..<t {
                    let w = mask[bi * t + ti] / total
                    let dst = pd + (bi * t + ti) * d, src = pg + bi * d
                    for j in 0..<d { dst[j] = w * src[j] }
                }
            }
            return [dx]
        }
    }

    /// Masked mean pooling with a Boolean mask [B*T] (false = padding).
    public static func maskedMeanPool(_ x: Variable, mask: [Bool]) -> Variable {
        maskedMeanPool(x, mask: mask.map { $0 ? 1 : 0 })
    }

    /// Inverted dropout: zeroes elements with probability `p` and scales the rest by 1/(1-p);
    /// identity when `training` is false or p == 0.
    public static func dropout(_ x: Variable, p: Float, rng: inout SplitMix64, training: Bool = true) -> Variable {
        guard training, p > 0 else { return x }
        let mask = Tensor.dropoutMask(shape: x.shape, p: p, rng: &rng)
        return mul(x, Variable(mask))
    }
}
