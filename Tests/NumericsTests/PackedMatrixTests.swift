import XCTest
@testable import Numerics

final class PackedMatrixTests: XCTestCase {
    func random(_ count: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { _ in rng.nextFloat() - 0.5 }
    }

    /// Both products against a double-precision reference, over shapes that exercise the
    /// 16-column panel tails, the tile remainders (AVX2: 6-row tiles, 1- and 2-row tails take
    /// the narrow kernel, odd depths its single-k tail; AVX-512: 12 x 32 tiles, tails of 1-4
    /// rows take the 4-row kernel, 5-11 rows the 12-row one, an odd panel count a one-panel
    /// unit), several k blocks (depth > 320), several m blocks (M > 168), strided operands,
    /// accumulation, and 1 or 2 threads.
    func testProductsMatchReference() throws {
        let saved = Threading.kernelThreads
        defer { Threading.kernelThreads = saved }
        let shapes = [(1, 1, 1), (7, 37, 5), (17, 16, 6), (16, 17, 7), (33, 331, 13), (40, 651, 2), (50, 700, 170), (130, 96, 64),
                      (48, 577, 67), (64, 20, 11), (80, 40, 16), (32, 50, 20)]
        for threads in [1, 2] {
            Threading.kernelThreads = threads
            for (r, k, m) in shapes {
                let w = Tensor(shape: [r, k], data: random(r * k, seed: UInt64(r * 1000 + k)))
                let packed = PackedMatrix(w)
                XCTAssertEqual(packed.byteCount, ((r + 15) / 16 * k + (k + 15) / 16 * r) * 64)
                let ws = w.scalars
                for accumulate in [false, true] {
                    let what = "[\(r), \(k)] m \(m) acc \(accumulate) threads \(threads)"
                    // y = x W^T: x [m, k] with stride k + 3, y [m, r] with stride r + 2.
                    check("x W^T " + what, m: m, depth: k, outCols: r, ldIn: k + 3, ldOut: r + 2, accumulate: accumulate,
                          weight: { c, kk in ws[c * k + kk] }) { input, output in
                        packed.product(x: input, m: m, ldx: k + 3, y: output, ldy: r + 2, accumulate: accumulate)
                    }
                    // dx = dy W: dy [m, r] with stride r + 1, dx [m, k] with stride k + 4.
                    check("dy W " + what, m: m, depth: r, outCols: k, ldIn: r + 1, ldOut: k + 4, accumulate: accumulate,
                          weight: { c, rr in ws[rr * k + c] }) { input, output in
                        packed.transposedProduct(dy: input, m: m, lddy: r + 1, dx: output, lddx: k + 4, accumulate: accumulate)
                    }
                }
            }
        }
    }

    /// Runs `product` on a random input [m, depth] (row stride ldIn) into an output [m,
    /// outCols] (row stride ldOut, prefilled at random for accumulation, NaN in the padding)
    /// and compares with out[j, c] (+)= sum_d weight(c, d) in[j, d] in double precision.
    func check(_ what: String, m: Int, depth: Int, outCols: Int, ldIn: Int, ldOut: Int, accumulate: Bool,
               weight: (Int, Int) -> Float,
               _ product: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) {
        let input = random(m * ldIn, seed: 5)
        let base = random(m * ldOut, seed: 6)
        var out = base
        for j in 0..<m { for c in outCols..<ldOut { out[j * ldOut + c] = .nan } }
        input.withUnsafeBufferPointer { pi in out.withUnsafeMutableBufferPointer { po in product(pi.baseAddress!, po.baseAddress!) } }
        var worst = 0.0
        for j in 0..<m {
            for c in 0..<outCols {
                var ref = accumulate ? Double(base[j * ldOut + c]) : 0
                for d in 0..<depth { ref += Double(weight(c, d)) * Double(input[j * ldIn + d]) }
                worst = max(worst, abs(ref - Double(out[j * ldOut + c])))
            }
            for c in outCols..<ldOut { XCTAssertTrue(out[j * ldOut + c].isNaN, "\(what): padding of row \(j) untouched") }
        }
        XCTAssertLessThan(worst, 1e-4, "\(what): max abs diff \(worst)")
    }

    /// A linear layer on the packed weight gives the same output and input gradient as on
    /// sgemm, with and without bias, and still gives the weight gradient if asked.
    func testLinearOnPackedWeight() throws {
        for bias in [false, true] {
            let w = Variable(Tensor(shape: [19, 23], data: random(19 * 23, seed: 1)), requiresGrad: true)
            let b = bias ? Variable(Tensor(shape: [19], data: random(19, seed: 2))) : nil
            let xv = Tensor(shape: [2, 7, 23], data: random(2 * 7 * 23, seed: 3))
            let seed = Tensor(shape: [2, 7, 19], data: random(2 * 7 * 19, seed: 4))
            var results: [(Tensor, Tensor, Tensor)] = []
            for packed in [nil, PackedMatrix(w.value)] {
                w.grad = nil
                let x = Variable(xv, requiresGrad: true)
                let y = Ops.linear(x, weight: w, bias: b, packed: packed)
                y.backward(seed: seed)
                results.append((y.value, try XCTUnwrap(x.grad), try XCTUnwrap(w.grad)))
            }
            for (name, a, e) in [("y", results[1].0, results[0].0), ("dx", results[1].1, results[0].1),
                                 ("dw", results[1].2, results[0].2)] {
                XCTAssertEqual(a.shape, e.shape)
                let diff = zip(a.scalars, e.scalars).map { abs($0 - $1) }.max() ?? .infinity
                XCTAssertLessThan(diff, 1e-5, "\(name) bias \(bias): max abs diff \(diff)")
            }
        }
    }

    func testLiveBytesFollowTheCopies() {
        let before = PackedMatrix.liveBytes
        var m: PackedMatrix? = PackedMatrix(Tensor(shape: [20, 10], repeating: 1))
        XCTAssertEqual(PackedMatrix.liveBytes - before, m?.byteCount)
        m = nil
        XCTAssertEqual(PackedMatrix.liveBytes, before)
    }
}
