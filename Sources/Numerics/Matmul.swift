// Matrix multiplication through cblas_sgemm.
//
// Dimension legend: A is [M, K] (or [K, M] when transposed), B is [K, N] (or [N, K] when
// transposed), C is [M, N]; any number of leading batch dimensions Bt is allowed on A, and
// B either has the same leading dimensions or is rank 2 (shared by every batch entry).
import CBLAS

/// Raw sgemm on row-major buffers: C = alpha * op(A) op(B) + beta * C. Products of at
/// least `Threading.gemmSplitThreshold` multiply-adds are split along the larger of M and N
/// across the kernel threads, each calling single-threaded OpenBLAS on its block.
public func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                  a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                  beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
    Threading.blasSetUp()
    let threads = Threading.kernelThreads
    if m == 1 && !transA && k > 0 {
        // A row vector times a matrix (KV-cached decoding): sgemv reads the weights once
        // instead of packing them, and large ones are split by output columns.
        rowVectorProduct(n: n, k: k, alpha: alpha, a: a, b: b, ldb: ldb, transB: transB, beta: beta, c: c,
                         threads: threads)
        return
    }
    if threads <= 1 || m &* n &* k < Threading.gemmSplitThreshold || (m < 32 && n < 32) {
        blockSgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        return
    }
    let ptrs = GemmPointers(a: a, b: b, c: c)
    if n >= m {
        // Column blocks of C: B's columns (or rows when transposed), C's columns. Block
        // widths are multiples of 16 so every block keeps the kernel's full-width tiles.
        let blocks = (n + 15) / 16, chunks = Swift.min(threads, blocks)
        Threading.parallelFor(chunks: chunks, blocks) { r in
            let lo = r.lowerBound * 16, hi = Swift.min(n, r.upperBound * 16)
            blockSgemm(transA, transB, m, hi - lo, k, alpha, ptrs.a, lda,
                       ptrs.b + (transB ? lo * ldb : lo), ldb, beta, ptrs.c + lo, ldc)
        }
    } else {
        let blocks = (m + 15) / 16, chunks = Swift.min(threads, blocks)
        Threading.parallelFor(chunks: chunks, blocks) { r in
            let lo = r.lowerBound * 16, hi = Swift.min(m, r.upperBound * 16)
            blockSgemm(transA, transB, hi - lo, n, k, alpha, ptrs.a + (transA ? lo : lo * lda), lda,
                       ptrs.b, ldb, beta, ptrs.c + lo * ldc, ldc)
        }
    }
}

/// c[0..<n] = alpha * a[0..<k] op(B) + beta * c, with B [n, k] when `transB` (rows are
/// output columns) else [k, n]; split over output columns when B has at least 256K entries.
private func rowVectorProduct(n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                              ldb: Int, transB: Bool, beta: Float, c: UnsafeMutablePointer<Float>, threads: Int) {
    let ptrs = GemmPointers(a: a, b: b, c: c)
    let blocks = (n + 63) / 64
    let chunks = threads > 1 && n * k >= 1 << 18 ? Swift.min(threads, blocks) : 1
    Threading.parallelFor(chunks: chunks, blocks) { r in
        let lo = r.lowerBound * 64, hi = Swift.min(n, r.upperBound * 64)
        if transB {  // y = B x with B [n, k] row-major
            cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(hi - lo), Int32(k), alpha, ptrs.b + lo * ldb, Int32(ldb),
                        ptrs.a, 1, beta, ptrs.c + lo, 1)
        } else {  // y = B^T x with B [k, n] row-major: the column block lo..<hi
            cblas_sgemv(CblasRowMajor, CblasTrans, Int32(k), Int32(hi - lo), alpha, ptrs.b + lo, Int32(ldb),
                        ptrs.a, 1, beta, ptrs.c + lo, 1)
        }
    }
}

/// One single-threaded cblas_sgemm call.
@inline(__always)
private func blockSgemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                        _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                        _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// Operand pointers handed to GEMM worker threads.
private struct GemmPointers: @unchecked Sendable {
    // @unchecked: A and B are only read; each worker writes a disjoint block of C.
    let a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>
}

extension Tensor {
    /// Matrix product of the last two dimensions, with optional transposes ("transpose as a
    /// flag": no data is moved). Leading dimensions are batch dimensions; a rank-2 operand
    /// is shared by every batch entry of the other. The output is allocated uninitialised and
    /// written by sgemm with beta = 0.
    public static func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false,
                              transposeB: Bool = false) -> Tensor {
        precondition(a.rank >= 2 && b.rank >= 2, "matmul needs rank >= 2, got \(a.shape) and \(b.shape)")
        let aRows = a.shape[a.rank - 2], aCols = a.shape[a.rank - 1]
        let bRows = b.shape[b.rank - 2], bCols = b.shape[b.rank - 1]
        let m = transposeA ? aCols : aRows, k = transposeA ? aRows : aCols
        let kb = transposeB ? bCols : bRows, n = transposeB ? bRows : bCols
        precondition(k == kb, "matmul inner dimensions differ: \(a.shape)\(transposeA ? "ᵀ" : "") x \(b.shape)\(transposeB ? "ᵀ" : "")")
        let batchA = a.count / Swift.max(aRows * aCols, 1), batchB = b.count / Swift.max(bRows * bCols, 1)
        precondition(a.rank == 2 || b.rank == 2 || Array(a.shape.dropLast(2)) == Array(b.shape.dropLast(2)),
                     "matmul batch dimensions differ: \(a.shape) x \(b.shape)")
        var outShape = Array((a.rank >= b.rank ? a.shape : b.shape).dropLast(2))
        outShape += [m, n]
        var out = Tensor(uninitialized: outShape)
        let pc = out.mutablePointer(), pa = a.basePointer, pb = b.basePointer
        if out.count == 0 { return out }
        if k == 0 {
            pc.update(repeating: 0, count: out.count)
            return out
        }
        if batchB == 1 && !transposeA && batchA > 1 {
            // Shared right operand: one big product over the flattened batch.
            sgemm(transA: false, transB: transposeB, m: batchA * m, n: n, k: k, a: pa, lda: aCols,
                  b: pb, ldb: bCols, c: pc, ldc: n)
            return out
        }
        for i in 0..<Swift.max(batchA, batchB) {
            sgemm(transA: transposeA, transB: transposeB, m: m, n: n, k: k,
                  a: pa + (batchA == 1 ? 0 : i * aRows * aCols), lda: aCols,
                  b: pb + (batchB == 1 ? 0 : i * bRows * bCols), ldb: bCols,
                  c: pc + i * m * n, ldc: n)
        }
        return out
    }
}

extension Kernels {
    /// y = x W^T (+ b) (+ base): x [..., In], weight [Out, In], bias [Out], base [N, Out]
    /// with N the rows of x (e.g. the residual stream, which the product is then accumulated
    /// onto with beta 1). `packed`, a packed copy of a frozen weight, replaces sgemm.
    /// Returns [..., Out].
    public static func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, accumulateOnto base: Tensor? = nil,
                              packed: PackedMatrix? = nil) -> Tensor {
        let inF = weight.shape[1], outF = weight.shape[0]
        precondition(weight.rank == 2 && x.shape.last == inF, "linear: input \(x.shape) does not match weight \(weight.shape)")
        if let bias { precondition(bias.count == outF, "linear: bias \(bias.shape) for \(outF) outputs") }
        let rows = x.count / Swift.max(inF, 1)
        if let base { precondition(base.count == rows * outF, "linear: base \(base.shape) is not [\(rows), \(outF)]") }
        var outShape = x.shape
        outShape[outShape.count - 1] = outF
        var y = Tensor(uninitialized: outShape)
        let py = y.mutablePointer()
        if let base {
            py.update(from: base.basePointer, count: rows * outF)
            if let bias {
                let pb = bias.basePointer
                for r in 0..<rows {
                    let row = py + r * outF
                    for i in 0..<outF { row[i] += pb[i] }
                }
            }
        } else if let bias {
            let pb = bias.basePointer
            for r in 0..<rows { (py + r * outF).update(from: pb, count: outF) }
        }
        let accumulate = bias != nil || base != nil
        if let packed {
            precondition(packed.rows == outF && packed.cols == inF, "linear: packed weight [\(packed.rows), \(packed.cols)] for \(weight.shape)")
            packed.product(x: x.basePointer, m: rows, ldx: inF, y: py, ldy: outF, accumulate: accumulate)
        } else {
            sgemm(transA: false, transB: true, m: rows, n: outF, k: inF, a: x.basePointer, lda: inF,
                  b: weight.basePointer, ldb: inF, beta: accumulate ? 1 : 0, c: py, ldc: outF)
        }
        return y
    }

    /// out += scale * (x A^T) B^T: a low-rank (LoRA) update of a linear output, forward only;
    /// x [N, In], a [R, In], b [Out, R], out [N, Out].
    public static func addLowRank(_ out: inout Tensor, _ x: Tensor, a: Tensor, b: Tensor, scale: Float) {
        let mid = linear(x, weight: a)
        let n = mid.count / Swift.max(a.shape[0], 1), r = a.shape[0], outDim = b.shape[0]
        precondition(out.count == n * outDim, "addLowRank: output \(out.shape) is not [\(n), \(outDim)]")
        sgemm(transA: false, transB: true, m: n, n: outDim, k: r, alpha: scale, a: mid.basePointer, lda: r,
              b: b.basePointer, ldb: r, beta: 1, c: out.mutablePointer(), ldc: outDim)
    }
}
