// Finite-difference gradient checks: normalisation, RoPE, attention, losses.
import XCTest
@testable import Numerics

final class LayerGradientTests: XCTestCase {
    func testNorms() {
        var rng = SplitMix64(seed: 11)
        let x = randomTensor([2, 3, 7], &rng), w = randomTensor([7], &rng), b = randomTensor([7], &rng)
        checkGradients("rmsNorm", [x, w]) { Ops.rmsNorm($0[0], weight: $0[1], eps: 1e-6) }
        checkGradients("rmsNorm addOne", [x, w]) { Ops.rmsNorm($0[0], weight: $0[1], eps: 1e-6, addOne: true) }
        checkGradients("layerNorm", [x, w, b]) { Ops.layerNorm($0[0], weight: $0[1], bias: $0[2], eps: 1e-5) }
        checkGradients("layerNorm no bias", [x, w]) { Ops.layerNorm($0[0], weight: $0[1], bias: nil, eps: 1e-5) }
        checkGradients("layerNorm plain", [x]) { Ops.layerNorm($0[0], weight: nil, bias: nil, eps: 1e-5) }
    }

    func testRope() {
        var rng = SplitMix64(seed: 12)
        let x = randomTensor([2, 3, 4, 6], &rng)
        let positions = [0, 1, 2, 3, 7, 8, 9, 30]
        let tables = [
            RopeTable(headDim: 6, theta: 10_000, maxPositions: 64),
            RopeTable(headDim: 6, theta: 500_000, maxPositions: 64,
                      scaling: .llama3(factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 16)),
            RopeTable(headDim: 6, theta: 10_000, maxPositions: 64, scaling: .linear(factor: 2)),
        ]
        for (i, table) in tables.enumerated() {
            checkGradients("rope \(i)", [x]) { Ops.rope($0[0], table: table, positions: positions) }
        }
    }

    func testAttentionGradients() {
        var rng = SplitMix64(seed: 13)
        let b = 2, hq = 4, hkv = 2, t = 3, s = 5, dh = 3
        let q = randomTensor([b, hq, t, dh], &rng), k = randomTensor([b, hkv, s, dh], &rng), v = randomTensor([b, hkv, s, dh], &rng)
        let keyMask = [true, true, true, false, true, false, true, true, true, true]
        let configs: [(String, Float?, Bool, Int?, [Bool]?, Int)] = [
            ("plain", nil, false, nil, nil, 0),
            ("causal offset", nil, true, nil, nil, 2),
            ("causal window mask softcap", 2.0, true, 2, keyMask, 2),
            ("padding softcap", 1.5, false, nil, keyMask, 0),
            ("causal no offset (rows with few keys)", nil, true, nil, keyMask, 0),
        ]
        // Default query blocks (one block here) and blocks of one query, where the kernels
        // multiply only the keys each block can see.
        for blockSize in [Kernels.queryBlockSize, 1, 2] {
            Kernels.withQueryBlockSize(blockSize) {
                for (name, cap, causal, window, mask, offset) in configs {
                    checkGradients("attention \(name), query blocks of \(blockSize)", [Kernels.scale(q, by: 2), k, v]) {
                        Ops.attention(q: $0[0], k: $0[1], v: $0[2], scale: 0.7, softcap: cap, causal: causal,
                                      slidingWindow: window, keyMask: mask, queryOffset: offset)
                    }
                }
            }
        }
    }

    func testLosses() {
        var rng = SplitMix64(seed: 14)
        let logits = randomTensor([5, 7], &rng, low: -2, high: 2)
        checkGradients("crossEntropy", [logits]) { Ops.crossEntropy(logits: $0[0], targets: [0, 6, -100, 3, 3]) }
        let ref = randomTensor([5, 7], &rng, low: -2, high: 2)
        checkGradients("kl", [logits]) { Ops.klDivergence(referenceLogits: ref, logits: $0[0]) }
        checkGradients("kl masked", [logits]) {
            Ops.klDivergence(referenceLogits: ref, logits: $0[0], mask: [true, false, true, true, false])
        }
        let targets = randomTensor([5, 7], &rng, low: 0, high: 1)
        checkGradients("bce", [logits]) { Ops.bceWithLogits($0[0], targets: targets) }
        checkGradients("mse const", [logits]) { Ops.mse($0[0], targets) }
        checkGradients("mse vars", [logits, ref]) { Ops.mse($0[0], $0[1]) }
    }
}
