// The fused LM head + token NLL (one pass over the head weight with an online softmax)
// against the composed linear, soft-cap and cross-entropy ops: loss, per-row NLL and the
// gradient to x, over block and chunk boundaries, soft-capping, ignored rows and threads.
import XCTest
@testable import Numerics

final class LinearCrossEntropyTests: XCTestCase {
    private func check(rows: Int, width: Int, vocab: Int, softcap: Float?, ignored: Set<Int> = [], scale: Float = 1,
                       file: StaticString = #filePath, line: UInt = #line) {
        var rng = SplitMix64(seed: UInt64(rows * 1000 + width * 10 + vocab))
        let x = randomTensor([rows, width], &rng, low: -scale, high: scale)
        let w = randomTensor([vocab, width], &rng)
        let targets = (0..<rows).map { ignored.contains($0) ? -100 : rng.nextInt(below: vocab) }
        let name = "R \(rows) D \(width) V \(vocab) cap \(softcap.map { "\($0)" } ?? "none")"

        let xf = Variable(x, requiresGrad: true)
        let (loss, rowNLL) = Ops.linearCrossEntropy(xf, weight: w, softcap: softcap, targets: targets)
        Ops.scale(loss, by: 3).backward()

        let xc = Variable(x, requiresGrad: true)
        var logits = Ops.linear(xc, weight: Variable(w))
        if let softcap { logits = Ops.softcap(logits, cap: softcap) }
        let reference = Ops.crossEntropy(logits: logits, targets: targets)
        Ops.scale(reference, by: 3).backward()
        let lp = Kernels.targetLogProbabilities(logits.value, targets: targets)

        XCTAssertEqual(loss.item, reference.item, accuracy: 1e-5 * Swift.max(1, abs(reference.item)), name, file: file, line: line)
        for r in 0..<rows {
            XCTAssertEqual(rowNLL[r], ignored.contains(r) ? 0 : -lp[r], accuracy: 2e-5 * Swift.max(1, abs(lp[r])),
                           "\(name): row \(r) NLL", file: file, line: line)
        }
        // Without the gradient the pass computes the same NLLs.
        XCTAssertEqual(Kernels.linearCrossEntropy(x: x, weight: w, softcap: softcap, targets: targets, gradient: false).nll,
                       rowNLL, "\(name): NLL without the gradient", file: file, line: line)
        guard let gf = xf.grad, let gc = xc.grad else { return XCTFail("\(name): no gradient", file: file, line: line) }
        let diff = zip(gf.scalars, gc.scalars).map { abs($0 - $1) }.max() ?? 0
        let size = gc.scalars.map(abs).max() ?? 0
        XCTAssertLessThanOrEqual(diff, 1e-5 * Swift.max(1, size), "\(name): dx max difference \(diff)", file: file, line: line)
        for r in ignored {
            XCTAssertTrue(gf.scalars[(r * width)..<((r + 1) * width)].allSatisfy { $0 == 0 }, "\(name): ignored row \(r) got a gradient")
        }
    }

    func testMatchesComposedOps() {
        // One row, tiny widths (no full SIMD vector), a vocabulary shorter than a block.
        check(rows: 1, width: 5, vocab: 3, softcap: nil)
        // Rows not a multiple of four, odd vocabulary across several blocks, width tails.
        check(rows: 3, width: 12, vocab: 70, softcap: nil)
        check(rows: 5, width: 20, vocab: 257, softcap: nil, ignored: [1])
        check(rows: 9, width: 33, vocab: 131, softcap: 2, ignored: [0, 8])
        // Large logits: the running max moves often and the cap saturates.
        check(rows: 4, width: 16, vocab: 300, softcap: nil, scale: 8)
        check(rows: 4, width: 16, vocab: 300, softcap: 5, scale: 8)
    }

    /// Past the parallel threshold the vocabulary is split into chunks whose states are
    /// merged; the result must not depend on the thread count beyond rounding.
    func testChunkedMatchesSerial() {
        let saved = Threading.kernelThreads
        defer { Threading.kernelThreads = saved }
        for threads in [1, 2, 3] {
            Threading.kernelThreads = threads
            check(rows: 4, width: 64, vocab: 9001, softcap: nil)
            check(rows: 6, width: 40, vocab: 9001, softcap: 3, ignored: [2])
        }
    }

    func testAllRowsIgnored() {
        let x = Variable(Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6]), requiresGrad: true)
        let (loss, nll) = Ops.linearCrossEntropy(x, weight: Tensor(shape: [4, 3], data: Array(repeating: 0.5, count: 12)),
                                                 targets: [-100, -100])
        XCTAssertEqual(loss.item, 0)
        XCTAssertEqual(nll, [0, 0])
        loss.backward()
        XCTAssertEqual(x.grad?.scalars ?? [], Array(repeating: 0, count: 6))
    }

    // MARK: Trainable head, chunks of rows (training)

    /// `Ops.linearCrossEntropy(_:weight: Variable)` against linear + soft-cap + crossEntropy:
    /// loss, row NLLs, dx and dW under an upstream scale, over several row chunks (one whose
    /// rows are all ignored), with and without the cap, on 1 and 2 threads.
    private func checkTrainable(rows: Int, width: Int, vocab: Int, softcap: Float?, ignored: Set<Int>, needX: Bool = true,
                                file: StaticString = #filePath, line: UInt = #line) {
        var rng = SplitMix64(seed: UInt64(rows * 7 + vocab))
        let x = randomTensor([rows, width], &rng, low: -2, high: 2)
        let w = randomTensor([vocab, width], &rng)
        let targets = (0..<rows).map { ignored.contains($0) ? -100 : rng.nextInt(below: vocab) }
        let name = "trainable R \(rows) V \(vocab) cap \(softcap.map { "\($0)" } ?? "none") needX \(needX)"

        let xf = Variable(x, requiresGrad: needX), wf = Variable(w, requiresGrad: true)
        let (loss, rowNLL) = Ops.linearCrossEntropy(xf, weight: wf, softcap: softcap, targets: targets)
        Ops.scale(loss, by: 0.37).backward()

        let xc = Variable(x, requiresGrad: needX), wc = Variable(w, requiresGrad: true)
        var logits = Ops.linear(xc, weight: wc)
        if let softcap { logits = Ops.softcap(logits, cap: softcap) }
        let (reference, referenceNLL) = Ops.crossEntropyWithRowNLL(logits: logits, targets: targets)
        Ops.scale(reference, by: 0.37).backward()

        XCTAssertEqual(loss.item, reference.item, accuracy: 1e-5 * Swift.max(1, abs(reference.item)), name, file: file, line: line)
        for r in 0..<rows {
            XCTAssertEqual(rowNLL[r], referenceNLL[r], accuracy: 2e-5 * Swift.max(1, abs(referenceNLL[r])),
                           "\(name): row \(r) NLL", file: file, line: line)
        }
        func compare(_ got: Tensor?, _ want: Tensor?, _ what: String) {
            guard let got, let want else { return XCTFail("\(name): no \(what) gradient", file: file, line: line) }
            let diff = zip(got.scalars, want.scalars).map { abs($0 - $1) }.max() ?? 0
            let size = want.scalars.map(abs).max() ?? 0
            XCTAssertGreaterThan(size, 0, "\(name): \(what) gradient is zero", file: file, line: line)
            XCTAssertLessThanOrEqual(diff, 1e-5 * Swift.max(1, size), "\(name): \(what) max difference \(diff)", file: file, line: line)
        }
        compare(wf.grad, wc.grad, "dW")
        if needX {
            compare(xf.grad, xc.grad, "dx")
            for r in ignored {
                XCTAssertTrue(xf.grad?.scalars[(r * width)..<((r + 1) * width)].allSatisfy { $0 == 0 } ?? false,
                              "\(name): ignored row \(r) got a gradient", file: file, line: line)
            }
        } else {
            XCTAssertNil(xf.grad, "\(name): x does not record a gradient", file: file, line: line)
        }
    }

    func testTrainableHeadInRowChunksMatchesComposed() {
        let saved = Threading.kernelThreads
        defer { Threading.kernelThreads = saved }
        XCTAssertEqual(Kernels.headRowChunk(vocab: 49152), 512)
        XCTAssertEqual(Kernels.headRowChunk(vocab: 256_000), 131)
        XCTAssertEqual(Kernels.headRowChunk(vocab: 10_000_000), 64)
        let chunk = Kernels.headRowChunk(vocab: 301)
        // Three chunks; the second has only ignored rows and is skipped.
        let rows = 2 * chunk + 9
        let ignored = Set([0, 5, rows - 1]).union(chunk..<(2 * chunk))
        for threads in [1, 2] {
            Threading.kernelThreads = threads
            checkTrainable(rows: rows, width: 24, vocab: 301, softcap: nil, ignored: ignored)
            checkTrainable(rows: rows, width: 24, vocab: 301, softcap: 2.5, ignored: ignored)
        }
        checkTrainable(rows: 7, width: 16, vocab: 50, softcap: nil, ignored: [3], needX: false)
    }

    func testTrainableHeadAllRowsIgnoredAndSingleBackward() {
        let x = Variable(Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6]), requiresGrad: true)
        let w = Variable(Tensor(shape: [4, 3], data: Array(repeating: 0.5, count: 12)), requiresGrad: true)
        let (loss, nll) = Ops.linearCrossEntropy(x, weight: w, targets: [-100, -100])
        XCTAssertEqual(loss.item, 0)
        XCTAssertEqual(nll, [0, 0])
        loss.backward()
        XCTAssertEqual(x.grad?.scalars ?? [], Array(repeating: 0, count: 6))
        XCTAssertEqual(w.grad?.scalars ?? [], Array(repeating: 0, count: 12))
    }
}
