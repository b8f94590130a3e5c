// A linear layer with LoRA terms on column ranges of its output, as one differentiable op:
// y = x W^T + b, then y[:, cols_m] += scale_m * (dropout_m(x) A_m^T) B_m^T for each adapter
// m (one per module; a fused q/k/v or gate/up weight carries one per slice). Composed from
// linear, split, dropout, two linears and addScaled it costs a copy of each module's output
// and of its LoRA sum, a mask tensor and a masked copy per module, and one more
// accumulation pass into x's gradient per module. Here the low-rank products are
// accumulated into the linear's own output by sgemm (beta 1, the scale on alpha), each mask
// is drawn in parallel straight into the masked input and kept as one bit per element, and
// the backward pass adds every module's input gradient into one buffer.
//
// Dimension legend: N rows, In input features, Out output features (all modules), R rank,
// Oc the columns of one adapter.

/// A LoRA term on columns `columns` of a linear layer's output: scale * (dropout_p(x) A^T) B^T
/// with A [R, In], B [Oc, R].
public struct LowRankAdapter {
    public let columns: Range<Int>
    public let a: Variable
    public let b: Variable
    public let scale: Float
    public let dropout: Float

    public init(columns: Range<Int>, a: Variable, b: Variable, scale: Float, dropout: Float) {
        self.columns = columns
        self.a = a
        self.b = b
        self.scale = scale
        self.dropout = dropout
    }
}

extension Ops {
    /// x W^T + bias with `adapters` added to their output columns (see `LowRankAdapter`).
    /// Adapters with dropout p > 0 take their masks from `rng` in order, each the next
    /// N*In outputs, exactly the values `Ops.dropout(x, p:, rng:)` would use, so results equal
    /// the composed ops up to rounding.
    public static func linear(_ x: Variable, weight: Variable, bias: Variable? = nil, packed: PackedMatrix? = nil,
                              adapters: [LowRankAdapter], rng: inout SplitMix64) -> Variable {
        guard !adapters.isEmpty else { return linear(x, weight: weight, bias: bias, packed: packed) }
        precondition(weight.value.rank == 2 && x.shape.last == weight.shape[1] && weight.shape[1] > 0,
                     "linear: input \(x.shape) does not match weight \(weight.shape) ([out, in])")
        let inF = weight.shape[1], outF = weight.shape[0]
        let n = x.value.count / inF
        var y = Kernels.linear(x.value, weight: weight.value, bias: bias?.value, packed: packed)
        let py = y.mutablePointer()
        var masked: [(input: Tensor, dropped: [UInt64], u: Tensor)] = []
        for ad in adapters {
            let rank = ad.a.shape[0]
            precondition(ad.a.value.rank == 2 && ad.b.value.rank == 2 && ad.a.shape[1] == inF && ad.b.shape[1] == rank
                         && ad.b.shape[0] == ad.columns.count && ad.columns.upperBound <= outF && ad.columns.lowerBound >= 0,
                         "linear: adapter A \(ad.a.shape), B \(ad.b.shape) on columns \(ad.columns) do not fit weight \(weight.shape)")
            precondition(ad.dropout >= 0 && ad.dropout < 1, "dropout probability must be in [0, 1), got \(ad.dropout)")
            let (xd, dropped) = droppedOut(x.value.reshaped([n, inF]), p: ad.dropout, rng: &rng)
            let u = Tensor.matmul(xd, ad.a.value, transposeB: true)  // [N, R]
            sgemm(transA: false, transB: true, m: n, n: ad.columns.count, k: rank, alpha: ad.scale, a: u.basePointer, lda: rank,
                  b: ad.b.value.basePointer, ldb: rank, beta: 1, c: py + ad.columns.lowerBound, ldc: outF)
            masked.append((xd, dropped, u))
        }
        var inputs = bias.map { [x, weight, $0] } ?? [x, weight]
        for ad in adapters { inputs += [ad.a, ad.b] }
        guard Autograd.records(inputs) else { return Variable(y) }
        let vx = x.value, vw = weight.value, xShape = x.shape, first = bias == nil ? 2 : 3
        return Variable(y, parents: inputs) { g, need in
            let g2 = g.reshaped([n, outF]), pg = g2.basePointer
            var grads = [Tensor?](repeating: nil, count: need.count)
            var dx: Tensor? = need[0] ? (packed.map { $0.transposedProduct(g2) } ?? Tensor.matmul(g2, vw)) : nil
            if need[1] { grads[1] = Tensor.matmul(g2, vx.reshaped([n, inF]), transposeA: true) }
            if bias != nil && need[2] { grads[2] = Kernels.sum(g2, axis: 0) }
            for (m, ad) in adapters.enumerated() {
                let needA = need[first + 2 * m], needB = need[first + 2 * m + 1]
                let rank = ad.a.shape[0], oc = ad.columns.count, gm = pg + ad.columns.lowerBound
                let (xd, dropped, u) = masked[m]
                if needB {  // dB = scale * g_m^T u
                    var db = Tensor(uninitialized: [oc, rank])
                    sgemm(transA: true, transB: false, m: oc, n: rank, k: n, alpha: ad.scale, a: gm, lda: outF,
                          b: u.basePointer, ldb: rank, c: db.mutablePointer(), ldc: rank)
                    grads[first + 2 * m + 1] = db
                }
                guard needA || dx != nil else { continue }
                var du = Tensor(uninitialized: [n, rank])  // scale * g_m B
                sgemm(transA: false, transB: false, m: n, n: rank, k: oc, alpha: ad.scale, a: gm, lda: outF,
                      b: ad.b.value.basePointer, ldb: rank, c: du.mutablePointer(), ldc: rank)
                if needA { grads[first + 2 * m] = Tensor.matmul(du, xd, transposeA: true) }  // dA = du^T xd
                guard dx != nil else { continue }
                let pdx = dx!.mutablePointer()
                if ad.dropout == 0 {  // dx += du A
                    sgemm(transA: false, transB: false, m: n, n: inF, k: rank, a: du.basePointer, lda: rank,
                          b: ad.a.value.basePointer, ldb: inF, beta: 1, c: pdx, ldc: inF)
                } else {  // dx += mask * keep * (du A)
                    let t = Tensor.matmul(du, ad.a.value)
                    addDropped(t.basePointer, into: pdx, bits: dropped, count: n * inF, keep: 1 / (1 - ad.dropout))
                }
            }
            grads[0] = dx?.reshaped(xShape)
            return grads
        }
    }

    /// x [N, In] with dropout p applied (x itself when p is 0) and which elements were
    /// dropped (one bit each, 64 per word). Consumes N*In outputs of `rng` when p > 0.
    static func droppedOut(_ x: Tensor, p: Float, rng: inout SplitMix64) -> (Tensor, [UInt64]) {
        guard p > 0 else { return (x, []) }
        let count = x.count, keep = 1 / (1 - p)
        let start = rng
        rng.skip(count)
        var t = Tensor(uninitialized: x.shape)
        var dropped = [UInt64](repeating: 0, count: (count + 63) / 64)
        let po = t.mutablePointer(), px = x.basePointer
        dropped.withUnsafeMutableBufferPointer { bits in
            let pb = bits.baseAddress!
            let threshold = SplitMix64.dropThreshold(p: p)
            // Whole 64-element words per chunk, so chunks never share a word.
            Threading.parallelChunks(bits.count, costPerItem: 64 * 8) { words in
                for w in words {
                    let lo = w * 64, len = Swift.min(count, lo + 64) - lo
                    let word = start.dropBits(from: lo, count: len, threshold: threshold)
                    pb[w] = word
                    for j in 0..<len {
                        let v = px[lo + j] * keep
                        po[lo + j] = (word >> UInt64(j)) & 1 == 0 ? v : 0
                    }
                }
            }
        }
        return (t, dropped)
    }

    /// dst[i] += src[i] * keep where bit i of `bits` is clear (a dropout mask's backward).
    static func addDropped(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, bits: [UInt64],
                           count: Int, keep: Float) {
        bits.withUnsafeBufferPointer { b in
            let pb = b.baseAddress!
            Threading.parallelChunks(b.count, costPerItem: 64 * 2) { words in
                for w in words {
                    let lo = w * 64, len = Swift.min(count, lo + 64) - lo, word = pb[w]
                    for j in 0..<len {
                        let v = dst[lo + j] + src[lo + j] * keep
                        dst[lo + j] = (word >> UInt64(j)) & 1 == 0 ? v : dst[lo + j]
                    }
                }
            }
        }
    }
}
