// The LoRA update y + scale * (dropout(x) A^T) B^T as one differentiable op. Composed from
// dropout, two linears and addScaled it costs a mask tensor, a masked copy, a low-rank
// output and three more elementwise passes per adapted module, forward and backward; here
// the mask is drawn in parallel straight into the masked input (and kept as one bit per
// element for the backward pass), the scale rides on the GEMMs' alpha and the low-rank
// product is accumulated onto a copy of y by sgemm (beta 1).
//
// Dimension legend: N rows, In input features, Out output features, R rank.

extension Ops {
    /// y + scale * (dropout_p(x) A^T) B^T for y [..., Out], x [..., In] (same leading
    /// shape), A [R, In], B [Out, R]. With p > 0 the mask takes the next N*In outputs of
    /// `rng`, exactly the values `Ops.dropout(x, p:, rng:)` would use, so results are
    /// identical to the composed ops.
    public static func lowRankUpdate(_ y: Variable, _ x: Variable, a: Variable, b: Variable, scale: Float,
                                     dropout p: Float, rng: inout SplitMix64) -> Variable {
        precondition(p >= 0 && p < 1, "dropout probability must be in [0, 1), got \(p)")
        let inF = a.shape[1], rank = a.shape[0], outF = b.shape[0]
        precondition(a.value.rank == 2 && b.value.rank == 2 && b.shape[1] == rank && x.shape.last == inF
                     && y.shape.last == outF && x.value.count / inF == y.value.count / outF,
                     "lowRankUpdate: x \(x.shape), A \(a.shape), B \(b.shape), y \(y.shape) do not fit")
        let n = x.value.count / inF, count = n * inF
        let keep = 1 / (1 - p)
        // The dropped-out input (x itself without dropout), and which elements were dropped
        // (one bit each, 64 per word) for the backward pass.
        let xd: Tensor
        var dropped = [UInt64]()
        if p > 0 {
            let start = rng
            rng.skip(count)
            var t = Tensor(uninitialized: [n, inF])
            dropped = [UInt64](repeating: 0, count: (count + 63) / 64)
            let po = t.mutablePointer(), px = x.value.basePointer
            dropped.withUnsafeMutableBufferPointer { bits in
                let pb = bits.baseAddress!
                // Whole 64-element words per chunk, so chunks never share a word.
                let threshold = SplitMix64.dropThreshold(p: p)
                Threading.parallelChunks(bits.count, costPerItem: 64 * 8) { words in
                    for w in words {
                        let lo = w * 64, len = Swift.min(count, lo + 64) - lo
                        let word = start.dropBits(from: lo, count: len, threshold: threshold)
                        pb[w] = word
                        Self.applyDropBits(word, px + lo, po + lo, len, keep)
                    }
                }
            }
            xd = t
        } else {
            xd = x.value.reshaped([n, inF])
        }
        let u = Tensor.matmul(xd, a.value, transposeB: true)  // [N, R]
        var out = y.value.copy()
        sgemm(transA: false, transB: true, m: n, n: outF, k: rank, alpha: scale, a: u.basePointer, lda: rank,
              b: b.value.basePointer, ldb: rank, beta: 1, c: out.mutablePointer(), ldc: outF)
        guard Autograd.records(y, x, a, b) else { return Variable(out) }
        let va = a.value, vb = b.value, xShape = x.shape
        return Variable(out, parents: [y, x, a, b]) { g, need in
            let g2 = g.reshaped([n, outF])
            var grads: [Tensor?] = [need[0] ? g : nil, nil, nil, nil]
            guard need[1] || need[2] || need[3] else { return grads }
            if need[3] {  // dB = scale * g^T u
                var db = Tensor(uninitialized: [outF, rank])
                sgemm(transA: true, transB: false, m: outF, n: rank, k: n, alpha: scale, a: g2.basePointer, lda: outF,
                      b: u.basePointer, ldb: rank, c: db.mutablePointer(), ldc: rank)
                grads[3] = db
            }
            guard need[1] || need[2] else { return grads }
            var du = Tensor(uninitialized: [n, rank])  // scale * g B
            sgemm(transA: false, transB: false, m: n, n: rank, k: outF, alpha: scale, a: g2.basePointer, lda: outF,
                  b: vb.basePointer, ldb: rank, c: du.mutablePointer(), ldc: rank)
            if need[2] { grads[2] = Tensor.matmul(du, xd, transposeA: true) }  // dA = du^T xd
            if need[1] {
                var dx = Tensor.matmul(du, va)  // [N, In]
                if p > 0 {
                    let pd = dx.mutablePointer()
                    dropped.withUnsafeBufferPointer { bits in
                        let pb = bits.baseAddress!
                        Threading.parallelChunks(bits.count, costPerItem: 64 * 2) { words in
                            for w in words {
                                let lo = w * 64
                                Self.applyDropBits(pb[w], pd + lo, pd + lo, Swift.min(count, lo + 64) - lo, keep)
                            }
                        }
                    }
                }
                grads[1] = dx.reshaped(xShape)
            }
            return grads
        }
    }

    /// dst[j] = src[j] * keep, or 0 where bit j of `word` is set (j < count <= 64); dst may
    /// be src. Written as a select so it compiles without branches.
    @inline(__always)
    static func applyDropBits(_ word: UInt64, _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>,
                              _ count: Int, _ keep: Float) {
        for j in 0..<count {
            let v = src[j] * keep
            dst[j] = (word >> UInt64(j)) & 1 == 0 ? v : 0
        }
    }
}
