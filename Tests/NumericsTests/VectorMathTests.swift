// VectorMath: vectorised exp / tanh / sigmoid / SiLU / GELU against Foundation, softmax and
// log-sum-exp rows against scalar references, and the split GEMM paths against a naive product.
import Foundation
import XCTest
@testable import Numerics

final class VectorMathTests: XCTestCase {
    private func lanes(_ xs: [Float], _ f: (SIMD8<Float>) -> SIMD8<Float>) -> [Float] {
        var out: [Float] = []
        var i = 0
        while i < xs.count {
            var v = SIMD8<Float>(repeating: 0)
            for j in 0..<8 where i + j < xs.count { v[j] = xs[i + j] }
            let y = f(v)
            for j in 0..<8 where i + j < xs.count { out.append(y[j]) }
            i += 8
        }
        return out
    }

    private func sweep() -> [Float] {
        var xs: [Float] = stride(from: -90, through: 90, by: 0.0371).map { Float($0) }
        xs += [0, -0, 1e-8, -1e-8, 0.049, -0.049, 88.7, -87.3, -100, 100, .infinity, -.infinity]
        return xs
    }

    func testExpMatchesFoundationWithinTwoUlp() {
        let xs = sweep()
        let ys = lanes(xs) { VectorMath.exp($0) }
        for (x, y) in zip(xs, ys) {
            let ref = Foundation.exp(x)
            if ref == 0 || ref.isInfinite || ref < Float.leastNormalMagnitude * 4 {
                XCTAssertTrue(y == ref || Swift.abs(y) < Float.leastNormalMagnitude * 4 || (ref.isInfinite && y > 1e38),
                              "exp(\(x)) = \(y), expected \(ref)")
                continue
            }
            XCTAssertLessThanOrEqual(Swift.abs(y - ref), 2 * ref.ulp, "exp(\(x)) = \(y), expected \(ref)")
        }
        XCTAssertEqual(lanes([-.infinity]) { VectorMath.exp($0) }[0], 0)
    }

    func testTanhSigmoidSiluGeluMatchScalarFormulas() {
        let xs = stride(from: -20, through: 20, by: 0.013).map { Float($0) } + [0, 1e-6, -1e-6, 0.04]
        let t = lanes(xs) { VectorMath.tanh($0) }
        let s = lanes(xs) { VectorMath.sigmoid($0) }
        let si = lanes(xs) { VectorMath.silu($0) }
        let sg = lanes(xs) { VectorMath.siluGrad($0) }
        let g = lanes(xs) { VectorMath.geluTanh($0) }
        let gg = lanes(xs) { VectorMath.geluTanhGrad($0) }
        for (i, x) in xs.enumerated() {
            XCTAssertEqual(t[i], Foundation.tanh(x), accuracy: 3e-7 + 2e-6 * Swift.abs(Foundation.tanh(x)), "tanh(\(x))")
            XCTAssertEqual(s[i], Kernels.sigmoid(x), accuracy: 1e-6, "sigmoid(\(x))")
            XCTAssertEqual(si[i], x * Kernels.sigmoid(x), accuracy: 1e-6 * Swift.max(1, Swift.abs(x)), "silu(\(x))")
            let sx = Kernels.sigmoid(x)
            XCTAssertEqual(sg[i], sx * (1 + x * (1 - sx)), accuracy: 1e-5, "silu'(\(x))")
            XCTAssertEqual(g[i], Kernels.geluTanh(x), accuracy: 1e-6 * Swift.max(1, Swift.abs(x)), "gelu(\(x))")
            XCTAssertEqual(gg[i], Kernels.geluTanhGrad(x), accuracy: 1e-5, "gelu'(\(x))")
        }
    }

    func testSoftmaxAndLogSumExpRows() {
        var rng = SplitMix64(seed: 9)
        for c in [1, 3, 8, 13, 64, 129] {
            var row = (0..<c).map { _ in rng.nextFloat() * 40 - 20 }
            if c > 4 { row[1] = -.infinity; row[c - 1] = -.infinity }
            let m = row.max() ?? 0
            let sum = row.reduce(0.0) { $0 + Foundation.exp(Double($1 - m)) }
            var out = [Float](repeating: .nan, count: c)
            row.withUnsafeBufferPointer { src in out.withUnsafeMutableBufferPointer { dst in
                VectorMath.softmaxRow(src.baseAddress!, dst.baseAddress!, c)
            } }
            for j in 0..<c {
                XCTAssertEqual(Double(out[j]), Foundation.exp(Double(row[j] - m)) / sum, accuracy: 1e-6, "softmax c=\(c) j=\(j)")
            }
            let lse = row.withUnsafeBufferPointer { VectorMath.logSumExp($0.baseAddress!, c) }
            XCTAssertEqual(Double(lse), Double(m) + Foundation.log(sum), accuracy: 1e-5 * Swift.max(1, Double(Swift.abs(m))))
        }
        let masked = [Float](repeating: -.infinity, count: 11)
        var out = [Float](repeating: .nan, count: 11)
        masked.withUnsafeBufferPointer { src in out.withUnsafeMutableBufferPointer { dst in
            VectorMath.softmaxRow(src.baseAddress!, dst.baseAddress!, 11)
        } }
        XCTAssertEqual(out, [Float](repeating: 0, count: 11))
    }

    /// Split GEMMs (by rows, by columns, row-vector sgemv) agree with a naive product for
    /// every transpose combination, alpha and beta, on shapes above the split threshold.
    func testSplitProductsMatchNaive() {
        var rng = SplitMix64(seed: 3)
        let saved = Threading.kernelThreads
        defer { Threading.kernelThreads = saved }
        Threading.kernelThreads = 2
        for (m, n, k) in [(300, 97, 80), (40, 700, 90), (1, 1000, 300), (1, 70, 5), (17, 33, 9)] {
            for ta in [false, true] { for tb in [false, true] {
                let a = (0..<(m * k)).map { _ in rng.nextFloat() - 0.5 }
                let b = (0..<(k * n)).map { _ in rng.nextFloat() - 0.5 }
                let c0 = (0..<(m * n)).map { _ in rng.nextFloat() - 0.5 }
                var c = c0
                let alpha: Float = 0.75, beta: Float = 0.5
                let lda = ta ? m : k, ldb = tb ? k : n
                a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                    sgemm(transA: ta, transB: tb, m: m, n: n, k: k, alpha: alpha, a: pa.baseAddress!, lda: lda,
                          b: pb.baseAddress!, ldb: ldb, beta: beta, c: pc.baseAddress!, ldc: n)
                } } }
                var worst = 0.0
                for i in 0..<m { for j in 0..<n {
                    var s: Double = 0
                    for p in 0..<k {
                        let av = ta ? a[p * m + i] : a[i * k + p]
                        let bv = tb ? b[j * k + p] : b[p * n + j]
                        s += Double(av) * Double(bv)
                    }
                    let want = Double(alpha) * s + Double(beta) * Double(c0[i * n + j])
                    worst = Swift.max(worst, Swift.abs(Double(c[i * n + j]) - want))
                } }
                XCTAssertLessThan(worst, 1e-4, "m\(m) n\(n) k\(k) transA \(ta) transB \(tb)")
            } }
        }
    }
}
