// Fused kernels (RMSNorm, LayerNorm, attention, cross-entropy, KL) against the same
// computation composed from primitive Ops: values and gradients must agree.
import XCTest
@testable import Numerics

final class FusedVsCompositeTests: XCTestCase {
    /// Values and input gradients of loss = sum(f(inputs) * W) for both versions.
    private func compare(_ name: String, _ inputs: [Tensor], tolerance: Float = 2e-5,
                         fused: ([Variable]) -> Variable, composite: ([Variable]) -> Variable,
                         file: StaticString = #filePath, line: UInt = #line) {
        func run(_ f: ([Variable]) -> Variable) -> (Tensor, [Tensor]) {
            let vars = inputs.map { Variable($0, requiresGrad: true) }
            let out = f(vars)
            var rng = SplitMix64(seed: 5)
            Ops.sum(Ops.mul(out, Variable(randomTensor(out.shape, &rng)))).backward()
            return (out.value, vars.map { $0.grad ?? Tensor(zeros: $0.shape) })
        }
        let (yf, gf) = run(fused), (yc, gc) = run(composite)
        XCTAssertEqual(yf.count, yc.count, "\(name): output sizes", file: file, line: line)
        let dy = zip(yf.scalars, yc.scalars).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(dy, tolerance, "\(name): output max difference \(dy)", file: file, line: line)
        for (k, (a, b)) in zip(gf, gc).enumerated() {
            let d = zip(a.scalars, b.scalars).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThanOrEqual(d, tolerance, "\(name): gradient \(k) max difference \(d)", file: file, line: line)
        }
    }

    /// The linear layer with LoRA terms on column ranges against linear + split + (dropout,
    /// two linears, addScaled) per adapted slice + concat, with the same dropout stream
    /// (identical masks): with and without dropout and bias, a slice without an adapter,
    /// a power-of-two and an rsLoRA-like scale, and a large input that splits the mask over
    /// threads. Gradients of x, W, the bias and every A and B.
    func testLinearWithAdapters() {
        var rng = SplitMix64(seed: 34)
        let cases: [(rows: Int, inF: Int, widths: [Int], adapted: [Bool], rank: Int, p: Float, scale: Float, bias: Bool)] = [
            (7, 12, [5, 4], [true, true], 3, 0.3, 2, true), (5, 8, [6], [true], 2, 0, 0.7071, false),
            (6, 9, [3, 5], [false, true], 2, 0.2, 1.25, true), (600, 1100, [16, 8], [true, true], 4, 0.05, 1.5, false)]
        for c in cases {
            let outF = c.widths.reduce(0, +)
            var inputs = [randomTensor([c.rows, c.inF], &rng), randomTensor([outF, c.inF], &rng)]
            if c.bias { inputs.append(randomTensor([outF], &rng)) }
            for (w, on) in zip(c.widths, c.adapted) where on {
                inputs += [randomTensor([c.rank, c.inF], &rng), randomTensor([w, c.rank], &rng)]
            }
            let first = c.bias ? 3 : 2
            func adapterVariables(_ v: [Variable]) -> [(Range<Int>, Variable, Variable)?] {
                var k = first, offset = 0
                return zip(c.widths, c.adapted).map { w, on in
                    defer { offset += w }
                    guard on else { return nil }
                    defer { k += 2 }
                    return (offset..<(offset + w), v[k], v[k + 1])
                }
            }
            // The fused op puts the scale on the GEMMs' alpha, so sums round differently; with
            // 600 x 1100 inputs the B gradient reaches a few hundred (1e-5 relative).
            compare("linear+LoRA \(c.rows)x\(c.inF) \(c.widths) p \(c.p) scale \(c.scale)", inputs,
                    tolerance: c.rows > 100 ? 3e-3 : 2e-5, fused: { v in
                var r = SplitMix64(seed: 77)
                let adapters = adapterVariables(v).compactMap { $0 }.map {
                    LowRankAdapter(columns: $0.0, a: $0.1, b: $0.2, scale: c.scale, dropout: c.p)
                }
                return Ops.linear(v[0], weight: v[1], bias: c.bias ? v[2] : nil, adapters: adapters, rng: &r)
            }, composite: { v in
                var r = SplitMix64(seed: 77)
                let y = Ops.linear(v[0], weight: v[1], bias: c.bias ? v[2] : nil)
                let parts = Ops.split(y, axis: -1, sizes: c.widths)
                return Ops.concat(zip(parts, adapterVariables(v)).map { part, ad in
                    guard let ad else { return part }
                    let xin = c.p > 0 ? Ops.dropout(v[0], p: c.p, rng: &r) : v[0]
                    return Ops.addScaled(part, Ops.linear(Ops.linear(xin, weight: ad.1), weight: ad.2), scale: c.scale)
                }, axis: -1)
            })
        }
        // The generator ends where Ops.dropout leaves it, and masks drawn in parallel equal a
        // sequential draw.
        var r1 = SplitMix64(seed: 8), r2 = SplitMix64(seed: 8)
        let big = Tensor.dropoutMask(shape: [1 << 20], p: 0.25, rng: &r1)
        let keep: Float = 1 / 0.75
        var sequential = [Float](repeating: 0, count: 1 << 20)
        for i in sequential.indices { sequential[i] = r2.nextFloat() < 0.25 ? 0 : keep }
        XCTAssertEqual(big.scalars, sequential)
        XCTAssertEqual(r1.next(), r2.next())
        var r3 = SplitMix64(seed: 9), r4 = SplitMix64(seed: 9)
        let a = LowRankAdapter(columns: 0..<2, a: Variable(Tensor(zeros: [1, 4])), b: Variable(Tensor(zeros: [2, 1])),
                               scale: 1, dropout: 0.1)
        _ = Ops.linear(Variable(Tensor(zeros: [3, 4])), weight: Variable(Tensor(zeros: [2, 4])), adapters: [a, a], rng: &r3)
        _ = Ops.dropout(Variable(Tensor(zeros: [3, 4])), p: 0.1, rng: &r4)
        _ = Ops.dropout(Variable(Tensor(zeros: [3, 4])), p: 0.1, rng: &r4)
        XCTAssertEqual(r3.next(), r4.next())
    }

    func testRMSNormAndLayerNorm() {
        var rng = SplitMix64(seed: 31)
        let x = randomTensor([2, 5, 12], &rng), w = randomTensor([12], &rng), b = randomTensor([12], &rng)
        for addOne in [false, true] {
            compare("rmsNorm addOne \(addOne)", [x, w], fused: { Ops.rmsNorm($0[0], weight: $0[1], eps: 1e-6, addOne: addOne) },
                    composite: { v in
                        let ms = Ops.mean(Ops.square(v[0]), axis: -1, keepDims: true)
                        let normed = v[0] / Ops.sqrt(Ops.addScalar(ms, 1e-6))
                        return normed * (addOne ? Ops.addScalar(v[1], 1) : v[1])
                    })
        }
        compare("layerNorm", [x, w, b], fused: { Ops.layerNorm($0[0], weight: $0[1], bias: $0[2], eps: 1e-5) },
                composite: { v in
                    let centered = v[0] - Ops.mean(v[0], axis: -1, keepDims: true)
                    let variance = Ops.mean(Ops.square(centered), axis: -1, keepDims: true)
                    return centered / Ops.sqrt(Ops.addScalar(variance, 1e-5)) * v[1] + v[2]
                })
    }

    func testAttention() {
        attentionAgainstComposite()
        Kernels.withQueryBlockSize(1) { attentionAgainstComposite() }
    }

    private func attentionAgainstComposite() {
        var rng = SplitMix64(seed: 32)
        let b = 2, hq = 4, hkv = 2, t = 3, s = 6, dh = 5, offset = 3
        let q = randomTensor([b, hq, t, dh], &rng), k = randomTensor([b, hkv, s, dh], &rng), v = randomTensor([b, hkv, s, dh], &rng)
        let keyMask = [true, true, true, true, true, true, false, true, true, true, true, false]
        let mask = AttentionMask(causal: true, slidingWindow: 3, keyMask: keyMask, queryOffset: offset)
        // Additive mask [B, 1, T, S] broadcast over heads.
        let additive = Variable(mask.additive(batch: b, queries: t, keys: s).reshaped([b, 1, t, s]))
        compare("attention GQA softcap masks", [q, k, v], fused: {
            Ops.attention(q: $0[0], k: $0[1], v: $0[2], scale: 0.45, softcap: 3, causal: true, slidingWindow: 3,
                          keyMask: keyMask, queryOffset: offset)
        }, composite: { x in
            // repeat_kv: query head h reads key/value head h / 2.
            func repeatKV(_ y: Variable) -> Variable {
                let heads = (0..<hq).map { Ops.slice(y, axis: 1, range: ($0 / (hq / hkv))..<($0 / (hq / hkv) + 1)) }
                return Ops.concat(heads, axis: 1)
            }
            let scores = Ops.softcap(Ops.scale(Ops.matmul(x[0], repeatKV(x[1]), transposeB: true), by: 0.45), cap: 3)
            return Ops.matmul(Ops.softmax(scores + additive), repeatKV(x[2]))
        })
    }

    func testCrossEntropyAndKL() {
        var rng = SplitMix64(seed: 33)
        let logits = randomTensor([6, 9], &rng, low: -3, high: 3), ref = randomTensor([6, 9], &rng, low: -3, high: 3)
        let targets = [2, -100, 8, 0, 0, 5]
        var oneHot = Tensor(zeros: [6, 9])
        oneHot.withUnsafeMutableBufferPointer { p in for (r, t) in targets.enumerated() where t >= 0 { p[r * 9 + t] = 1 } }
        compare("crossEntropy", [logits], fused: { Ops.crossEntropy(logits: $0[0], targets: targets) },
                composite: { Ops.scale(Ops.sum(Ops.logSoftmax($0[0]) * Variable(oneHot)), by: -1.0 / 5) })
        let mask = [true, true, false, true, false, true]
        let rowMask = Tensor(shape: [6, 1], data: mask.map { $0 ? 1 : 0 })
        let pRef = Kernels.softmax(ref), logPRef = Kernels.logSoftmax(ref)
        compare("kl", [logits], fused: { Ops.klDivergence(referenceLogits: ref, logits: $0[0], mask: mask) },
                composite: { v in
                    let perToken = Variable(pRef) * (Variable(logPRef) - Ops.logSoftmax(v[0])) * Variable(rowMask)
                    return Ops.scale(Ops.sum(perToken), by: 1.0 / 4)
                })
    }
}
