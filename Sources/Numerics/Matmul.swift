// Matrix multiplication through cblas_sgemm.
//
// Dimension legend: A is [M, K] (or [K, M] when transposed), B is [K, N] (or [N, K] when
// transposed), C is [M, N]; a leading batch dimension Bt is optional on both operands.
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
    /// flag": no data is moved). Rank-3 operands are multiplied batch by batch; a rank-2
    /// right operand is shared by every batch entry.
    public static func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false,
                              transposeB: Bool = false) -> Tensor {
        precondition(a.rank >= 2 && b.rank >= 2, "matmul needs rank >= 2, got \(a.shape) and \(b.shape)")
        let aRows = a.shape[a.rank - 2], aCols = a.shape[a.rank - 1]
        let bRows = b.shape[b.rank - 2], bCols = b.shape[b.rank - 1]
        let m = transposeA ? aCols : aRows, k = transposeA ? aRows : aCols
        let kb = transposeB ? bCols : bRows, n = transposeB ? bRows : bCols
        precondition(k == kb, "matmul inner dimensions differ: \(a.shape)\(transposeA ? "ᵀ" : "") x \(b.shape)\(transposeB ? "ᵀ" : "")")
        let batchA = a.count / (aRows * aCols), batchB = b.count / (bRows * bCols)
        precondition(batchB == 1 || batchB == batchA, "matmul batch sizes differ: \(a.shape) x \(b.shape)")
        var outShape = Array(a.shape.dropLast(2))
        outShape += [m, n]
        var out = Tensor(zeros: outShape)
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                out.withUnsafeMutableBufferPointer { pc in
                    for i in 0..<batchA {
                        sgemm(transA: transposeA, transB: transposeB, m: m, n: n, k: k,
                              a: pa.baseAddress! + i * aRows * aCols, lda: aCols,
                              b: pb.baseAddress! + (batchB == 1 ? 0 : i * bRows * bCols), ldb: bCols,
                              c: pc.baseAddress! + i * m * n, ldc: n)
                    }
                }
            }
        }
        return out
    }
}
