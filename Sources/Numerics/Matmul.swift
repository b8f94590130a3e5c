// Matrix multiplication through cblas_sgemm.
//
// Dimension legend: A is [M, K] (or [K, M] when transposed), B is [K, N] (or [N, K] when
// transposed), C is [M, N]; any number of leading batch dimensions Bt is allowed on A, and
// B either has the same leading dimensions or is rank 2 (shared by every batch entry).
import CBLAS

/// Raw sgemm on row-major buffers: C = alpha * op(A) op(B) + beta * C.
@inlinable
public func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                  a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                  beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
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
