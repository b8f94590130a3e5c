// Attention on the inference path: rotary tables, the key/value cache and masked
// multi-head attention with grouped key/value heads, soft-capping and sliding windows.
//
// Dimension legend: B batch, T query positions of this call, S key positions (cache length
// after this call), H query heads, Hkv key/value heads, Dh head width, C cache capacity.
import Foundation
import Numerics

/// Rotary position embedding frequencies (rotate-half convention), with Llama-3 or linear scaling.
public struct RotaryEmbedding: Sendable {
    /// Inverse frequencies, one per pair of dimensions [Dh/2].
    public let invFreq: [Float]

    /// Frequencies for head width `headDim`, base `theta` and optional scaling, as transformers computes them.
    public init(headDim: Int, theta: Double, scaling: RopeScaling) {
        let half = headDim / 2
        var inv = (0..<half).map { Double(Float(1.0 / pow(theta, Double(2 * $0) / Double(headDim)))) }
        switch scaling {
        case .none: break
        case .linear(let factor): inv = inv.map { $0 / factor }
        case .llama3(let factor, let low, let high, let original):
            let lowWavelen = Double(original) / low, highWavelen = Double(original) / high
            inv = inv.map { f in
                let wavelen = 2 * Double.pi / f
                if wavelen < highWavelen { return f }
                if wavelen > lowWavelen { return f / factor }
                let smooth = (Double(original) / wavelen - low) / (high - low)
                return (1 - smooth) * f / factor + smooth * f
            }
        }
        invFreq = inv.map { Float($0) }
    }

    /// cos and sin tables [N, Dh/2] for the given positions.
    public func tables(positions: [Int]) -> (cos: Tensor, sin: Tensor) {
        let half = invFreq.count
        var c = Tensor(zeros: [positions.count, half]), s = Tensor(zeros: [positions.count, half])
        c.withUnsafeMutableBufferPointer { pc in
            s.withUnsafeMutableBufferPointer { ps in
                for (r, p) in positions.enumerated() {
                    for i in 0..<half {
                        let angle = Float(p) * invFreq[i]
                        pc[r * half + i] = cos(angle)
                        ps[r * half + i] = sin(angle)
                    }
                }
            }
        }
        return (c, s)
    }
}

/// Keys and values of one layer for every batch row, laid out [B, Hkv, C, Dh].
public final class LayerKVCache: @unchecked Sendable {
    // @unchecked: used by one forward pass at a time; no concurrent mutation.
    /// Key buffer [B, Hkv, C, Dh].
    public var keys: Tensor
    /// Value buffer [B, Hkv, C, Dh].
    public var values: Tensor

    init(batch: Int, kvHeads: Int, capacity: Int, headDim: Int) {
        keys = Tensor(zeros: [batch, kvHeads, capacity, headDim])
        values = Tensor(zeros: [batch, kvHeads, capacity, headDim])
    }
}

/// Key/value cache for incremental decoding, with the key padding mask of every cached position.
public final class KVCache: @unchecked Sendable {
    // @unchecked: owned by one generation loop; not shared across threads.
    /// Per layer buffers.
    public let layers: [LayerKVCache]
    /// Positions filled so far (same for every batch row; left padding keeps rows aligned).
    public internal(set) var length = 0
    /// Capacity in positions.
    public let capacity: Int
    /// 1 where a cached position is a real token, 0 for padding [B, C].
    public internal(set) var keyMask: [Float]
    public let batch: Int

    /// An empty cache for `batch` rows and up to `capacity` positions.
    public init(config: ModelConfig, batch: Int, capacity: Int, layers count: Int? = nil) {
        self.batch = batch
        self.capacity = capacity
        layers = (0..<(count ?? config.numLayers)).map { _ in
            LayerKVCache(batch: batch, kvHeads: config.numKVHeads, capacity: capacity, headDim: config.headDim)
        }
        keyMask = [Float](repeating: 0, count: batch * capacity)
    }

    /// Records the padding mask of `t` new positions ([B, T], 1 = token) before a forward call.
    func appendMask(_ mask: [Float], t: Int) {
        precondition(length + t <= capacity, "KV cache overflow: \(length) + \(t) > \(capacity)")
        for b in 0..<batch { for i in 0..<t { keyMask[b * capacity + length + i] = mask[b * t + i] } }
    }
}

/// Options of one attention call.
struct AttentionSpec: Sendable {
    var batch: Int, queries: Int, heads: Int, kvHeads: Int, headDim: Int
    var scale: Float
    var softcap: Float?
    var window: Int?
}

extension ModelOps {
    /// Masked attention: writes the T new keys/values into `cache` at `offset`, then attends
    /// q [B*T, H*Dh] to cached positions 0..<offset+T with causal, padding and sliding-window
    /// masks. Fully masked query rows (padding) produce zeros. Returns [B*T, H*Dh].
    /// Rows are read in place: query row i at q + i*qStride ([H*Dh] values), key and value
    /// rows at k + i*kvStride and v + i*kvStride ([Hkv*Dh] each), e.g. the column slices of a
    /// fused q/k/v output.
    static func attention(q: UnsafePointer<Float>, qStride: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                          kvStride: Int, cache: LayerKVCache, keyMask: [Float], capacity: Int, offset: Int,
                          spec: AttentionSpec) -> Tensor {
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
                                            for j in visible where row[j] != -.infinity { row[j] = tanh(row[j] / cap) * cap }
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
