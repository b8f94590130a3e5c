// PackedMatrix: a frozen weight matrix kept in the operand layout of a register-tiled GEMM
// kernel, for both products a frozen linear layer needs: y = x W^T (forward) and
// dx = dy W (backward to the input). OpenBLAS copies ("packs") the whole weight into its
// kernel's layout on every call; when the other operand has few rows (a PGD step on one
// 68-token prompt, a last block trimmed to its target rows, a few-row LM head) that copy
// is about a quarter of the product's time. Here the copies are made once.
//
// Kernel (AVX2): 6 x 16 output tiles held in twelve 8-wide registers; per k one broadcast
// of each of 6 left-operand values and two 8-wide loads of the right operand (12 FMAs).
// Kernel (AVX-512, built with AUDITGAP_AVX512): 12 x 32 tiles (two panels side by side) in
// twenty-four 16-wide registers; per k 12 broadcasts and two 16-wide loads (24 FMAs). The
// left operand is read in place (one stream per tile row); k is cut into blocks whose
// right-operand panels stay in L1 and m into blocks whose left rows stay in L2. While one panel block is in use,
// the next one a thread will read is prefetched (a weight streams from memory once per
// product, and a 68-row product gives each block only 12 tiles of work to hide it behind).
// Threads split the output columns (units of a tile's panels).
//
// Dimension legend: R rows of W (output features), K columns of W (input features),
// M rows of the other operand; a panel is 16 columns of the product; P the packed depth.
import Foundation
import Synchronization

/// W [R, K] (row-major, PyTorch's [out, in]) packed for `x W^T` and for `dy W`.
public final class PackedMatrix: @unchecked Sendable {
    // @unchecked: both buffers are written once in init and only read afterwards.
    /// R: output features.
    public let rows: Int
    /// K: input features.
    public let cols: Int
    /// For y = x W^T: panel p holds, for each k, W[16p ..< 16p + 16, k] (zero past R):
    /// [ceil(R/16)][K][16].
    private let forwardPanels: UnsafeMutablePointer<Float>
    /// For dx = dy W: panel q holds, for each r, W[r, 16q ..< 16q + 16] (zero past K):
    /// [ceil(K/16)][R][16].
    private let backwardPanels: UnsafeMutablePointer<Float>

    /// Bytes of packed copies alive in the process (both layouts of every matrix).
    public static var liveBytes: Int { live.load(ordering: .relaxed) }
    private static let live = Atomic<Int>(0)

    /// Packs w [R, K] (both layouts: twice w's size).
    public init(_ w: Tensor) {
        precondition(w.rank == 2 && w.shape[0] > 0 && w.shape[1] > 0, "PackedMatrix needs a non-empty [R, K] matrix, got \(w.shape)")
        rows = w.shape[0]
        cols = w.shape[1]
        let r = rows, k = cols
        let fp = (r + 15) / 16, bp = (k + 15) / 16
        forwardPanels = .allocate(capacity: fp * k * 16)
        backwardPanels = .allocate(capacity: bp * r * 16)
        let ptrs = PackPointers(src: w.basePointer, forward: forwardPanels, backward: backwardPanels)
        Threading.parallelChunks(fp, costPerItem: 16 * k) { range in
            for p in range {
                let dst = ptrs.forward + p * k * 16
                for i in 0..<16 {
                    let row = 16 * p + i
                    if row < r {
                        let src = ptrs.src + row * k
                        for kk in 0..<k { dst[kk * 16 + i] = src[kk] }
                    } else {
                        for kk in 0..<k { dst[kk * 16 + i] = 0 }
                    }
                }
            }
        }
        Threading.parallelChunks(bp, costPerItem: 16 * r) { range in
            for q in range {
                let dst = ptrs.backward + q * r * 16
                let c0 = 16 * q, width = Swift.min(16, k - c0)
                for row in 0..<r {
                    let d = dst + row * 16
                    d.update(from: ptrs.src + row * k + c0, count: width)
                    if width < 16 { (d + width).update(repeating: 0, count: 16 - width) }
                }
            }
        }
        PackedMatrix.live.add(byteCount, ordering: .relaxed)
    }

    deinit {
        forwardPanels.deallocate()
        backwardPanels.deallocate()
        PackedMatrix.live.subtract(byteCount, ordering: .relaxed)
    }

    /// Bytes held by the two packed copies.
    public var byteCount: Int { ((rows + 15) / 16 * cols + (cols + 15) / 16 * rows) * 16 * MemoryLayout<Float>.size }

    /// y[M, R] = x[M, K] W^T, or y += x W^T when `accumulate`; x and y row-major with row
    /// strides `ldx` and `ldy`.
    public func product(x: UnsafePointer<Float>, m: Int, ldx: Int, y: UnsafeMutablePointer<Float>, ldy: Int,
                        accumulate: Bool = false) {
        PackedMatrix.gemm(a: x, lda: ldx, m: m, depth: cols, panels: UnsafePointer(forwardPanels), n: rows,
                          c: y, ldc: ldy, accumulate: accumulate)
    }

    /// dx[M, K] = dy[M, R] W, or dx += dy W when `accumulate`; row strides `lddy`, `lddx`.
    public func transposedProduct(dy: UnsafePointer<Float>, m: Int, lddy: Int, dx: UnsafeMutablePointer<Float>,
                                  lddx: Int, accumulate: Bool = false) {
        PackedMatrix.gemm(a: dy, lda: lddy, m: m, depth: rows, panels: UnsafePointer(backwardPanels), n: cols,
                          c: dx, ldc: lddx, accumulate: accumulate)
    }

    /// dx = dy W for dy [..., R] -> [..., K] (a new tensor).
    public func transposedProduct(_ dy: Tensor) -> Tensor {
        precondition(dy.rank >= 1 && dy.shape[dy.rank - 1] == rows, "PackedMatrix.transposedProduct: input \(dy.shape) for weight [\(rows), \(cols)]")
        var shape = dy.shape
        shape[shape.count - 1] = cols
        var dx = Tensor(uninitialized: shape)
        transposedProduct(dy: dy.basePointer, m: dy.count / rows, lddy: rows, dx: dx.mutablePointer(), lddx: cols)
        return dx
    }

    // MARK: - Kernel

#if AUDITGAP_AVX512
    /// The kernel this build uses (benchmarks print it).
    public static let kernelName = "AVX-512 12x32"
    /// Output rows of a full tile, and 16-column panels per tile.
    static let tileRows = 12, tilePanels = 2
    /// Depth per k block: the tile's two 16-wide panel blocks (2 x 16 x kc) stay in L1.
    static let maxBlockDepth = 256
#else
    /// The kernel this build uses (benchmarks print it).
    public static let kernelName = "AVX2 6x16"
    /// Output rows of a full tile, and 16-column panels per tile.
    static let tileRows = 6, tilePanels = 1
    /// Depth per k block: the 16-wide right panel block (16 x kc) and one 6-row left tile
    /// (6 x kc) together stay under L1's 32 KB.
    static let maxBlockDepth = 320
#endif
    /// Chunks of panels per thread in a split product (in-process A/B on a PGD step at the
    /// embedding layer: 6 of equal size against 4 of ceil size, 1.00-1.06 faster).
    static let chunksPerThread = 6
    /// Left-operand rows per m block (their tiles stay in L2 while the panels stream by).
    static let blockRows = 168

    /// C[M, N] (+)= A[M, depth] B, with B given as 16-column panels [ceil(N/16)][depth][16].
    static func gemm(a: UnsafePointer<Float>, lda: Int, m: Int, depth: Int, panels: UnsafePointer<Float>, n: Int,
                     c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
        guard m > 0, n > 0 else { return }
        let tiles = (m + tileRows - 1) / tileRows
        let panelCount = (n + 15) / 16
        // A unit is the panels of one tile's columns; threads split the units.
        let units = (panelCount + tilePanels - 1) / tilePanels
        let kBlocks = (depth + maxBlockDepth - 1) / maxBlockDepth
        let kc = (depth + kBlocks - 1) / kBlocks
        let panelStride = depth * 16
        let ptrs = GemmOperands(a: a, b: panels, c: c)
        let run = { (range: Range<Int>) in
            var k0 = 0
            while k0 < depth {
                let kLen = Swift.min(kc, depth - k0)
                let add = accumulate || k0 > 0
                var t0 = 0
                while t0 < tiles {
                    let t1 = Swift.min(tiles, t0 + blockRows / tileRows)
                    for u in range {
                        let p = u * tilePanels
                        let b = ptrs.b + p * panelStride + k0 * 16
                        let cols = Swift.min(16 * tilePanels, n - 16 * p)
                        // The block this thread reads next (the next unit at this depth, or the first
                        // unit at the next depth), requested a slice per tile while this block is in use.
                        var next: UnsafePointer<Float>? = nil
                        var nextLen = 0, nextPanels = 0
                        if u + 1 < range.upperBound {
                            next = ptrs.b + (u + 1) * tilePanels * panelStride + k0 * 16
                            nextLen = kLen
                            nextPanels = Swift.min(tilePanels, panelCount - (u + 1) * tilePanels)
                        } else if t1 == tiles && k0 + kLen < depth {
                            next = ptrs.b + range.lowerBound * tilePanels * panelStride + (k0 + kLen) * 16
                            nextLen = Swift.min(kc, depth - k0 - kLen)
                            nextPanels = Swift.min(tilePanels, panelCount - range.lowerBound * tilePanels)
                        }
                        let perTile = (nextLen + (t1 - t0) - 1) / (t1 - t0)
                        for t in t0..<t1 {
                            // This tile's slice of the next block: one 64-byte line per k of each
                            // panel (a k row of a panel is 16 floats).
                            var pf0 = b, pf1 = b, pfLines = 0
                            if let next {
                                let l = (t - t0) * perTile
                                pfLines = Swift.max(0, Swift.min(nextLen, l + perTile) - l)
                                pf0 = next + 16 * l
                                pf1 = nextPanels > 1 ? pf0 + panelStride : pf0
                            }
                            let rows = Swift.min(tileRows, m - tileRows * t)
                            tile(ptrs.a + tileRows * t * lda + k0, lda, b, panelStride, kLen,
                                 ptrs.c + tileRows * t * ldc + 16 * p, ldc, rows: rows, cols: cols, accumulate: add,
                                 pf0: pf0, pf1: pf1, pfLines: pfLines)
                        }
                    }
                    t0 = t1
                }
                k0 += kLen
            }
        }
        let work = m * n * depth
        let threads = Threading.kernelThreads
        if threads <= 1 || work < Threading.gemmSplitThreshold || units < 2 {
            run(0..<units)
        } else {
            // A few chunks per thread so a late or preempted helper does not hold the caller,
            // of equal size (36 panels: 12 x 3 rather than 7 x 5 + 1, where one thread of two
            // could get 20 panels to the other's 16).
            Threading.parallelFor(chunks: Swift.min(units, threads * chunksPerThread), units, evenly: true, run)
        }
    }

    /// One tile of C (+)= A_tile B_unit over `depth` k: `a` the tile's first row (row stride
    /// `lda`), `b` the unit's first panel at this depth (the next panel `panelStride` floats
    /// on); writes `rows` x `cols` of C. `pfLines` lines from `pf0` (and `pf1`, the next
    /// unit's second panel) are prefetched for the block after this one.
    @inline(__always)
    static func tile(_ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ panelStride: Int, _ depth: Int,
                     _ c: UnsafeMutablePointer<Float>, _ ldc: Int, rows: Int, cols: Int, accumulate: Bool,
                     pf0: UnsafePointer<Float>, pf1: UnsafePointer<Float>, pfLines: Int) {
#if AUDITGAP_AVX512
        // A unit of one panel (an odd panel count) reads that panel twice and keeps 16 columns.
        let b1 = cols > 16 ? b + panelStride : b
        if rows <= 4 {
            micro4x32(a, lda, b, b1, depth, c, ldc, rows: rows, cols: cols, accumulate: accumulate, pf0, pf1, pfLines)
        } else if rows <= 8 {
            // A last tile of 5-8 rows (67 = 5 x 12 + 7 in a one-prompt PGD step): 8 rows computed
            // instead of 12, with 16 accumulators (two 4-row tiles, 8 accumulators each, ran at
            // about 0.77x the 12-row kernel's rate per row: too few chains to cover the FMA latency).
            micro8x32(a, lda, b, b1, depth, c, ldc, rows: rows, cols: cols, accumulate: accumulate, pf0, pf1, pfLines)
        } else {
            micro12x32(a, lda, b, b1, depth, c, ldc, rows: rows, cols: cols, accumulate: accumulate, pf0, pf1, pfLines)
        }
#else
        // The AVX2 kernels' slice is requested before the tile (chosen by an A/B on AMD EPYC).
        for l in 0..<pfLines { prefetch(pf0 + 16 * l) }
        if rows <= 2 {
            microNarrow(a, lda, b, depth, c, ldc, rows: rows, cols: cols, accumulate: accumulate)
        } else {
            micro(a, lda, b, depth, c, ldc, rows: rows, cols: cols, accumulate: accumulate)
        }
#endif
    }

#if AUDITGAP_AVX512
    /// One 12 x 32 tile: `b0`, `b1` the two panels ([depth][16] each); rows past `rows`
    /// repeat the last row and are not stored. The first `pfLines` k steps each request one
    /// line of `pf0` and of `pf1` (spread over the loop: issued in a burst before the tile,
    /// they filled the line-fill buffers and stalled it; in-process A/B on an Intel Xeon,
    /// 1.07x median over 8 rounds of 4 shapes x 30 weights at 67 rows).
    @inline(never)
    static func micro12x32(_ a: UnsafePointer<Float>, _ lda: Int, _ b0p: UnsafePointer<Float>, _ b1p: UnsafePointer<Float>,
                           _ depth: Int, _ c: UnsafeMutablePointer<Float>, _ ldc: Int, rows: Int, cols: Int, accumulate: Bool,
                           _ pf0: UnsafePointer<Float>, _ pf1: UnsafePointer<Float>, _ pfLines: Int) {
        typealias V = SIMD16<Float>
        var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V(), c30 = V(), c31 = V()
        var c40 = V(), c41 = V(), c50 = V(), c51 = V(), c60 = V(), c61 = V(), c70 = V(), c71 = V()
        var c80 = V(), c81 = V(), c90 = V(), c91 = V(), ca0 = V(), ca1 = V(), cb0 = V(), cb1 = V()
        let last = rows - 1
        let a0 = a, a1 = a + Swift.min(1, last) * lda, a2 = a + Swift.min(2, last) * lda, a3 = a + Swift.min(3, last) * lda
        let a4 = a + Swift.min(4, last) * lda, a5 = a + Swift.min(5, last) * lda, a6 = a + Swift.min(6, last) * lda
        let a7 = a + Swift.min(7, last) * lda, a8 = a + Swift.min(8, last) * lda, a9 = a + Swift.min(9, last) * lda
        let a10 = a + Swift.min(10, last) * lda, a11 = a + Swift.min(11, last) * lda
        var p0 = b0p, p1 = b1p
        for kk in 0..<depth {
            if kk < pfLines { prefetch(pf0 + 16 * kk); prefetch(pf1 + 16 * kk) }
            let b0: V = load(p0), b1: V = load(p1)
            var x = V(repeating: a0[kk]); c00.addProduct(x, b0); c01.addProduct(x, b1)
            x = V(repeating: a1[kk]); c10.addProduct(x, b0); c11.addProduct(x, b1)
            x = V(repeating: a2[kk]); c20.addProduct(x, b0); c21.addProduct(x, b1)
            x = V(repeating: a3[kk]); c30.addProduct(x, b0); c31.addProduct(x, b1)
            x = V(repeating: a4[kk]); c40.addProduct(x, b0); c41.addProduct(x, b1)
            x = V(repeating: a5[kk]); c50.addProduct(x, b0); c51.addProduct(x, b1)
            x = V(repeating: a6[kk]); c60.addProduct(x, b0); c61.addProduct(x, b1)
            x = V(repeating: a7[kk]); c70.addProduct(x, b0); c71.addProduct(x, b1)
            x = V(repeating: a8[kk]); c80.addProduct(x, b0); c81.addProduct(x, b1)
            x = V(repeating: a9[kk]); c90.addProduct(x, b0); c91.addProduct(x, b1)
            x = V(repeating: a10[kk]); ca0.addProduct(x, b0); ca1.addProduct(x, b1)
            x = V(repeating: a11[kk]); cb0.addProduct(x, b0); cb1.addProduct(x, b1)
            p0 += 16
            p1 += 16
        }
        if rows == 12 && cols == 32 {
            put(c, c00, c01, accumulate); put(c + ldc, c10, c11, accumulate)
            put(c + 2 * ldc, c20, c21, accumulate); put(c + 3 * ldc, c30, c31, accumulate)
            put(c + 4 * ldc, c40, c41, accumulate); put(c + 5 * ldc, c50, c51, accumulate)
            put(c + 6 * ldc, c60, c61, accumulate); put(c + 7 * ldc, c70, c71, accumulate)
            put(c + 8 * ldc, c80, c81, accumulate); put(c + 9 * ldc, c90, c91, accumulate)
            put(c + 10 * ldc, ca0, ca1, accumulate); put(c + 11 * ldc, cb0, cb1, accumulate)
            return
        }
        withUnsafeTemporaryAllocation(of: V.self, capacity: 24) { t in
            t[0] = c00; t[1] = c01; t[2] = c10; t[3] = c11; t[4] = c20; t[5] = c21; t[6] = c30; t[7] = c31
            t[8] = c40; t[9] = c41; t[10] = c50; t[11] = c51; t[12] = c60; t[13] = c61; t[14] = c70; t[15] = c71
            t[16] = c80; t[17] = c81; t[18] = c90; t[19] = c91; t[20] = ca0; t[21] = ca1; t[22] = cb0; t[23] = cb1
            putPart(t, c, ldc, rows: rows, cols: cols, accumulate)
        }
    }

    /// A tile of 5 to 8 rows: 8 x 32, sixteen accumulators.
    @inline(never)
    static func micro8x32(_ a: UnsafePointer<Float>, _ lda: Int, _ b0p: UnsafePointer<Float>, _ b1p: UnsafePointer<Float>,
                          _ depth: Int, _ c: UnsafeMutablePointer<Float>, _ ldc: Int, rows: Int, cols: Int, accumulate: Bool,
                          _ pf0: UnsafePointer<Float>, _ pf1: UnsafePointer<Float>, _ pfLines: Int) {
        typealias V = SIMD16<Float>
        var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V(), c30 = V(), c31 = V()
        var c40 = V(), c41 = V(), c50 = V(), c51 = V(), c60 = V(), c61 = V(), c70 = V(), c71 = V()
        let last = rows - 1
        let a0 = a, a1 = a + Swift.min(1, last) * lda, a2 = a + Swift.min(2, last) * lda, a3 = a + Swift.min(3, last) * lda
        let a4 = a + Swift.min(4, last) * lda, a5 = a + Swift.min(5, last) * lda, a6 = a + Swift.min(6, last) * lda
        let a7 = a + Swift.min(7, last) * lda
        var p0 = b0p, p1 = b1p
        for kk in 0..<depth {
            if kk < pfLines { prefetch(pf0 + 16 * kk); prefetch(pf1 + 16 * kk) }
            let b0: V = load(p0), b1: V = load(p1)
            var x = V(repeating: a0[kk]); c00.addProduct(x, b0); c01.addProduct(x, b1)
            x = V(repeating: a1[kk]); c10.addProduct(x, b0); c11.addProduct(x, b1)
            x = V(repeating: a2[kk]); c20.addProduct(x, b0); c21.addProduct(x, b1)
            x = V(repeating: a3[kk]); c30.addProduct(x, b0); c31.addProduct(x, b1)
            x = V(repeating: a4[kk]); c40.addProduct(x, b0); c41.addProduct(x, b1)
            x = V(repeating: a5[kk]); c50.addProduct(x, b0); c51.addProduct(x, b1)
            x = V(repeating: a6[kk]); c60.addProduct(x, b0); c61.addProduct(x, b1)
            x = V(repeating: a7[kk]); c70.addProduct(x, b0); c71.addProduct(x, b1)
            p0 += 16
            p1 += 16
        }
        withUnsafeTemporaryAllocation(of: V.self, capacity: 16) { t in
            t[0] = c00; t[1] = c01; t[2] = c10; t[3] = c11; t[4] = c20; t[5] = c21; t[6] = c30; t[7] = c31
            t[8] = c40; t[9] = c41; t[10] = c50; t[11] = c51; t[12] = c60; t[13] = c61; t[14] = c70; t[15] = c71
            putPart(t, c, ldc, rows: rows, cols: cols, accumulate)
        }
    }

    /// A tile of 1 to 4 rows (the last rows of a product, a decode step's one row): 4 x 32,
    /// eight accumulators.
    @inline(never)
    static func micro4x32(_ a: UnsafePointer<Float>, _ lda: Int, _ b0p: UnsafePointer<Float>, _ b1p: UnsafePointer<Float>,
                          _ depth: Int, _ c: UnsafeMutablePointer<Float>, _ ldc: Int, rows: Int, cols: Int, accumulate: Bool,
                           _ pf0: UnsafePointer<Float>, _ pf1: UnsafePointer<Float>, _ pfLines: Int) {
        typealias V = SIMD16<Float>
        var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V(), c30 = V(), c31 = V()
        let last = rows - 1
        let a0 = a, a1 = a + Swift.min(1, last) * lda, a2 = a + Swift.min(2, last) * lda, a3 = a + Swift.min(3, last) * lda
        var p0 = b0p, p1 = b1p
        for kk in 0..<depth {
            if kk < pfLines { prefetch(pf0 + 16 * kk); prefetch(pf1 + 16 * kk) }
            let b0: V = load(p0), b1: V = load(p1)
            var x = V(repeating: a0[kk]); c00.addProduct(x, b0); c01.addProduct(x, b1)
            x = V(repeating: a1[kk]); c10.addProduct(x, b0); c11.addProduct(x, b1)
            x = V(repeating: a2[kk]); c20.addProduct(x, b0); c21.addProduct(x, b1)
            x = V(repeating: a3[kk]); c30.addProduct(x, b0); c31.addProduct(x, b1)
            p0 += 16
            p1 += 16
        }
        if rows == 4 && cols == 32 {
            put(c, c00, c01, accumulate); put(c + ldc, c10, c11, accumulate)
            put(c + 2 * ldc, c20, c21, accumulate); put(c + 3 * ldc, c30, c31, accumulate)
            return
        }
        withUnsafeTemporaryAllocation(of: V.self, capacity: 8) { t in
            t[0] = c00; t[1] = c01; t[2] = c10; t[3] = c11; t[4] = c20; t[5] = c21; t[6] = c30; t[7] = c31
            putPart(t, c, ldc, rows: rows, cols: cols, accumulate)
        }
    }
#else
    /// One 6 x 16 tile of C (+)= A_tile B_panel over `depth` k: `a` the tile's first row
    /// (row stride `lda`, read in place: each k broadcasts one value of each row), `b`
    /// [depth][16]; writes `rows` x `cols` of C. Rows past `rows` repeat the last row and are
    /// not stored.
    @inline(never)
    static func micro(_ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ depth: Int,
                      _ c: UnsafeMutablePointer<Float>, _ ldc: Int, rows: Int, cols: Int, accumulate: Bool) {
        var c00 = SIMD8<Float>(), c01 = SIMD8<Float>(), c10 = SIMD8<Float>(), c11 = SIMD8<Float>()
        var c20 = SIMD8<Float>(), c21 = SIMD8<Float>(), c30 = SIMD8<Float>(), c31 = SIMD8<Float>()
        var c40 = SIMD8<Float>(), c41 = SIMD8<Float>(), c50 = SIMD8<Float>(), c51 = SIMD8<Float>()
        let a0 = a, a1 = a + Swift.min(1, rows - 1) * lda, a2 = a + Swift.min(2, rows - 1) * lda
        let a3 = a + Swift.min(3, rows - 1) * lda, a4 = a + Swift.min(4, rows - 1) * lda, a5 = a + Swift.min(5, rows - 1) * lda
        var pb = b
        for kk in 0..<depth {
            let b0: SIMD8<Float> = load(pb), b1: SIMD8<Float> = load(pb + 8)
            var x = SIMD8<Float>(repeating: a0[kk]); c00.addProduct(x, b0); c01.addProduct(x, b1)
            x = SIMD8<Float>(repeating: a1[kk]); c10.addProduct(x, b0); c11.addProduct(x, b1)
            x = SIMD8<Float>(repeating: a2[kk]); c20.addProduct(x, b0); c21.addProduct(x, b1)
            x = SIMD8<Float>(repeating: a3[kk]); c30.addProduct(x, b0); c31.addProduct(x, b1)
            x = SIMD8<Float>(repeating: a4[kk]); c40.addProduct(x, b0); c41.addProduct(x, b1)
            x = SIMD8<Float>(repeating: a5[kk]); c50.addProduct(x, b0); c51.addProduct(x, b1)
            pb += 16
        }
        if rows == 6 && cols == 16 {
            put(c, c00, c01, accumulate)
            put(c + ldc, c10, c11, accumulate)
            put(c + 2 * ldc, c20, c21, accumulate)
            put(c + 3 * ldc, c30, c31, accumulate)
            put(c + 4 * ldc, c40, c41, accumulate)
            put(c + 5 * ldc, c50, c51, accumulate)
            return
        }
        // Edge tile: through a stack copy, only the valid rows and columns.
        withUnsafeTemporaryAllocation(of: SIMD8<Float>.self, capacity: 12) { t in
            t[0] = c00; t[1] = c01; t[2] = c10; t[3] = c11; t[4] = c20; t[5] = c21
            t[6] = c30; t[7] = c31; t[8] = c40; t[9] = c41; t[10] = c50; t[11] = c51
            putPart(t, c, ldc, rows: rows, cols: cols, accumulate)
        }
    }

    /// A last tile of 1 or 2 rows (68 = 11 x 6 + 2 rows in a one-prompt PGD step): 2 x 16
    /// with k split into even and odd halves, so that 8 independent accumulators keep both
    /// FMA pipes busy, at a third of a full tile's work.
    @inline(never)
    static func microNarrow(_ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ depth: Int,
                            _ c: UnsafeMutablePointer<Float>, _ ldc: Int, rows: Int, cols: Int, accumulate: Bool) {
        var e00 = SIMD8<Float>(), e01 = SIMD8<Float>(), e10 = SIMD8<Float>(), e11 = SIMD8<Float>()
        var o00 = SIMD8<Float>(), o01 = SIMD8<Float>(), o10 = SIMD8<Float>(), o11 = SIMD8<Float>()
        let a0 = a, a1 = a + Swift.min(1, rows - 1) * lda
        var pb = b, kk = 0
        while kk + 2 <= depth {
            let b0: SIMD8<Float> = load(pb), b1: SIMD8<Float> = load(pb + 8), b2: SIMD8<Float> = load(pb + 16), b3: SIMD8<Float> = load(pb + 24)
            var x = SIMD8<Float>(repeating: a0[kk]); e00.addProduct(x, b0); e01.addProduct(x, b1)
            x = SIMD8<Float>(repeating: a1[kk]); e10.addProduct(x, b0); e11.addProduct(x, b1)
            x = SIMD8<Float>(repeating: a0[kk + 1]); o00.addProduct(x, b2); o01.addProduct(x, b3)
            x = SIMD8<Float>(repeating: a1[kk + 1]); o10.addProduct(x, b2); o11.addProduct(x, b3)
            pb += 32
            kk += 2
        }
        if kk < depth {
            let b0: SIMD8<Float> = load(pb), b1: SIMD8<Float> = load(pb + 8)
            var x = SIMD8<Float>(repeating: a0[kk]); e00.addProduct(x, b0); e01.addProduct(x, b1)
            x = SIMD8<Float>(repeating: a1[kk]); e10.addProduct(x, b0); e11.addProduct(x, b1)
        }
        e00 += o00; e01 += o01; e10 += o10; e11 += o11
        if cols == 16 {
            put(c, e00, e01, accumulate)
            if rows == 2 { put(c + ldc, e10, e11, accumulate) }
            return
        }
        withUnsafeTemporaryAllocation(of: SIMD8<Float>.self, capacity: 4) { t in
            t[0] = e00; t[1] = e01; t[2] = e10; t[3] = e11
            putPart(t, c, ldc, rows: rows, cols: cols, accumulate)
        }
    }

#endif

    /// Writes (or adds) the first `rows` x `cols` values of a tile held as two vectors per
    /// row in `t`.
    static func putPart<V: SIMD>(_ t: UnsafeMutableBufferPointer<V>, _ c: UnsafeMutablePointer<Float>, _ ldc: Int,
                                 rows: Int, cols: Int, _ accumulate: Bool) where V.Scalar == Float {
        let w = V.scalarCount
        if cols == 2 * w {
            // Full-width rows (a last tile short of rows only): whole vectors.
            for i in 0..<rows { put(c + i * ldc, t[2 * i], t[2 * i + 1], accumulate) }
            return
        }
        for i in 0..<rows {
            let row = c + i * ldc
            for j in 0..<cols {
                let v = t[2 * i + j / w][j % w]
                row[j] = accumulate ? row[j] + v : v
            }
        }
    }

    /// Writes (or adds) the two vectors lo, hi side by side at p.
    @inline(__always)
    static func put<V: SIMD>(_ p: UnsafeMutablePointer<Float>, _ lo: V, _ hi: V, _ accumulate: Bool) where V.Scalar == Float {
        let w = V.scalarCount
        if accumulate {
            store(p, load(UnsafePointer(p)) + lo)
            store(p + w, load(UnsafePointer(p + w)) + hi)
        } else {
            store(p, lo)
            store(p + w, hi)
        }
    }

    @inline(__always)
    static func load<V: SIMD>(_ p: UnsafePointer<Float>) -> V where V.Scalar == Float { UnsafeRawPointer(p).loadUnaligned(as: V.self) }

    @inline(__always)
    static func store<V: SIMD>(_ p: UnsafeMutablePointer<Float>, _ v: V) where V.Scalar == Float {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self)
    }
}

/// LLVM's prefetch intrinsic (read, locality 2 = into L2 and below, data cache): Swift has no
/// prefetch of its own, and the arguments after the address must be constants.
@_silgen_name("llvm.prefetch.p0")
private func llvmPrefetch(_ address: UnsafeRawPointer, _ write: Int32, _ locality: Int32, _ dataCache: Int32)

/// Asks for the cache line holding `p` ahead of its use (never faults, even past the end).
@inline(__always)
func prefetch(_ p: UnsafeRawPointer) { llvmPrefetch(p, 0, 2, 1) }

/// Pointers handed to packing workers (each writes its own panels).
private struct PackPointers: @unchecked Sendable {
    let src: UnsafePointer<Float>
    let forward: UnsafeMutablePointer<Float>, backward: UnsafeMutablePointer<Float>
}

/// Operands handed to GEMM workers (each writes its own panels of C).
private struct GemmOperands: @unchecked Sendable {
    let a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>
}
