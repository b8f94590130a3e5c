import XCTest
@testable import Numerics

final class BF16MatrixTests: XCTestCase {
    /// A [rows, cols] tensor of bf16-exact values.
    func bf16Tensor(_ rows: Int, _ cols: Int, seed: UInt64) -> Tensor {
        var rng = SplitMix64(seed: seed)
        return Tensor(shape: [rows, cols]) { p in
            for i in 0..<p.count { p[i] = Float(bitPattern: (rng.nextFloat() - 0.5).bitPattern & 0xFFFF_0000) }
        }
    }

    func testExactnessDecidesTheCopy() throws {
        let t = bf16Tensor(5, 7, seed: 1)
        let m = try XCTUnwrap(BF16Matrix(exactly: t))
        XCTAssertEqual(m.rows, 5)
        XCTAssertEqual(m.cols, 7)
        XCTAssertEqual(m.byteCount, 70)
        for r in 0..<5 { for k in 0..<7 { XCTAssertEqual(m[r, k], t.scalars[r * 7 + k]) } }
        var inexact = t.scalars
        inexact[12] = Float(bitPattern: inexact[12].bitPattern | 1)
        XCTAssertNil(BF16Matrix(exactly: Tensor(shape: [5, 7], data: inexact)), "one inexact entry keeps float32")
        XCTAssertNil(BF16Matrix(exactly: Tensor(shape: [35], data: t.scalars)), "rank 1 is not a matrix")
    }

    /// Products against a double-precision reference, over shapes that exercise the 16-column
    /// groups, their tails, the 4-row blocks and their remainders, several input rows with
    /// strides, and the threaded split (>= 256K entries).
    func testProductMatchesReference() throws {
        for (rows, cols, m) in [(1, 1, 1), (7, 37, 1), (67, 48, 3), (130, 577, 2), (640, 576, 1), (512, 1040, 8)] {
            let w = bf16Tensor(rows, cols, seed: UInt64(rows * cols))
            let matrix = try XCTUnwrap(BF16Matrix(exactly: w))
            let ldx = cols + 3, ldy = rows + 2
            var rng = SplitMix64(seed: 9)
            let x = (0..<(m * ldx)).map { _ in rng.nextFloat() - 0.5 }
            var y = [Float](repeating: .nan, count: m * ldy)
            x.withUnsafeBufferPointer { px in
                y.withUnsafeMutableBufferPointer { py in
                    matrix.product(x: px.baseAddress!, m: m, ldx: ldx, y: py.baseAddress!, ldy: ldy)
                }
            }
            let ws = w.scalars
            var worst = 0.0
            for j in 0..<m {
                for r in 0..<rows {
                    var ref = 0.0
                    for k in 0..<cols { ref += Double(ws[r * cols + k]) * Double(x[j * ldx + k]) }
                    worst = max(worst, abs(ref - Double(y[j * ldy + r])))
                }
                for r in rows..<ldy { XCTAssertTrue(y[j * ldy + r].isNaN, "padding of row \(j) untouched") }
            }
            XCTAssertLessThan(worst, 1e-4, "\(rows)x\(cols), m \(m): max abs diff \(worst)")
        }
    }
}
