// Optimiser bookkeeping: frozen parameters, missing gradients, schedules, parallel chunks.
import Synchronization
import XCTest
@testable import Numerics

final class OptimizerTests: XCTestCase {
    func testFrozenAndGradlessParametersAreSkipped() {
        let trained = Variable(Tensor(shape: [2], data: [1, 1]), requiresGrad: true)
        let frozen = Variable(Tensor(shape: [2], data: [1, 1]), requiresGrad: false)
        let gradless = Variable(Tensor(shape: [2], data: [1, 1]), requiresGrad: true)
        trained.grad = Tensor(shape: [2], data: [1, -1])
        frozen.grad = Tensor(shape: [2], data: [1, -1])
        let opt = AdamW(groups: [ParameterGroup(parameters: [trained, frozen], learningRate: 0.1, weightDecay: 0),
                                 ParameterGroup(parameters: [gradless], learningRate: 0.1, weightDecay: 0.5)])
        opt.step()
        // First AdamW step moves each coordinate by lr * sign(g) (bias-corrected m / sqrt(v)).
        XCTAssertEqual(trained.value.scalars[0], 0.9, accuracy: 1e-6)
        XCTAssertEqual(trained.value.scalars[1], 1.1, accuracy: 1e-6)
        XCTAssertEqual(frozen.value.scalars, [1, 1])
        XCTAssertEqual(gradless.value.scalars, [1, 1], "no gradient: no update, not even weight decay")
        XCTAssertEqual(opt.stepCount(of: trained), 1)
        XCTAssertEqual(opt.stepCount(of: gradless), 0)
        opt.zeroGrad()
        XCTAssertNil(trained.grad)
    }

    func testPlainSGDAndScheduleFactor() {
        let p = Variable(Tensor(shape: [3], data: [1, 2, 3]), requiresGrad: true)
        let opt = SGD(parameters: [p], learningRate: 0.5)
        p.grad = Tensor(shape: [3], data: [1, 1, 2])
        opt.learningRateFactor = LRSchedule.linearWarmupDecay(warmupSteps: 2, totalSteps: 4).factor(step: 1)
        opt.step()
        XCTAssertEqual(p.value.scalars, [0.75, 1.75, 2.5])
        XCTAssertEqual(LRSchedule.constantWithWarmup(warmupSteps: 4).factor(step: 2), 0.5)
        XCTAssertEqual(LRSchedule.cosine(warmupSteps: 0, totalSteps: 10).factor(step: 5), 0.5, accuracy: 1e-6)
        XCTAssertEqual(LRSchedule.linearWarmupDecay(warmupSteps: 2, totalSteps: 4).factor(step: 9), 0)
    }

    func testParallelChunksCoverEveryIndexOnce() {
        let saved = Threading.kernelThreads
        defer { Threading.kernelThreads = saved }
        for threads in [1, 3, 4] {
            Threading.kernelThreads = threads
            // A high per-item cost makes a small n cross the parallel threshold.
            let cost = 256, n = Threading.parallelThreshold / cost * 3 + 17
            var hits = [UInt8](repeating: 0, count: n)
            hits.withUnsafeMutableBufferPointer { h in
                let base = h.baseAddress!
                Threading.parallelChunks(n, costPerItem: cost) { r in for i in r { base[i] &+= 1 } }
            }
            XCTAssertTrue(hits.allSatisfy { $0 == 1 }, "threads \(threads)")
        }
    }

    func testEvenParallelForCoversEveryIndexOnceInChunksOfNearlyEqualSize() {
        let saved = Threading.kernelThreads
        defer { Threading.kernelThreads = saved }
        Threading.kernelThreads = 2
        for (n, chunks) in [(36, 12), (36, 8), (60, 12), (7, 12), (97, 10)] {
            var hits = [UInt8](repeating: 0, count: n)
            let sizes = Mutex<[Int]>([])
            hits.withUnsafeMutableBufferPointer { h in
                let base = h.baseAddress!
                Threading.parallelFor(chunks: chunks, n, evenly: true) { r in
                    for i in r { base[i] &+= 1 }
                    sizes.withLock { $0.append(r.count) }
                }
            }
            XCTAssertTrue(hits.allSatisfy { $0 == 1 }, "n \(n) chunks \(chunks)")
            let s = sizes.withLock { $0 }
            XCTAssertEqual(s.count, min(n, chunks), "n \(n) chunks \(chunks)")
            XCTAssertLessThanOrEqual(s.max()! - s.min()!, 1, "n \(n) chunks \(chunks): sizes \(s)")
        }
    }
}
