// The LM head and the token NLL as one pass over a frozen head weight, for losses on a few
// rows (PGD's target tokens). Composed, the head reads the whole weight twice per step
// (logits x W^T, then the gradient dlogits W) and stores [R, V] logits and their gradient;
// for 4 rows of SmolLM2 that is two 113 MB sweeps doing little arithmetic each. Here every
// block of W is read once: its logits, an online softmax (running max and sum, as in
// flash attention) and its share of the gradient sum_v p_v W_v are computed while the
// block is in cache, and the partial states of the vocabulary ranges are merged at the end.
//
// Dimension legend: R rows (tokens with a loss), D model width, V vocabulary; a block is
// `vocabBlock` rows of W.
import Foundation

extension Kernels {
    /// Vocabulary rows per block: 64 rows of W (147 KB at D = 576) stay in L2 between their
    /// dot products and the gradient update that reads them again.
    static let vocabBlock = 64

    /// For x [R, D] and W [V, D]: each row's NLL of `targets[r]` under
    /// softmax(softcap?(x W^T)), and the gradient of the sum of those NLLs with respect to x
    /// ([R, D]). Rows whose target is `ignoreIndex` get NLL 0 and a zero gradient.
    /// softcap(z) = cap * tanh(z / cap), as Gemma-2's final logits. Without `gradient` the
    /// returned dx is zero and the pass only reads each block once for its logits.
    public static func linearCrossEntropy(x: Tensor, weight: Tensor, softcap: Float?, targets: [Int],
                                          ignoreIndex: Int = -100, gradient: Bool = true) -> (nll: [Float], dx: Tensor) {
        precondition(weight.rank == 2 && x.rank >= 1 && x.shape[x.rank - 1] == weight.shape[1],
                     "linearCrossEntropy: x \(x.shape) does not fit the head weight \(weight.shape)")
        let v = weight.shape[0], d = weight.shape[1], r = x.count / Swift.max(d, 1)
        checkTargets(targets, rows: r, vocabulary: v, ignoreIndex: ignoreIndex, caller: "linearCrossEntropy")
        var nll = [Float](repeating: 0, count: r)
        var dx = Tensor(zeros: x.shape)
        let live = (0..<r).filter { targets[$0] != ignoreIndex }
        guard !live.isEmpty, v > 0, d > 0 else { return (nll, dx) }

        let blocks = (v + vocabBlock - 1) / vocabBlock
        let parallel = Threading.kernelThreads > 1 && r * v * d >= Threading.gemmSplitThreshold
        let chunks = parallel ? Swift.min(blocks, Threading.kernelThreads * 4) : 1
        let perChunk = (blocks + chunks - 1) / chunks
        // Per chunk and row: running max, running sum of exp(l - max), and the running
        // gradient sum_v exp(l_v - max) c_v W_v (c_v = dsoftcap/dz, 1 without a cap).
        var runMax = [Float](repeating: -.infinity, count: chunks * r)
        var runSum = [Float](repeating: 0, count: chunks * r)
        var runGrad = [Float](repeating: 0, count: chunks * r * d)
        // The target's logit and c per row, written by the chunk whose range holds the target.
        var targetLogit = [Float](repeating: 0, count: r), targetSlope = [Float](repeating: 1, count: r)
        let px = x.basePointer, pw = weight.basePointer
        runMax.withUnsafeMutableBufferPointer { mb in runSum.withUnsafeMutableBufferPointer { sb in
        runGrad.withUnsafeMutableBufferPointer { gb in targetLogit.withUnsafeMutableBufferPointer { tb in
        targetSlope.withUnsafeMutableBufferPointer { cb in live.withUnsafeBufferPointer { lb in
            let state = OnlineSoftmaxState(max: mb.baseAddress!, sum: sb.baseAddress!, grad: gb.baseAddress!,
                                           targetLogit: tb.baseAddress!, targetSlope: cb.baseAddress!)
            let rowsLive = UnsafeBufferPointer(rebasing: lb[...])
            Threading.parallelFor(chunks: chunks, chunks) { chunkRange in
                var scratch = [Float](repeating: 0, count: r * vocabBlock)
                scratch.withUnsafeMutableBufferPointer { sc in
                    for c in chunkRange {
                        let lo = c * perChunk * vocabBlock, hi = Swift.min(v, (c + 1) * perChunk * vocabBlock)
                        var b0 = lo
                        while b0 < hi {
                            let b1 = Swift.min(hi, b0 + vocabBlock)
                            headBlock(x: px, w: pw, d: d, rows: rowsLive, block: b0..<b1, targets: targets,
                                      softcap: softcap, logits: sc.baseAddress!, state: state, slot: c * r,
                                      gradient: gradient)
                            b0 = b1
                        }
                    }
                }
            }
        } } } } } }

        // Merge the chunks: lse = M + log(sum_c s_c e^(m_c - M)); dx = grad / S - c_t W_t.
        let pdx = dx.mutablePointer()
        for row in live {
            var m = -Float.infinity
            for c in 0..<chunks { m = Swift.max(m, runMax[c * r + row]) }
            var s: Float = 0
            let out = pdx + row * d
            for c in 0..<chunks where runMax[c * r + row] > -.infinity {
                let f = Foundation.exp(runMax[c * r + row] - m)
                s += runSum[c * r + row] * f
                if gradient { runGrad.withUnsafeBufferPointer { g in
                    let src = g.baseAddress! + (c * r + row) * d
                    for j in 0..<d { out[j] += f * src[j] }
                } }
            }
            nll[row] = m + Foundation.log(s) - targetLogit[row]
            guard gradient else { continue }
            let inv = 1 / s, slope = targetSlope[row], wt = pw + targets[row] * d
            for j in 0..<d { out[j] = out[j] * inv - slope * wt[j] }
        }
        return (nll, dx)
    }

    /// Running softmax state of one chunk (rows at `slot + row`) and the per-row target values.
    struct OnlineSoftmaxState: @unchecked Sendable {
        // @unchecked: each chunk writes only its own slots; a target's row entries are
        // written by the one chunk whose vocabulary range holds it.
        let max: UnsafeMutablePointer<Float>, sum: UnsafeMutablePointer<Float>, grad: UnsafeMutablePointer<Float>
        let targetLogit: UnsafeMutablePointer<Float>, targetSlope: UnsafeMutablePointer<Float>
    }

    /// One block of vocabulary rows: logits of the live rows, the online softmax update, and
    /// the block's gradient contribution. `logits` is scratch of R x vocabBlock floats.
    static func headBlock(x: UnsafePointer<Float>, w: UnsafePointer<Float>, d: Int, rows: UnsafeBufferPointer<Int>,
                          block: Range<Int>, targets: [Int], softcap: Float?, logits: UnsafeMutablePointer<Float>,
                          state: OnlineSoftmaxState, slot: Int, gradient: Bool) {
        let n = block.count, b0 = block.lowerBound
        // 1. Logits: four rows against two vocabulary rows at a time (padding repeats the last).
        var g = 0
        while g < rows.count {
            let i0 = g, i1 = Swift.min(g + 1, rows.count - 1), i2 = Swift.min(g + 2, rows.count - 1), i3 = Swift.min(g + 3, rows.count - 1)
            let x0 = x + rows[i0] * d, x1 = x + rows[i1] * d, x2 = x + rows[i2] * d, x3 = x + rows[i3] * d
            var j = 0
            while j < n {
                let j1 = Swift.min(j + 1, n - 1)
                let dots = dot4x2(x0, x1, x2, x3, w + (b0 + j) * d, w + (b0 + j1) * d, d, ahead: headPrefetchRows * d)
                // Padded lanes repeat a real row or column, so their writes repeat real values.
                logits[i0 * vocabBlock + j] = dots[0]; logits[i0 * vocabBlock + j1] = dots[4]
                logits[i1 * vocabBlock + j] = dots[1]; logits[i1 * vocabBlock + j1] = dots[5]
                logits[i2 * vocabBlock + j] = dots[2]; logits[i2 * vocabBlock + j1] = dots[6]
                logits[i3 * vocabBlock + j] = dots[3]; logits[i3 * vocabBlock + j1] = dots[7]
                j += 2
            }
            g += 4
        }
        // 2. Per row: soft-cap, the target, the new running max, then the weights
        //    exp(l - max) * c into the scratch row (the gradient's coefficients).
        for (i, row) in rows.enumerated() {
            let l = logits + i * vocabBlock
            if let cap = softcap { for j in 0..<n { l[j] = cap * Foundation.tanh(l[j] / cap) } }
            let t = targets[row]
            if block.contains(t) {
                state.targetLogit[row] = l[t - b0]
                if let cap = softcap { let u = l[t - b0] / cap; state.targetSlope[row] = 1 - u * u }
            }
            let at = slot + row
            let m = Swift.max(state.max[at], VectorMath.maximum(l, n))
            if m > state.max[at] {
                if state.max[at] > -.infinity {
                    let f = Foundation.exp(state.max[at] - m)
                    state.sum[at] *= f
                    if gradient {
                        let gr = state.grad + at * d
                        for j in 0..<d { gr[j] *= f }
                    }
                }
                state.max[at] = m
            }
            let mv = SIMD8<Float>(repeating: m)
            var acc = SIMD8<Float>()
            var j = 0
            while j < n {
                let c = Swift.min(8, n - j)
                let lv = VectorMath.load(l + j, count: c, fill: -.infinity)
                let e = VectorMath.exp(lv - mv)
                acc += e
                var wv = e
                if let cap = softcap {
                    let u = lv.replacing(with: 0, where: e .== 0) / SIMD8<Float>(repeating: cap)
                    wv = e * (1 - u * u)
                }
                VectorMath.store(wv, l + j, count: c)
                j += 8
            }
            state.sum[at] += acc.sum()
        }
        // 3. grad_row += sum_j w[row][j] W[b0 + j]: four vocabulary rows (in L1 after the
        //    dot products) per sweep over D, one row's running gradient at a time.
        guard gradient else { return }
        var j = 0
        while j < n {
            let k = Swift.min(4, n - j)
            let e0 = w + (b0 + j) * d, e1 = w + (b0 + j + Swift.min(1, k - 1)) * d
            let e2 = w + (b0 + j + Swift.min(2, k - 1)) * d, e3 = w + (b0 + j + Swift.min(3, k - 1)) * d
            for (i, row) in rows.enumerated() {
                let l = logits + i * vocabBlock + j
                let s0 = l[0], s1: Float = k > 1 ? l[1] : 0, s2: Float = k > 2 ? l[2] : 0, s3: Float = k > 3 ? l[3] : 0
                let w0 = HeadVector(repeating: s0), w1 = HeadVector(repeating: s1)
                let w2 = HeadVector(repeating: s2), w3 = HeadVector(repeating: s3)
                let gp = state.grad + (slot + row) * d
                var q = 0
                while q + HeadVector.scalarCount <= d {
                    var acc = loadHead(UnsafePointer(gp + q))
                    acc.addProduct(w0, loadHead(e0 + q))
                    acc.addProduct(w1, loadHead(e1 + q))
                    acc.addProduct(w2, loadHead(e2 + q))
                    acc.addProduct(w3, loadHead(e3 + q))
                    UnsafeMutableRawPointer(gp + q).storeBytes(of: acc, as: HeadVector.self)
                    q += HeadVector.scalarCount
                }
                while q < d {
                    gp[q] += s0 * e0[q] + s1 * e1[q] + s2 * e2[q] + s3 * e3[q]
                    q += 1
                }
            }
            j += 4
        }
    }

    /// Rows of W ahead of the two being read whose lines the logits loop requests: the head
    /// streams W from memory once per step, and without the requests 65% of its time sat on
    /// the loads of W (perf annotate, Intel Xeon).
    static let headPrefetchRows = 4

    /// The eight dot products of rows x0..x3 with w0 and w1 (length d): lanes 0-3 against
    /// w0, lanes 4-7 against w1. Each step also requests the line `ahead` floats past w0 and w1.
    @inline(__always)
    static func dot4x2(_ x0: UnsafePointer<Float>, _ x1: UnsafePointer<Float>, _ x2: UnsafePointer<Float>,
                       _ x3: UnsafePointer<Float>, _ w0: UnsafePointer<Float>, _ w1: UnsafePointer<Float>,
                       _ d: Int, ahead: Int) -> SIMD8<Float> {
        typealias V = HeadVector
        var a00 = V(), a10 = V(), a20 = V(), a30 = V(), a01 = V(), a11 = V(), a21 = V(), a31 = V()
        var q = 0
        while q + V.scalarCount <= d {
            if q & 15 == 0 { prefetch(w0 + q + ahead); prefetch(w1 + q + ahead) }  // one request per 64-byte line
            let e0 = loadHead(w0 + q), e1 = loadHead(w1 + q)
            var u = loadHead(x0 + q); a00.addProduct(u, e0); a01.addProduct(u, e1)
            u = loadHead(x1 + q); a10.addProduct(u, e0); a11.addProduct(u, e1)
            u = loadHead(x2 + q); a20.addProduct(u, e0); a21.addProduct(u, e1)
            u = loadHead(x3 + q); a30.addProduct(u, e0); a31.addProduct(u, e1)
            q += V.scalarCount
        }
        var out = SIMD8<Float>(a00.sum(), a10.sum(), a20.sum(), a30.sum(), a01.sum(), a11.sum(), a21.sum(), a31.sum())
        while q < d {
            out += SIMD8<Float>(x0[q] * w0[q], x1[q] * w0[q], x2[q] * w0[q], x3[q] * w0[q],
                                x0[q] * w1[q], x1[q] * w1[q], x2[q] * w1[q], x3[q] * w1[q])
            q += 1
        }
        return out
    }

#if AUDITGAP_AVX512
    /// The head's vector: 16 lanes on AVX-512 builds. The head is not memory-bound: at 4 rows
    /// x 49152 x 576 it ran at 8.6 GB/s of weight with 8 lanes against 19 GB/s for a plain
    /// read of the weight on the same two threads (Intel Xeon).
    typealias HeadVector = SIMD16<Float>
#else
    typealias HeadVector = SIMD8<Float>
#endif

    @inline(__always)
    static func loadHead(_ p: UnsafePointer<Float>) -> HeadVector { UnsafeRawPointer(p).loadUnaligned(as: HeadVector.self) }
}

extension Ops {
    /// Mean token NLL of softcap?(x W^T) against `targets` (rows whose target is
    /// `ignoreIndex` skipped) for a frozen head weight W [V, D], with the LM head and the loss
    /// as one pass over W (`Kernels.linearCrossEntropy`): the [R, V] logits are never
    /// stored. Equals `crossEntropy(logits: softcap(linear(x, W)), targets:)` up to float
    /// rounding. Also returns each row's NLL (0 for ignored rows). The gradient reaches x only.
    public static func linearCrossEntropy(_ x: Variable, weight: Tensor, softcap: Float? = nil, targets: [Int],
                                          ignoreIndex: Int = -100) -> (loss: Variable, rowNLL: [Float]) {
        let records = Autograd.records(x)
        let (nll, dx) = Kernels.linearCrossEntropy(x: x.value, weight: weight, softcap: softcap, targets: targets,
                                                   ignoreIndex: ignoreIndex, gradient: records)
        let count = Kernels.targetCount(targets, ignoreIndex: ignoreIndex)
        let y = Kernels.meanLoss(nll, count: count)
        guard records else { return (Variable(y), nll) }
        return (Variable(y, parents: [x]) { g, _ in
            [count == 0 ? Tensor(zeros: dx.shape) : Kernels.scale(dx, by: g.item / Float(count))]
        }, nll)
    }
}

// MARK: - Many rows: chunks of rows through sgemm, for training

extension Kernels {
    /// Rows per chunk of `chunkedLinearCrossEntropy` for a vocabulary of `vocab`: as many as
    /// fit 2^25 logits (128 MB), between 64 and 512 (512 rows, 100 MB, for SmolLM2's 49152;
    /// 128 for Gemma-2's 256000). The chunk's gradient is written over its logits, so a
    /// 512-row SmolLM2 step stores one [R, V] buffer instead of logits and their gradient.
    /// Smaller chunks save more memory but cost time: every chunk packs the whole head weight
    /// again for its two products and rewrites dW. On the 512-row SmolLM2 head (forward and
    /// backward) 128-row chunks took 0.83 s against 0.70 s composed, and in the training
    /// step 256-row chunks were about 3% slower than the composed head.
    static func headRowChunk(vocab: Int) -> Int { Swift.min(512, Swift.max(64, (1 << 25) / Swift.max(1, vocab))) }

    /// For x [R, D] and W [V, D]: each row's NLL of `targets[r]` under
    /// softmax(softcap?(x W^T)) (0 for rows whose target is `ignoreIndex`), and the
    /// gradients of sum_r rowWeight * NLL_r with respect to x ([R, D], when `needX`) and W
    /// ([V, D], when `needW`). Rows are taken `headRowChunk(vocab:)` at a time: a chunk's logits
    /// (sgemm), its log-sum-exp and NLLs, its logit gradient in place
    /// (rowWeight * (softmax - onehot) * dsoftcap), then dx_chunk = G W and dW += G^T x_chunk.
    /// Only one chunk's logits exist at a time. For a training step's many rows; few rows
    /// with a frozen W go through `linearCrossEntropy`, which reads W once.
    public static func chunkedLinearCrossEntropy(x: Tensor, weight: Tensor, softcap: Float?, targets: [Int],
                                                 ignoreIndex: Int = -100, rowWeight: Float, needX: Bool,
                                                 needW: Bool) -> (nll: [Float], dx: Tensor?, dw: Tensor?) {
        precondition(weight.rank == 2 && x.rank >= 1 && x.shape[x.rank - 1] == weight.shape[1],
                     "chunkedLinearCrossEntropy: x \(x.shape) does not fit the head weight \(weight.shape)")
        let v = weight.shape[0], d = weight.shape[1], r = x.count / Swift.max(d, 1)
        checkTargets(targets, rows: r, vocabulary: v, ignoreIndex: ignoreIndex, caller: "chunkedLinearCrossEntropy")
        var nll = [Float](repeating: 0, count: r)
        // dx starts at zero (chunks without a target are never written); dW is written by the
        // first chunk with a target and zeroed only if there is none.
        var dx: Tensor? = nil, dw: Tensor? = nil
        var pdx: UnsafeMutablePointer<Float>? = nil, pdw: UnsafeMutablePointer<Float>? = nil
        if needX { var t = Tensor(zeros: x.shape); pdx = t.mutablePointer(); dx = t }
        if needW { var t = Tensor(uninitialized: weight.shape); pdw = t.mutablePointer(); dw = t }
        let px = x.basePointer, pw = weight.basePointer
        var wroteW = false
        defer { if let pdw, !wroteW { pdw.update(repeating: 0, count: v * d) } }
        guard r > 0, v > 0, d > 0 else { return (nll, dx, dw) }
        let gradient = needX || needW
        let chunkRows = headRowChunk(vocab: v)
        var logits = Tensor(uninitialized: [Swift.min(r, chunkRows), v])
        let pl = logits.mutablePointer()
        var r0 = 0
        while r0 < r {
            let c = Swift.min(chunkRows, r - r0)
            let chunkTargets = Array(targets[r0..<(r0 + c)])
            guard chunkTargets.contains(where: { $0 != ignoreIndex }) else { r0 += c; continue }
            sgemm(transA: false, transB: true, m: c, n: v, k: d, a: px + r0 * d, lda: d, b: pw, ldb: d, c: pl, ldc: v)
            if let cap = softcap {
                Threading.parallelChunks(c * v, costPerItem: transcendentalCost) { range in
                    for i in range { pl[i] = cap * Foundation.tanh(pl[i] / cap) }
                }
            }
            let (lp, lse) = targetLogProbabilitiesAndNormalizers(logits.rows(0..<c), targets: chunkTargets,
                                                                 ignoreIndex: ignoreIndex)
            for i in 0..<c { nll[r0 + i] = -lp[i] }
            if gradient {
                // In place, as crossEntropy's and softcap's backward passes compose it:
                // G = (rowWeight * exp(l - lse) - rowWeight [v = target]) * (1 - (l / cap)^2).
                Threading.parallelChunks(c, costPerItem: v * 8) { rows in
                    var slope = [Float](repeating: 1, count: softcap == nil ? 0 : v)
                    for i in rows {
                        let row = pl + i * v, t = chunkTargets[i]
                        guard t != ignoreIndex else { row.update(repeating: 0, count: v); continue }
                        if let cap = softcap {
                            for j in 0..<v { let y = row[j] / cap; slope[j] = 1 - y * y }
                        }
                        crossEntropyRowGradient(row, row, v, logSumExp: lse[i], target: t, weight: rowWeight)
                        if softcap != nil { for j in 0..<v { row[j] *= slope[j] } }
                    }
                }
                if let pdx {
                    sgemm(transA: false, transB: false, m: c, n: d, k: v, a: pl, lda: v, b: pw, ldb: d, c: pdx + r0 * d, ldc: d)
                }
                if let pdw {
                    sgemm(transA: true, transB: false, m: v, n: d, k: c, a: pl, lda: v, b: px + r0 * d, ldb: d,
                          beta: wroteW ? 1 : 0, c: pdw, ldc: d)
                    wroteW = true
                }
            }
            r0 += c
        }
        return (nll, dx, dw)
    }
}

extension Ops {
    /// Mean token NLL of softcap?(x W^T) against `targets` (rows whose target is
    /// `ignoreIndex` skipped), with gradients to x and to W as far as each records one:
    /// `Kernels.chunkedLinearCrossEntropy` computes the loss and both gradients in the
    /// forward pass, a chunk of rows at a time, so the [R, V] logits and their gradient are
    /// never stored (200 MB for a SmolLM2 training step of 512 rows); the backward only
    /// scales them by the upstream gradient. Equals
    /// `crossEntropy(logits: softcap(linear(x, W)), targets:)` up to float rounding. Also
    /// returns each row's NLL (0 for ignored rows). Run the backward once per graph: it
    /// hands its stored gradients over instead of copying them.
    public static func linearCrossEntropy(_ x: Variable, weight: Variable, softcap: Float? = nil, targets: [Int],
                                          ignoreIndex: Int = -100) -> (loss: Variable, rowNLL: [Float]) {
        let needX = Autograd.records(x), needW = Autograd.records(weight)
        let count = Kernels.targetCount(targets, ignoreIndex: ignoreIndex)
        let (nll, dx, dw) = Kernels.chunkedLinearCrossEntropy(
            x: x.value, weight: weight.value, softcap: softcap, targets: targets, ignoreIndex: ignoreIndex,
            rowWeight: count == 0 ? 0 : 1 / Float(count), needX: needX, needW: needW)
        let y = Kernels.meanLoss(nll, count: count)
        guard needX || needW else { return (Variable(y), nll) }
        let stored = StoredGradients(dx, dw)
        return (Variable(y, parents: [x, weight]) { g, needs in
            var (gx, gw) = stored.take()
            let s = g.item
            if s != 1 {
                scaleInPlace(&gx, s)
                scaleInPlace(&gw, s)
            }
            return [needs[0] ? gx : nil, needs[1] ? gw : nil]
        }, nll)
    }

    /// t *= s in place (t is cleared first so that its storage is not shared and is not
    /// copied on write).
    static func scaleInPlace(_ t: inout Tensor?, _ s: Float) {
        guard var y = t else { return }
        t = nil
        let p = y.mutablePointer(), n = y.count
        Threading.parallelChunks(n) { range in for i in range { p[i] *= s } }
        t = y
    }
}

/// Gradients computed in a forward pass, handed over once to the backward (so the
/// parameter's gradient does not share storage with the tape and later accumulation does
/// not copy it).
private final class StoredGradients: @unchecked Sendable {
    // @unchecked: set once in init and taken once by the backward on the calling thread.
    private var dx: Tensor?, dw: Tensor?
    private var taken = false
    init(_ dx: Tensor?, _ dw: Tensor?) { self.dx = dx; self.dw = dw }

    func take() -> (Tensor?, Tensor?) {
        precondition(!taken, "Ops.linearCrossEntropy: backward ran twice on one graph; build the loss again")
        taken = true
        defer { dx = nil; dw = nil }
        return (dx, dw)
    }
}
