// Finite-difference gradient checks: arithmetic, unary, reductions, matmul, shape ops.
import XCTest
@testable import Numerics

final class GradientTests: XCTestCase {
    func testBroadcastArithmetic() {
        var rng = SplitMix64(seed: 1)
        let pairs: [([Int], [Int])] = [([3, 5], [3, 5]), ([2, 3, 5], [5]), ([4, 1, 7], [3, 1]), ([1], [2, 3]),
                                       ([2, 1, 3, 1], [1, 4, 1, 5]), ([9], [])]
        for (sa, sb) in pairs {
            let a = randomTensor(sa, &rng), b = randomTensor(sb, &rng)
            let bPos = randomTensor(sb, &rng, low: 0.5, high: 2)
            checkGradients("add \(sa) \(sb)", [a, b]) { $0[0] + $0[1] }
            checkGradients("sub \(sa) \(sb)", [a, b]) { $0[0] - $0[1] }
            checkGradients("mul \(sa) \(sb)", [a, b]) { $0[0] * $0[1] }
            checkGradients("div \(sa) \(sb)", [a, bPos]) { $0[0] / $0[1] }
            checkGradients("div reversed \(sb) \(sa)", [bPos, randomTensor(sa, &rng, low: 0.5, high: 2)]) { $0[0] / $0[1] }
        }
    }

    func testUnaryOps() {
        var rng = SplitMix64(seed: 2)
        let x = randomTensor([3, 7], &rng, low: -2, high: 2)
        let pos = randomTensor([3, 7], &rng, low: 0.3, high: 2)
        checkGradients("scale", [x]) { Ops.scale($0[0], by: -1.7) }
        checkGradients("addScalar", [x]) { Ops.addScalar($0[0], 0.3) }
        checkGradients("exp", [x]) { Ops.exp($0[0]) }
        checkGradients("log", [pos]) { Ops.log($0[0]) }
        checkGradients("tanh", [x]) { Ops.tanh($0[0]) }
        checkGradients("sigmoid", [x]) { Ops.sigmoid($0[0]) }
        checkGradients("silu", [x]) { Ops.silu($0[0]) }
        checkGradients("gelu exact", [x]) { Ops.gelu($0[0], approximate: false) }
        checkGradients("gelu tanh", [x]) { Ops.gelu($0[0], approximate: true) }
        checkGradients("softcap", [Kernels.scale(x, by: 20)], step: 1e-2) { Ops.softcap($0[0], cap: 15) }
        checkGradients("square", [x]) { Ops.square($0[0]) }
        checkGradients("sqrt", [pos]) { Ops.sqrt($0[0]) }
        checkGradients("relu", [pos]) { Ops.relu(Ops.addScalar($0[0], -1.15)) }
        checkGradients("negate", [x]) { -$0[0] }
        let y = randomTensor([3, 7], &rng, low: -2, high: 2)
        checkGradients("gated silu", [x, y]) { Ops.gated($0[0], $0[1], .silu) }
        checkGradients("gated gelu tanh", [x, y]) { Ops.gated($0[0], $0[1], .geluTanh) }
        checkGradients("addScaled", [x, y]) { Ops.addScaled($0[0], $0[1], scale: 0.37) }
        // The fused ops agree with their unfused compositions.
        let vx = Variable(x), vy = Variable(y)
        XCTAssertEqual(Ops.gated(vx, vy, .silu).value.scalars, Ops.mul(Ops.silu(vx), vy).value.scalars)
        XCTAssertEqual(Ops.addScaled(vx, vy, scale: 0.37).value.scalars, Ops.add(vx, Ops.scale(vy, by: 0.37)).value.scalars)
    }

    /// The gated op on a fused [N, 2W] gate/up output: finite differences, and the same
    /// values and gradients, bit for bit, as `gated` on the two halves (W = 13: a tail of 5
    /// lanes after the full eight; rows of 2W so every row starts off a lane boundary).
    func testGatedOnFusedOutputMatchesSplitHalves() {
        var rng = SplitMix64(seed: 21)
        let w = 13
        let fused = randomTensor([3, 2 * w], &rng, low: -3, high: 3)
        let seed = randomTensor([3, w], &rng, low: -1, high: 1)
        for fn in Activation.allCases {
            checkGradients("gated fused \(fn)", [fused]) { Ops.gated(fused: $0[0], width: w, fn) }
            let a = Variable(fused, requiresGrad: true)
            let ya = Ops.gated(fused: a, width: w, fn)
            ya.backward(seed: seed)
            let b = Variable(fused, requiresGrad: true)
            let halves = Ops.split(b, axis: -1, sizes: [w, w])
            let yb = Ops.gated(halves[0], halves[1], fn)
            yb.backward(seed: seed)
            XCTAssertEqual(ya.value.shape, [3, w])
            XCTAssertEqual(ya.value.scalars, yb.value.scalars, "\(fn) values")
            XCTAssertEqual(a.grad?.scalars, b.grad?.scalars, "\(fn) gradients")
        }
    }

    func testReductions() {
        var rng = SplitMix64(seed: 3)
        // Well-separated values so the max has no near-ties within the finite-difference step.
        let x = Tensor(shape: [2, 3, 5], data: rng.permutation(30).map { Float($0) * 0.1 - 1.5 })
        for axis in [0, 1, 2, -1] {
            checkGradients("sum axis \(axis)", [x]) { Ops.sum($0[0], axis: axis) }
            checkGradients("mean axis \(axis) keepDims", [x]) { Ops.mean($0[0], axis: axis, keepDims: true) }
            checkGradients("max axis \(axis)", [x]) { Ops.max($0[0], axis: axis) }
        }
        checkGradients("sum all", [x]) { Ops.sum($0[0]) }
        checkGradients("mean all", [x]) { Ops.mean($0[0]) }
        checkGradients("softmax", [randomTensor([4, 9], &rng, low: -3, high: 3)]) { Ops.softmax($0[0]) }
        checkGradients("logSoftmax", [randomTensor([4, 9], &rng, low: -3, high: 3)]) { Ops.logSoftmax($0[0]) }
    }

    func testMatmulVariants() {
        var rng = SplitMix64(seed: 4)
        let m = 3, k = 5, n = 4
        for ta in [false, true] { for tb in [false, true] {
            let a = randomTensor(ta ? [k, m] : [m, k], &rng), b = randomTensor(tb ? [n, k] : [k, n], &rng)
            checkGradients("matmul2 \(ta) \(tb)", [a, b]) { Ops.matmul($0[0], $0[1], transposeA: ta, transposeB: tb) }
            let a3 = randomTensor(ta ? [2, k, m] : [2, m, k], &rng), b3 = randomTensor(tb ? [2, n, k] : [2, k, n], &rng)
            checkGradients("matmul3 \(ta) \(tb)", [a3, b3]) { Ops.matmul($0[0], $0[1], transposeA: ta, transposeB: tb) }
            checkGradients("matmul3 shared \(ta) \(tb)", [a3, b]) { Ops.matmul($0[0], $0[1], transposeA: ta, transposeB: tb) }
            checkGradients("matmul3 shared left \(ta) \(tb)", [a, b3]) { Ops.matmul($0[0], $0[1], transposeA: ta, transposeB: tb) }
            let a4 = randomTensor(ta ? [2, 2, k, m] : [2, 2, m, k], &rng), b4 = randomTensor(tb ? [2, 2, n, k] : [2, 2, k, n], &rng)
            checkGradients("matmul4 \(ta) \(tb)", [a4, b4]) { Ops.matmul($0[0], $0[1], transposeA: ta, transposeB: tb) }
        } }
    }

    func testLinear() {
        var rng = SplitMix64(seed: 5)
        let x = randomTensor([2, 3, 6], &rng), w = randomTensor([5, 6], &rng), b = randomTensor([5], &rng)
        checkGradients("linear bias", [x, w, b]) { Ops.linear($0[0], weight: $0[1], bias: $0[2]) }
        checkGradients("linear", [x, w]) { Ops.linear($0[0], weight: $0[1]) }
        // Linear equals matmul with a transposed weight plus bias.
        let y = Ops.linear(Variable(x), weight: Variable(w), bias: Variable(b)).value
        let ref = Kernels.add(Tensor.matmul(x, w, transposeB: true), b)
        XCTAssertEqual(y.shape, [2, 3, 5])
        for (p, q) in zip(y.scalars, ref.scalars) { XCTAssertEqual(p, q, accuracy: 1e-5) }
    }

    func testShapeOps() {
        var rng = SplitMix64(seed: 6)
        let x = randomTensor([2, 3, 4, 5], &rng)
        checkGradients("reshape", [x]) { Ops.reshape($0[0], [6, -1]) }
        checkGradients("permute 0213", [x]) { Ops.permute($0[0], [0, 2, 1, 3]) }
        checkGradients("permute 3102", [x]) { Ops.permute($0[0], [3, 1, 0, 2]) }
        checkGradients("transpose", [x]) { Ops.transpose($0[0], 1, 2) }
        let y = randomTensor([2, 1, 4, 5], &rng)
        checkGradients("concat axis 1", [x, y]) { Ops.concat([$0[0], $0[1]], axis: 1) }
        checkGradients("concat last", [x, x]) { Ops.concat([$0[0], $0[1]], axis: -1) }
        checkGradients("slice", [x]) { Ops.slice($0[0], axis: 2, range: 1..<3) }
        checkGradients("split", [x]) { v in
            let parts = Ops.split(v[0], axis: 3, sizes: [2, 3])
            return Ops.concat([Ops.scale(parts[1], by: 2), parts[0]], axis: 3)
        }
        // Slices add their gradients into the parent's in place: pieces on a middle axis,
        // overlapping slices, a piece left unused, the parent also used directly and a slice
        // of a slice.
        checkGradients("split middle axis, one piece unused", [x]) { v in
            let parts = Ops.split(v[0], axis: 1, sizes: [1, 1, 1])
            return Ops.concat([Ops.exp(parts[2]), Ops.scale(parts[0], by: -3)], axis: 1)
        }
        checkGradients("overlapping slices and direct use", [x]) { v in
            let a = Ops.slice(v[0], axis: 3, range: 0..<4), b = Ops.slice(v[0], axis: 3, range: 2..<5)
            let inner = Ops.slice(b, axis: 2, range: 1..<3)
            return Ops.concat([Ops.reshape(a * a, [2, -1]), Ops.reshape(inner, [2, -1]), Ops.reshape(Ops.exp(v[0]), [2, -1])],
                              axis: 1)
        }
        let table = randomTensor([6, 3], &rng)
        checkGradients("gatherRows duplicates", [table]) { Ops.gatherRows($0[0], indices: [5, 0, 5, 2]) }
        checkGradients("embedding", [table]) { Ops.embedding(weight: $0[0], ids: [1, 1, 3]) }
        let seq = randomTensor([2, 4, 3], &rng)
        checkGradients("maskedMeanPool", [seq]) { Ops.maskedMeanPool($0[0], mask: [true, true, false, true, false, false, false, false]) }
        checkGradients("maskedMeanPool weights", [seq]) { Ops.maskedMeanPool($0[0], mask: [1, 0.5, 0, 2, 1, 1, 1, 0] as [Float]) }
    }

    func testSameVariableUsedTwice() {
        var rng = SplitMix64(seed: 7)
        let x = randomTensor([4, 3], &rng)
        checkGradients("x*x + exp(x)", [x]) { $0[0] * $0[0] + Ops.exp($0[0]) }
        checkGradients("diamond", [x]) { v in
            let h = Ops.tanh(v[0])
            return Ops.matmul(h, h, transposeB: true) + Ops.sum(h, axis: 1, keepDims: true)
        }
    }
}
