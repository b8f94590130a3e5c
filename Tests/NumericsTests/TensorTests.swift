import XCTest
@testable import Numerics

final class TensorTests: XCTestCase {
    func testMatmulMatchesNaive() {
        var rng = SplitMix64(seed: 7)
        let a = Tensor(shape: [3, 5]) { p in for i in p.indices { p[i] = rng.nextFloat() } }
        let b = Tensor(shape: [5, 4]) { p in for i in p.indices { p[i] = rng.nextFloat() } }
        let c = Tensor.matmul(a, b)
        XCTAssertEqual(c.shape, [3, 4])
        for i in 0..<3 { for j in 0..<4 {
            var s: Float = 0
            for k in 0..<5 { s += a[i, k] * b[k, j] }
            XCTAssertEqual(c[i, j], s, accuracy: 1e-5)
        } }
        let ct = Tensor.matmul(b, a, transposeA: true, transposeB: true)
        for i in 0..<4 { for j in 0..<3 { XCTAssertEqual(ct[i, j], c[j, i], accuracy: 1e-5) } }
    }

    func testCopyOnWriteProtectsViews() {
        let a = Tensor(shape: [2, 2], data: [1, 2, 3, 4])
        var v = a.reshaped([4])
        v.withUnsafeMutableBufferPointer { $0[0] = 9 }
        XCTAssertEqual(a.scalars, [1, 2, 3, 4])
        XCTAssertEqual(v.scalars, [9, 2, 3, 4])
        XCTAssertEqual(a.rows(1..<2).scalars, [3, 4])
    }
}
