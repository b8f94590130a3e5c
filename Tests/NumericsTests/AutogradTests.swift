// Tape behaviour: accumulation, no-grad mode, leaves, deep graphs, determinism.
import Foundation
import XCTest
@testable import Numerics

final class AutogradTests: XCTestCase {
    func testGradientsAccumulateAcrossBackwardCalls() {
        let w = Variable(Tensor(shape: [3], data: [1, 2, 3]), requiresGrad: true)
        let x1 = Variable(Tensor(shape: [3], data: [1, 1, 1])), x2 = Variable(Tensor(shape: [3], data: [0, 2, -1]))
        Ops.sum(w * x1).backward()
        XCTAssertEqual(w.grad?.scalars, [1, 1, 1])
        Ops.sum(w * x2).backward()
        XCTAssertEqual(w.grad?.scalars, [1, 3, 0], "second backward adds to the first")
        w.zeroGrad()
        XCTAssertNil(w.grad)
        XCTAssertNil(x1.grad, "inputs not requiring grad get none")
    }

    func testNoGradRecordsNothing() {
        let w = Variable(Tensor(shape: [2, 2], data: [1, 2, 3, 4]), requiresGrad: true)
        let y = Autograd.withNoGrad { Ops.tanh(Ops.matmul(w, w)) }
        XCTAssertTrue(y.isLeaf)
        XCTAssertFalse(y.requiresGrad)
        XCTAssertTrue(Autograd.isGradEnabled, "withNoGrad restores the previous state")
        let plain = Variable(Tensor(shape: [2, 2], data: [1, 2, 3, 4]))
        XCTAssertTrue(Ops.exp(plain + plain).isLeaf, "no input requires grad: no tape")
        let tracked = Ops.exp(w + plain)
        XCTAssertFalse(tracked.isLeaf)
        XCTAssertTrue(tracked.requiresGrad)
        XCTAssertTrue(tracked.detached().isLeaf)
    }

    func testGradModeIsPerThread() {
        Autograd.isGradEnabled = false
        defer { Autograd.isGradEnabled = true }
        var otherThread = false
        let done = DispatchSemaphore(value: 0)
        let box = FlagBox()
        Thread.detachNewThread {
            box.value = Autograd.isGradEnabled
            done.signal()
        }
        done.wait()
        otherThread = box.value
        XCTAssertTrue(otherThread)
        XCTAssertFalse(Autograd.isGradEnabled)
    }

    func testCustomOpGradient() {
        var rng = SplitMix64(seed: 8)
        let x = randomTensor([3, 4], &rng)
        // cube(x) as a custom op, checked against finite differences.
        checkGradients("custom cube", [x]) { v in
            let vx = v[0].value
            return Ops.custom(Kernels.map(vx) { $0 * $0 * $0 }, inputs: [v[0]]) { g, _ in
                [Kernels.zipMap(g, vx) { 3 * $0 * $1 * $1 }]
            }
        }
        XCTAssertTrue(Ops.custom(x, inputs: [Variable(x)]) { _, _ in [nil] }.isLeaf)
    }

    func testRetainsGradAndFrozenParents() {
        let a = Variable(Tensor(shape: [2], data: [1, 2]), requiresGrad: true)
        let frozen = Variable(Tensor(shape: [2], data: [3, 4]), requiresGrad: false)
        let h = a * frozen
        h.retainsGrad = true
        Ops.sum(Ops.square(h)).backward()
        XCTAssertEqual(h.grad?.scalars, [6, 16])
        XCTAssertEqual(a.grad?.scalars, [18, 64])
        XCTAssertNil(frozen.grad)
    }

    /// A slice's gradient lands in its part of the parent's gradient, added in place by the
    /// engine; the node's own backward closure states the same zero-padded gradient.
    func testSliceGradientIsAddedIntoItsPartOfTheParent() throws {
        let x = Variable(Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6]), requiresGrad: true)
        let middle = Ops.slice(x, axis: 1, range: 1..<2)
        let tail = Ops.slice(x, axis: -1, range: 1..<3)
        (Ops.sum(Ops.scale(middle, by: 10)) + Ops.sum(tail)).backward()
        XCTAssertEqual(x.grad?.scalars, [0, 11, 1, 0, 11, 1])
        let node = try XCTUnwrap(middle.node)
        let stated = node.backward(Tensor(shape: [2, 1], data: [7, 8]), [true])
        XCTAssertEqual(stated.first??.shape, [2, 3])
        XCTAssertEqual(stated.first??.scalars, [0, 7, 0, 0, 8, 0])
    }

    func testDeepGraphBackwardAndRelease() {
        let x = Variable(Tensor(shape: [4], data: [0.1, 0.2, 0.3, 0.4]), requiresGrad: true)
        var h = x
        for _ in 0..<20_000 { h = Ops.scale(h, by: 1) }
        Ops.sum(h).backward()
        XCTAssertEqual(x.grad?.scalars, [1, 1, 1, 1])
        h = x  // releases a 20k-deep tape without recursion
    }

    /// A tiny training run (linear + softmax cross-entropy with AdamW, dropout, shuffling).
    private func trainOnce(seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        let w = Variable(Tensor.randomNormal(shape: [4, 6], std: 0.2, rng: &rng), requiresGrad: true)
        let b = Variable(Tensor(zeros: [4]), requiresGrad: true)
        let x = Tensor.randomUniform(shape: [8, 6], low: -1, high: 1, rng: &rng)
        let targets = (0..<8).map { _ in rng.nextInt(below: 4) }
        let opt = AdamW(parameters: [w, b], learningRate: 0.05)
        for _ in 0..<5 {
            let order = rng.permutation(8)
            let batch = Variable(Kernels.gatherRows(x, indices: Array(order.prefix(4))))
            let h = Ops.dropout(batch, p: 0.2, rng: &rng)
            let loss = Ops.crossEntropy(logits: Ops.linear(h, weight: w, bias: b), targets: order.prefix(4).map { targets[$0] })
            opt.zeroGrad()
            loss.backward()
            Gradients.clipGlobalNorm(opt.parameters, maxNorm: 1)
            opt.step()
        }
        return w.value.scalars + b.value.scalars
    }

    func testSameSeedBitIdenticalTraining() {
        let a = trainOnce(seed: 5), b = trainOnce(seed: 5), c = trainOnce(seed: 6)
        XCTAssertEqual(a.map { $0.bitPattern }, b.map { $0.bitPattern })
        XCTAssertNotEqual(a, c)
    }

    /// Row-parallel kernels give bit-identical results for any kernel thread count.
    func testThreadCountDoesNotChangeResults() {
        var rng = SplitMix64(seed: 9)
        let logits = Tensor.randomNormal(shape: [64, 4099], std: 3, rng: &rng)
        let ref = Tensor.randomNormal(shape: [64, 4099], std: 3, rng: &rng)
        let targets = (0..<64).map { $0 % 7 == 0 ? -100 : rng.nextInt(below: 4099) }
        func run() -> [UInt32] {
            let x = Variable(logits, requiresGrad: true)
            let loss = Ops.crossEntropy(logits: x, targets: targets) + Ops.klDivergence(referenceLogits: ref, logits: x)
                + Ops.sum(Ops.tanh(x))
            loss.backward()
            return [loss.item.bitPattern] + x.grad!.scalars.map { $0.bitPattern }
        }
        let saved = Threading.kernelThreads
        defer { Threading.kernelThreads = saved }
        Threading.kernelThreads = 1
        let serial = run()
        Threading.kernelThreads = 3
        XCTAssertEqual(run(), serial)
    }

    /// The integer dropout test (`dropBits`, used by the fused LoRA update) decides exactly as
    /// the float test `drops` for every output, including probabilities on and next to a
    /// multiple of 2^-24 where the two could disagree by one step, and partial words.
    func testDropBitsMatchDrops() {
        let tie = Float(3) / 16_777_216
        for p: Float in [0.05, 0.25, 0.5, 1.0 / 3.0, tie, tie.nextUp, tie.nextDown, 0.999] {
            let rng = SplitMix64(seed: 5 &+ UInt64(p.bitPattern))
            let threshold = SplitMix64.dropThreshold(p: p)
            for (start, count) in [(0, 64), (64, 64), (130, 17), (1000, 1)] {
                let word = rng.dropBits(from: start, count: count, threshold: threshold)
                for j in 0..<count {
                    XCTAssertEqual(word >> UInt64(j) & 1 == 1, rng.drops(start + j, p: p), "p \(p) output \(start + j)")
                }
                XCTAssertEqual(count == 64 ? 0 : word >> UInt64(count), 0, "p \(p): bits past count")
            }
        }
        // Outputs whose top 24 bits sit right at the threshold: z >> 40 == T - 1 drops, T keeps.
        let p: Float = 0.3, t = SplitMix64.dropThreshold(p: p)
        XCTAssertLessThan(SplitMix64.unitFloat((t - 1) << 40), p)
        XCTAssertGreaterThanOrEqual(SplitMix64.unitFloat(t << 40), p)
    }

    func testSeededRandomIsPlatformIndependent() {
        var rng = SplitMix64(seed: 42)
        // Reference values of SplitMix64 (seed 42) from the published algorithm.
        XCTAssertEqual(rng.next(), 0xBDD7_3226_2FEB_6E95)
        var r2 = SplitMix64(seed: 1)
        var arr = Array(0..<10)
        r2.shuffle(&arr)
        XCTAssertEqual(Set(arr), Set(0..<10))
        var r3 = SplitMix64(seed: 1)
        XCTAssertEqual(r3.permutation(10), arr)
        var r4 = SplitMix64(seed: 3)
        let mask = Tensor.dropoutMask(shape: [10_000], p: 0.25, rng: &r4).scalars
        let kept = mask.filter { $0 != 0 }
        XCTAssertEqual(Double(kept.count) / 10_000, 0.75, accuracy: 0.02)
        XCTAssertTrue(kept.allSatisfy { abs($0 - 1 / 0.75) < 1e-6 })
        var r5 = SplitMix64(seed: 4)
        let normal = Tensor.randomNormal(shape: [20_000], std: 2, rng: &r5).scalars
        let mean = normal.reduce(0, +) / 20_000
        let std = (normal.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 20_000).squareRoot()
        XCTAssertEqual(mean, 0, accuracy: 0.05)
        XCTAssertEqual(std, 2, accuracy: 0.05)
    }
}

/// Hands a flag from another thread back to the test; the semaphore orders the accesses.
private final class FlagBox: @unchecked Sendable {
    var value = false
}
