// Scaled dot-product attention with grouped-query head sharing, optional soft-capping of
// the scores (applied before masking, as Gemma-2), causal / sliding-window / key-padding
// masks and a query position offset for KV-cached decoding.
//
// Dimension legend: q [B, Hq, T, Dh]; k, v [B, Hkv, S, Dh] with Hq a multiple of Hkv
// (query head h reads key/value head h / (Hq / Hkv)); scores and probabilities [T, S] per
// (batch, query head); keyMask [B*S] (false = padding); query t sits at key position
// t + queryOffset.
import Foundation

/// Which keys each query may attend to.
public struct AttentionMask: Sendable {
    /// Hide keys after the query's position.
    public var causal: Bool
    /// Only keys with queryPosition - keyPosition < window are visible (transformers' convention).
    public var slidingWindow: Int?
    /// Flat [B*S] key validity (false = padding); nil means every key is valid.
    public var keyMask: [Bool]?
    /// Position of query 0 among the keys (keys cached before the current queries).
    public var queryOffset: Int

    /// A mask description.
    public init(causal: Bool, slidingWindow: Int? = nil, keyMask: [Bool]? = nil, queryOffset: Int = 0) {
        self.causal = causal
        self.slidingWindow = slidingWindow
        self.keyMask = keyMask
        self.queryOffset = queryOffset
    }

    /// Whether query `t` of batch entry `b` sees key `s` (S keys per entry).
    @inlinable
    public func allows(b: Int, t: Int, s: Int, keyCount: Int) -> Bool {
        let qp = t + queryOffset
        if causal && s > qp { return false }
        if let w = slidingWindow, qp - s >= w { return false }
        if let keyMask, !keyMask[b * keyCount + s] { return false }
        return true
    }

    /// Keys that query position `qp` may see among `keyCount`, before padding: the causal
    /// bound and the sliding window (transformers' convention) as one range.
    @inlinable
    public static func visibleKeys(queryPosition qp: Int, keyCount: Int, causal: Bool, window: Int?) -> Range<Int> {
        let hi = causal ? Swift.min(keyCount, qp + 1) : keyCount
        let lo = Swift.min(hi, window.map { Swift.max(0, qp - $0 + 1) } ?? 0)
        return lo..<hi
    }

    /// The mask as an additive tensor [B, T, S]: 0 where visible, -inf where hidden.
    public func additive(batch: Int, queries: Int, keys: Int) -> Tensor {
        var out = Tensor(uninitialized: [batch, queries, keys])
        let p = out.mutablePointer()
        for b in 0..<batch { for t in 0..<queries { for s in 0..<keys {
            p[(b * queries + t) * keys + s] = allows(b: b, t: t, s: s, keyCount: keys) ? 0 : -Float.infinity
        } } }
        return out
    }
}

extension Kernels {
    /// Attention forward. Returns the output [B, Hq, T, Dh] and, when `keepProbabilities`,
    /// the probabilities [B, Hq, T, S] (masked entries 0; a fully masked row is all 0 and
    /// its output row is 0).
    public static func attention(q: Tensor, k: Tensor, v: Tensor, scale: Float, softcap: Float?,
                                 mask: AttentionMask, keepProbabilities: Bool) -> (out: Tensor, probs: Tensor?) {
        let (b, hq, t, dh, hkv, s) = attentionShapes(q, k, v, mask)
        let group = hq / hkv
        var out = Tensor(uninitialized: q.shape)
        var probs = Tensor(uninitialized: keepProbabilities ? [b, hq, t, s] : [1])
        let po = out.mutablePointer(), pp = probs.mutablePointer()
        let pq = q.basePointer, pk = k.basePointer, pv = v.basePointer
        let blocks = queryBlocks(t, mask: mask, keyCount: s)
        // Heads run in parallel (their GEMMs then stay on the worker's thread); each chunk
        // has its own score buffer when the probabilities are not kept.
        Threading.parallelFor(chunks: Threading.kernelThreads, b * hq) { items in
            var scratch = [Float](repeating: 0, count: keepProbabilities ? 0 : t * s)
            scratch.withUnsafeMutableBufferPointer { sc in
                for item in items {
                    let bi = item / hq, h = item % hq
                    let qh = pq + item * t * dh
                    let kvOff = (bi * hkv + h / group) * s * dh
                    let ph = keepProbabilities ? pp + item * t * s : sc.baseAddress!
                    if s == 0 || dh == 0 {
                        (po + item * t * dh).update(repeating: 0, count: t * dh)
                        continue
                    }
                    // Query blocks only multiply the keys some query of the block can see
                    // (a causal mask halves the work); the rest of each row is zeroed by
                    // softmaxRow without being read.
                    for block in blocks {
                        let rows = block.queries.count, t0 = block.queries.lowerBound
                        let kLo = block.keys.lowerBound, kLen = block.keys.count
                        if kLen > 0 {
                            sgemm(transA: false, transB: true, m: rows, n: kLen, k: dh, alpha: scale, a: qh + t0 * dh, lda: dh,
                                  b: pk + kvOff + kLo * dh, ldb: dh, c: ph + t0 * s + kLo, ldc: s)
                        }
                        for ti in block.queries {
                            let row = ph + ti * s
                            // Keys outside [lo, hi] (causal future, beyond the window) get 0 without
                            // an exp; padding inside the range is -inf before the softmax.
                            let visible = AttentionMask.visibleKeys(queryPosition: ti + mask.queryOffset, keyCount: s,
                                                                    causal: mask.causal, window: mask.slidingWindow)
                            if let cap = softcap { for j in visible { row[j] = cap * Foundation.tanh(row[j] / cap) } }
                            if let km = mask.keyMask {
                                for j in visible where !km[bi * s + j] { row[j] = -Float.infinity }
                            }
                            VectorMath.softmaxRow(row, count: s, visible: visible)
                        }
                        let o = po + item * t * dh + t0 * dh
                        if kLen > 0 {
                            sgemm(transA: false, transB: false, m: rows, n: dh, k: kLen, a: ph + t0 * s + kLo, lda: s,
                                  b: pv + kvOff + kLo * dh, ldb: dh, c: o, ldc: dh)
                        } else {
                            o.update(repeating: 0, count: rows * dh)
                        }
                    }
                }
            }
        }
        return (out, keepProbabilities ? probs : nil)
    }

    /// Attention backward from the stored probabilities; returns (dq, dk, dv), each only if requested.
    public static func attentionBackward(_ g: Tensor, q: Tensor, k: Tensor, v: Tensor, probs: Tensor,
                                         scale: Float, softcap: Float?, mask: AttentionMask,
                                         needQ: Bool, needK: Bool, needV: Bool) -> (dq: Tensor?, dk: Tensor?, dv: Tensor?) {
        let (b, hq, t, dh, hkv, s) = attentionShapes(q, k, v, mask)
        let group = hq / hkv
        var dq: Tensor? = needQ ? Tensor(zeros: q.shape) : nil
        var dk: Tensor? = needK ? Tensor(zeros: k.shape) : nil
        var dv: Tensor? = needV ? Tensor(zeros: v.shape) : nil
        if s == 0 || dh == 0 { return (dq, dk, dv) }
        let pdq = dq?.mutablePointer(), pdk = dk?.mutablePointer(), pdv = dv?.mutablePointer()
        let pq = q.basePointer, pk = k.basePointer, pv = v.basePointer, pp = probs.basePointer, pg = g.basePointer
        let blocks = queryBlocks(t, mask: mask, keyCount: s)
        // One work item per (batch, key/value head): its query heads accumulate into the same
        // dK / dV rows, so items write disjoint memory and run in parallel.
        Threading.parallelFor(chunks: Threading.kernelThreads, b * hkv) { items in
            var dS = [Float](repeating: 0, count: t * s), raw = [Float](repeating: 0, count: softcap == nil ? 0 : t * s)
            dS.withUnsafeMutableBufferPointer { dsb in raw.withUnsafeMutableBufferPointer { rawb in
                let pds = dsb.baseAddress!
                for item in items {
                    let bi = item / hkv, kvOff = item * s * dh
                    for h in (item % hkv) * group..<((item % hkv) + 1) * group {
                        let qOff = (bi * hq + h) * t * dh
                        let ph = pp + (bi * hq + h) * t * s, gh = pg + qOff
                        // Per query block, only the keys it can see (probabilities are 0 elsewhere).
                        for block in blocks {
                            let rows = block.queries.count, t0 = block.queries.lowerBound
                            let kLo = block.keys.lowerBound, kLen = block.keys.count
                            if kLen == 0 {
                                if let pdq { (pdq + qOff + t0 * dh).update(repeating: 0, count: rows * dh) }
                                continue
                            }
                            let pBlock = ph + t0 * s + kLo, dsBlock = pds + t0 * s + kLo
                            if let pdv {  // dV += P^T gO
                                sgemm(transA: true, transB: false, m: kLen, n: dh, k: rows, a: pBlock, lda: s,
                                      b: gh + t0 * dh, ldb: dh, beta: 1, c: pdv + kvOff + kLo * dh, ldc: dh)
                            }
                            guard needQ || needK else { continue }
                            // dP = gO V^T, then dS = P * (dP - rowsum(dP * P)).
                            sgemm(transA: false, transB: true, m: rows, n: kLen, k: dh, a: gh + t0 * dh, lda: dh,
                                  b: pv + kvOff + kLo * dh, ldb: dh, c: dsBlock, ldc: s)
                            if softcap != nil {
                                sgemm(transA: false, transB: true, m: rows, n: kLen, k: dh, alpha: scale,
                                      a: pq + qOff + t0 * dh, lda: dh, b: pk + kvOff + kLo * dh, ldb: dh,
                                      c: rawb.baseAddress! + t0 * s + kLo, ldc: s)
                            }
                            for ti in block.queries {
                                let pr = ph + ti * s, dr = pds + ti * s
                                var dot: Float = 0
                                for j in block.keys { dot += pr[j] * dr[j] }
                                for j in block.keys { dr[j] = pr[j] * (dr[j] - dot) }
                                if let cap = softcap {
                                    let rr = rawb.baseAddress! + ti * s
                                    for j in block.keys { let th = Foundation.tanh(rr[j] / cap); dr[j] *= 1 - th * th }
                                }
                            }
                            if let pdq {  // dQ = scale * dS K
                                sgemm(transA: false, transB: false, m: rows, n: dh, k: kLen, alpha: scale, a: dsBlock, lda: s,
                                      b: pk + kvOff + kLo * dh, ldb: dh, c: pdq + qOff + t0 * dh, ldc: dh)
                            }
                            if let pdk {  // dK += scale * dS^T Q
                                sgemm(transA: true, transB: false, m: kLen, n: dh, k: rows, alpha: scale, a: dsBlock, lda: s,
                                      b: pq + qOff + t0 * dh, ldb: dh, beta: 1, c: pdk + kvOff + kLo * dh, ldc: dh)
                            }
                        }
                    }
                }
            } }
        }
        return (dq, dk, dv)
    }

    /// Query rows per block in `queryBlocks` (tests set small blocks to exercise the
    /// splitting on tiny shapes). `nonisolated(unsafe)`: set only at start-up or in tests.
    nonisolated(unsafe) public static var queryBlockSize = 64

    /// Runs `body` with query blocks of `size` rows, restoring the previous size afterwards.
    public static func withQueryBlockSize<R>(_ size: Int, _ body: () throws -> R) rethrows -> R {
        let saved = queryBlockSize
        defer { queryBlockSize = saved }
        queryBlockSize = size
        return try body()
    }

    /// The T queries cut into blocks of `queryBlockSize`, each with the range of keys that
    /// at least one of its queries may see under the causal bound and sliding window
    /// (padding is handled per row). Keys outside a block's range have probability 0 for
    /// every query of the block.
    public static func queryBlocks(_ t: Int, mask: AttentionMask, keyCount s: Int) -> [(queries: Range<Int>, keys: Range<Int>)] {
        let size = Swift.max(1, queryBlockSize)
        return stride(from: 0, to: t, by: size).map { t0 in
            let t1 = Swift.min(t, t0 + size)
            let first = AttentionMask.visibleKeys(queryPosition: t0 + mask.queryOffset, keyCount: s,
                                                  causal: mask.causal, window: mask.slidingWindow)
            let last = AttentionMask.visibleKeys(queryPosition: t1 - 1 + mask.queryOffset, keyCount: s,
                                                 causal: mask.causal, window: mask.slidingWindow)
            let lo = Swift.min(first.lowerBound, last.lowerBound), hi = Swift.max(first.upperBound, last.upperBound)
            return (t0..<t1, lo..<Swift.max(lo, hi))
        }
    }

    /// Checks and returns (B, Hq, T, Dh, Hkv, S).
    static func attentionShapes(_ q: Tensor, _ k: Tensor, _ v: Tensor, _ mask: AttentionMask)
        -> (Int, Int, Int, Int, Int, Int) {
        precondition(q.rank == 4 && k.rank == 4 && v.rank == 4,
                     "attention: q, k, v must be rank 4, got \(q.shape), \(k.shape), \(v.shape)")
        let b = q.shape[0], hq = q.shape[1], t = q.shape[2], dh = q.shape[3]
        let hkv = k.shape[1], s = k.shape[2]
        precondition(k.shape == v.shape && k.shape[0] == b && k.shape[3] == dh,
                     "attention: k \(k.shape) and v \(v.shape) must be [\(b), Hkv, S, \(dh)]")
        precondition(hkv > 0 && hq % hkv == 0, "attention: \(hq) query heads not a multiple of \(hkv) key/value heads")
        if let km = mask.keyMask {
            precondition(km.count == b * s, "attention: keyMask has \(km.count) entries, need B*S = \(b * s)")
        }
        return (b, hq, t, dh, hkv, s)
    }
}

extension Ops {
    /// Scaled dot-product attention: softmax(mask(softcap(scale * q k^T))) v with GQA.
    /// q [B, Hq, T, Dh], k/v [B, Hkv, S, Dh], keyMask flat [B*S] (false = padding) -> [B, Hq, T, Dh].
    public static func attention(q: Variable, k: Variable, v: Variable, scale: Float, softcap: Float? = nil,
                                 causal: Bool, slidingWindow: Int? = nil, keyMask: [Bool]? = nil,
                                 queryOffset: Int = 0) -> Variable {
        let mask = AttentionMask(causal: causal, slidingWindow: slidingWindow, keyMask: keyMask, queryOffset: queryOffset)
        let record = Autograd.records(q, k, v)
        let (y, probs) = Kernels.attention(q: q.value, k: k.value, v: v.value, scale: scale, softcap: softcap,
                                           mask: mask, keepProbabilities: record)
        guard record, let probs else { return Variable(y) }
        let vq = q.value, vk = k.value, vv = v.value
        return Variable(y, parents: [q, k, v]) { g, need in
            let r = Kernels.attentionBackward(g, q: vq, k: vk, v: vv, probs: probs, scale: scale, softcap: softcap,
                                              mask: mask, needQ: need[0], needK: need[1], needV: need[2])
            return [r.dq, r.dk, r.dv]
        }
    }

    /// Attention with a per-batch key mask given as rows ([B][S], false = padding).
    public static func attention(q: Variable, k: Variable, v: Variable, scale: Float, softcap: Float? = nil,
                                 causal: Bool, slidingWindow: Int? = nil, keyMask: [[Bool]],
                                 queryOffset: Int = 0) -> Variable {
        attention(q: q, k: k, v: v, scale: scale, softcap: softcap, causal: causal, slidingWindow: slidingWindow,
                  keyMask: keyMask.flatMap { $0 }, queryOffset: queryOffset)
    }
}
