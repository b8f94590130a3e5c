// Masked multi-head attention of the inference path over a key/value cache: grouped
// key/value heads, soft-capping and sliding windows, new keys/values written into the cache.
//
// Dimension legend: B batch, T query positions of this call, S key positions (cache length
// after this call), H query heads, Hkv key/value heads, Dh head width, C cache capacity.
import Foundation

/// Keys and values of one layer for every batch row, laid out [B, Hkv, C, Dh].
public final class LayerKVCache: @unchecked Sendable {
    // @unchecked: used by one forward pass at a time; no concurrent mutation.
    /// Key buffer [B, Hkv, C, Dh].
    public var keys: Tensor
    /// Value buffer [B, Hkv, C, Dh].
    public var values: Tensor

    public init(batch: Int, kvHeads: Int, capacity: Int, headDim: Int) {
        keys = Tensor(zeros: [batch, kvHeads, capacity, headDim])
        values = Tensor(zeros: [batch, kvHeads, capacity, headDim])
    }
}

/// Options of one attention call.
public struct CachedAttentionSpec: Sendable {
    public var batch: Int, queries: Int, heads: Int, kvHeads: Int, headDim: Int
    public var scale: Float
    public var softcap: Float?
    public var window: Int?

    public init(batch: Int, queries: Int, heads: Int, kvHeads: Int, headDim: Int, scale: Float, softcap: Float?,
                window: Int?) {
        self.batch = batch
        self.queries = queries
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.scale = scale
        self.softcap = softcap
        self.window = window
    }
}

extension Kernels {
    /// Masked attention: writes the T new keys/values into `cache` at `offset`, then attends
    /// q [B*T, H*Dh] to cached positions 0..<offset+T with causal, padding and sliding-window
    /// masks. Fully masked query rows (padding) produce zeros. Returns [B*T, H*Dh].
    /// Rows are read in place: query row i at q + i*qStride ([H*Dh] values), key and value
    /// rows at k + i*kvStride and v + i*kvStride ([Hkv*Dh] each), e.g. the column slices of a
    /// fused q/k/v output.
    public static func cachedAttention(q: UnsafePointer<Float>, qStride: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                       kvStride: Int, cache: LayerKVCache, keyMask: [Float], capacity: Int, offset: Int,
                                       spec: CachedAttentionSpec) -> Tensor {
        let b = spec.batch, t = spec.queries, h = spec.heads, hkv = spec.kvHeads, dh = spec.headDim
        let s = offset + t, group = h / hkv
        precondition(s <= capacity, "attention: \(s) positions exceed cache capacity \(capacity)")
        // Scatter new keys/values into [B, Hkv, C, Dh].
        cache.keys.withUnsafeMutableBufferPointer { ck in
            cache.values.withUnsafeMutableBufferPointer { cv in
                for bi in 0..<b {
                    for ti in 0..<t {
                        let src = (bi * t + ti) * kvStride
                        for hi in 0..<hkv {
                            let dst = ((bi * hkv + hi) * capacity + offset + ti) * dh
                            (ck.baseAddress! + dst).update(from: k + src + hi * dh, count: dh)
                            (cv.baseAddress! + dst).update(from: v + src + hi * dh, count: dh)
                        }
                    }
                }
            }
        }
        var out = Tensor(uninitialized: [b * t, h * dh])
        let rowStride = h * dh
        let keys = cache.keys, values = cache.values
        keys.withUnsafeBufferPointer { ck in
            values.withUnsafeBufferPointer { cv in
                out.withUnsafeMutableBufferPointer { po in
                    let ptrs = AttentionPointers(q: q, k: ck.baseAddress!, v: cv.baseAddress!,
                                                 out: po.baseAddress!)
                    let work = b * h
                    let blocks = Kernels.queryBlocks(t, mask: AttentionMask(causal: true, slidingWindow: spec.window,
                                                                            queryOffset: offset), keyCount: s)
                    // Small problems (decoding one token) stay on this thread: dispatch costs more.
                    let chunks = work * t * s * dh < 1 << 18 ? 1 : min(work, Threading.kernelThreads)
                    Threading.parallelFor(chunks: chunks, work) { items in
                        var scores = [Float](repeating: 0, count: t * s)
                        scores.withUnsafeMutableBufferPointer { sc in
                            for item in items {
                                let bi = item / h, hi = item % h, kvh = hi / group
                                let qp = ptrs.q + bi * t * qStride + hi * dh
                                let kp = ptrs.k + (bi * hkv + kvh) * capacity * dh
                                let vp = ptrs.v + (bi * hkv + kvh) * capacity * dh
                                let maskRow = bi * capacity
                                // Each query block multiplies only the keys its queries can see.
                                for block in blocks {
                                    let rows = block.queries.count, t0 = block.queries.lowerBound
                                    let kLo = block.keys.lowerBound, kLen = block.keys.count
                                    let o = ptrs.out + (bi * t + t0) * rowStride + hi * dh
                                    guard kLen > 0 else {
                                        for r in 0..<rows { (o + r * rowStride).update(repeating: 0, count: dh) }
                                        continue
                                    }
                                    sgemm(transA: false, transB: true, m: rows, n: kLen, k: dh, alpha: spec.scale,
                                          a: qp + t0 * qStride, lda: qStride, b: kp + kLo * dh, ldb: dh,
                                          c: sc.baseAddress! + t0 * s + kLo, ldc: s)
                                    for ti in block.queries {
                                        let row = sc.baseAddress! + ti * s
                                        // Keys outside the causal / sliding-window range get
                                        // probability 0 without an exp; padding inside it is -inf.
                                        let visible = AttentionMask.visibleKeys(queryPosition: offset + ti, keyCount: s,
                                                                                causal: true, window: spec.window)
                                        for j in visible where keyMask[maskRow + j] == 0 { row[j] = -.infinity }
                                        if let cap = spec.softcap {
                                            for j in visible where row[j] != -.infinity { row[j] = Foundation.tanh(row[j] / cap) * cap }
                                        }
                                        VectorMath.softmaxRow(row, count: s, visible: visible)
                                    }
                                    sgemm(transA: false, transB: false, m: rows, n: dh, k: kLen,
                                          a: sc.baseAddress! + t0 * s + kLo, lda: s, b: vp + kLo * dh, ldb: dh,
                                          c: o, ldc: rowStride)
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}

/// Raw pointers handed to attention worker threads.
struct AttentionPointers: @unchecked Sendable {
    // @unchecked: inputs are only read, and each worker writes a disjoint (batch, head) slice of `out`.
    let q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>
    let out: UnsafeMutablePointer<Float>
}
