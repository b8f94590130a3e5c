// CompactWeights: bf16 copies of frozen weight matrices for KV-cached decoding. A decoding
// step multiplies one row per sequence by every weight matrix, so it is bound by the bytes
// it streams; a weight whose every entry is exactly a bfloat16 value (any checkpoint saved
// in bf16, loaded as float32) is read from a lossless half-size copy instead (BF16Matrix).
// Built lazily on the first decoding step, keyed like the fused projections, only for
// frozen weights; weights that are not bf16-exact (float32 training results, dequantised
// GGUF blocks) keep the float32 path. AUDITGAP_COMPACT_DECODE=0 turns it off.
//
// Dimension legend: N rows of this call, D input width, O output width.
import Foundation
import Numerics

/// Lock-protected cache of compact weights by key, with the identity of the float32 tensor
/// each was built from (a replaced tensor rebuilds it; nil records "not bf16-exact").
final class CompactWeightCache: @unchecked Sendable {
    // @unchecked: every access goes through `lock`.
    private let lock = NSLock()
    private var entries: [String: (source: ObjectIdentifier, matrix: BF16Matrix?)] = [:]

    func matrix(_ key: String, _ weight: Tensor) -> BF16Matrix? {
        let source = ObjectIdentifier(weight.storage)
        if let hit = lock.withLock({ entries[key] }), hit.source == source { return hit.matrix }
        let built = BF16Matrix(exactly: weight)
        lock.withLock { entries[key] = (source, built) }
        return built
    }

    func removeAll() { lock.withLock { entries = [:] } }

    /// Number of weights held as compact copies.
    var compactCount: Int { lock.withLock { entries.values.filter { $0.matrix != nil }.count } }
}

extension TransformerModel {
    /// Calls with at most this many rows (decoding steps of up to 8 sequences) use the
    /// compact copies; larger ones are compute-bound and go to sgemm.
    static let compactMaxRows = 8

    /// Whether decoding steps read bf16-exact weights from compact copies (tests turn it off
    /// to compare against the float32 path). `nonisolated(unsafe)`: set once at start-up.
    nonisolated(unsafe) static var compactDecoding: Bool = ProcessInfo.processInfo.environment["AUDITGAP_COMPACT_DECODE"] != "0"

    /// y = x W^T (+ b) for x [N, D], W [O, D] stored under `key`: from the compact copy when
    /// N is small, W is frozen and bf16-exact; else Kernels.linear (on the packed copy when
    /// W is frozen and N > 1).
    func decodingLinear(_ x: Tensor, weight: Tensor, bias: Tensor?, key: String, frozen: Bool) -> Tensor {
        let d = x.shape[x.rank - 1], n = x.count / Swift.max(d, 1)
        guard Self.compactDecoding, frozen, n >= 1, n <= Self.compactMaxRows, weight.rank == 2, weight.shape[1] == d,
              let compact = compactCache.matrix(key, weight) else {
            // One row goes to sgemv, which reads the weight in place; more rows to the
            // packed copy when the weight is frozen.
            let packed = frozen && n >= 2 && weight.rank == 2 && weight.shape[1] == d ? packedWeight(key, weight, rows: n) : nil
            return Kernels.linear(x, weight: weight, bias: bias, packed: packed)
        }
        let o = compact.rows
        var out = Tensor(uninitialized: [n, o])
        x.withUnsafeBufferPointer { px in
            out.withUnsafeMutableBufferPointer { po in
                compact.product(x: px.baseAddress!, m: n, ldx: d, y: po.baseAddress!, ldy: o)
                if let bias {
                    bias.withUnsafeBufferPointer { pb in
                        for r in 0..<n {
                            let row = po.baseAddress! + r * o
                            for i in 0..<o { row[i] += pb[i] }
                        }
                    }
                }
            }
        }
        return out
    }

    /// Whether the parameter at `name` is frozen (absent counts as frozen).
    func isFrozen(_ name: String) -> Bool { parameters[name]?.requiresGrad != true }
}
