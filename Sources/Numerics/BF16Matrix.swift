// BF16Matrix: a lossless half-size copy of a weight matrix whose every entry is exactly a
// bfloat16 value (a Float32 with its low 16 bits zero), as in every checkpoint published in
// bf16 (SmolLM2, Gemma-2, Llama-3.2, Qwen2.5) and loaded as float32. KV-cached decoding
// multiplies one row (or a few) by each weight matrix, so it streams every weight once per
// token and is bound by memory bandwidth: reading 2 bytes per weight instead of 4 nearly
// halves the time of a decoding step. The values are the same Float32 numbers, widened on
// the fly (a 16-bit shift), so results match the float32 product up to summation order.
//
// Dimension legend: R rows (output features), K columns (input features), M input rows.
import Foundation

/// A row-major [R, K] matrix stored as the high halves of its Float32 entries.
public final class BF16Matrix: @unchecked Sendable {
    // @unchecked: `bits` is written once in init and only read afterwards.
    public let rows: Int
    public let cols: Int
    private let bits: UnsafeMutablePointer<UInt16>

    /// The compact copy of `t` [R, K], or nil when t is not rank 2 or some entry is not
    /// exactly representable in bfloat16 (then it must stay float32).
    public init?(exactly t: Tensor) {
        guard t.rank == 2 else { return nil }
        let n = t.count
        let exact = t.withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: UInt32.self) { u -> Bool in
                var low: UInt32 = 0
                for v in u { low |= v & 0xFFFF }
                return low == 0
            }
        }
        guard exact else { return nil }
        rows = t.shape[0]
        cols = t.shape[1]
        bits = .allocate(capacity: Swift.max(n, 1))
        t.withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: UInt32.self) { u in
                for i in 0..<n { bits[i] = UInt16(truncatingIfNeeded: u[i] >> 16) }
            }
        }
    }

    deinit { bits.deallocate() }

    /// Bytes held by the compact copy.
    public var byteCount: Int { rows * cols * 2 }

    /// Entry (r, k) as Float32.
    public subscript(r: Int, k: Int) -> Float { Float(bitPattern: UInt32(bits[r * cols + k]) << 16) }

    /// y[j, r] = sum_k W[r, k] x[j, k] for j < m: x [M, K] with row stride `ldx`, y [M, R]
    /// with row stride `ldy` (overwritten). Meant for small M (decoding): the weights are
    /// read from memory once, in row blocks that stay in cache while every input row uses
    /// them; large matrices are split by rows across the kernel threads.
    public func product(x: UnsafePointer<Float>, m: Int, ldx: Int, y: UnsafeMutablePointer<Float>, ldy: Int) {
        guard m > 0, rows > 0 else { return }
        let k = cols
        withUnsafeTemporaryAllocation(of: Float.self, capacity: m * k) { xs in
            // x in the kernel's order: per 16 columns, the 8 even ones then the 8 odd ones.
            for j in 0..<m { BF16Matrix.splitPairs(x + j * ldx, k, xs.baseAddress! + j * k) }
            let ptrs = BF16Pointers(w: UnsafePointer(bits), x: UnsafePointer(xs.baseAddress!), y: y)
            let blocks = (rows + 63) / 64
            let chunks = rows * cols >= 1 << 18 ? Swift.min(Threading.kernelThreads, blocks) : 1
            Threading.parallelFor(chunks: chunks, blocks) { range in
                for block in range {
                    let lo = block * 64, hi = Swift.min(rows, lo + 64)
                    for j in 0..<m {
                        BF16Matrix.rowDots(ptrs.w, k: k, rows: lo..<hi, x: ptrs.x + j * k, y: ptrs.y + j * ldy)
                    }
                }
            }
        }
    }

    /// Reorders x [K] so that each 16-column group holds its 8 even entries then its 8 odd
    /// ones (the tail after the last full group is copied as is).
    static func splitPairs(_ x: UnsafePointer<Float>, _ k: Int, _ out: UnsafeMutablePointer<Float>) {
        let k16 = k & ~15
        var g = 0
        while g < k16 {
            for i in 0..<8 {
                out[g + i] = x[g + 2 * i]
                out[g + 8 + i] = x[g + 2 * i + 1]
            }
            g += 16
        }
        for i in k16..<k { out[i] = x[i] }
    }

    /// Dot product contribution of 16 weights read as 8 little-endian pairs (even entry in
    /// the low half, odd in the high half) with x's even and odd entries.
    @inline(__always)
    static func pairs(_ w: UnsafePointer<UInt16>, _ xe: SIMD8<Float>, _ xo: SIMD8<Float>) -> SIMD8<Float> {
        let u = UnsafeRawPointer(w).loadUnaligned(as: SIMD8<UInt32>.self)
        let even = unsafeBitCast(u &<< 16, to: SIMD8<Float>.self)
        let odd = unsafeBitCast(u & 0xFFFF_0000, to: SIMD8<Float>.self)
        return even * xe + odd * xo
    }

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always)
    static func scalar(_ p: UnsafePointer<UInt16>, _ i: Int) -> Float { Float(bitPattern: UInt32(p[i]) << 16) }

    /// Rows of W ahead of the four being read whose lines `rowDots` requests. Decoding streams
    /// every weight from memory once per token; left to the hardware prefetcher, the four row
    /// streams ran at 12.8-13.0 GB/s. With the requests, SmolLM2's weights for one token
    /// (270 MB) took 10.3-12.0 ms instead of 20.6-21.0 (22-26 GB/s; 4, 8 and 16 rows ahead
    /// alike within noise; in-process, two threads, Intel Xeon).
    static let aheadRows = 8

    /// y[r] = W[r, :] . x for r in `rows` (x reordered by `splitPairs`), four rows at a time
    /// sharing each load of x, requesting the lines `aheadRows` rows on.
    static func rowDots(_ w: UnsafePointer<UInt16>, k: Int, rows: Range<Int>, x: UnsafePointer<Float>,
                        y: UnsafeMutablePointer<Float>) {
        let k16 = k & ~15
        var r = rows.lowerBound
        let ahead = aheadRows * k
        while r + 4 <= rows.upperBound {
            let w0 = w + r * k, w1 = w0 + k, w2 = w1 + k, w3 = w2 + k
            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
            var i = 0
            while i < k16 {
                if i & 31 == 0 {  // one request per 64-byte line of each row
                    prefetch(w0 + i + ahead); prefetch(w1 + i + ahead); prefetch(w2 + i + ahead); prefetch(w3 + i + ahead)
                }
                let xe = load(x + i), xo = load(x + i + 8)
                a0 += pairs(w0 + i, xe, xo)
                a1 += pairs(w1 + i, xe, xo)
                a2 += pairs(w2 + i, xe, xo)
                a3 += pairs(w3 + i, xe, xo)
                i += 16
            }
            var s0 = a0.sum(), s1 = a1.sum(), s2 = a2.sum(), s3 = a3.sum()
            while i < k {
                s0 += scalar(w0, i) * x[i]
                s1 += scalar(w1, i) * x[i]
                s2 += scalar(w2, i) * x[i]
                s3 += scalar(w3, i) * x[i]
                i += 1
            }
            y[r] = s0
            y[r + 1] = s1
            y[r + 2] = s2
            y[r + 3] = s3
            r += 4
        }
        while r < rows.upperBound {
            let w0 = w + r * k
            var a0 = SIMD8<Float>()
            var i = 0
            while i < k16 {
                a0 += pairs(w0 + i, load(x + i), load(x + i + 8))
                i += 16
            }
            var s0 = a0.sum()
            while i < k {
                s0 += scalar(w0, i) * x[i]
                i += 1
            }
            y[r] = s0
            r += 1
        }
    }
}

/// Operand pointers handed to worker threads: the weights and x are only read, and each
/// worker writes a disjoint range of y's columns.
private struct BF16Pointers: @unchecked Sendable {
    let w: UnsafePointer<UInt16>, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>
}
