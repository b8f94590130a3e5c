// Forward kernels against naive reference loops.
import XCTest
@testable import Numerics

final class KernelReferenceTests: XCTestCase {
    private func assertClose(_ a: Tensor, _ b: [Float], _ tol: Float, _ what: String,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, "\(what): sizes differ", file: file, line: line)
        let diff = zip(a.scalars, b).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(diff, tol, "\(what): max abs difference \(diff)", file: file, line: line)
    }

    /// Row-major strides.
    private func strides(_ shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        for i in stride(from: shape.count - 2, through: 0, by: -1) { s[i] = s[i + 1] * shape[i + 1] }
        return s
    }

    func testBroadcastBinaryMatchesNaive() {
        var rng = SplitMix64(seed: 21)
        let cases: [([Int], [Int])] = [([2, 3, 4], [3, 1]), ([5, 1, 3], [1, 4, 1]), ([17], [1]), ([2, 1, 33], [2, 7, 33]), ([], [3])]
        for (sa, sb) in cases {
            let a = randomTensor(sa, &rng), b = randomTensor(sb, &rng, low: 0.5, high: 1.5)
            let out = Kernels.broadcastShape(sa, sb)
            let so = strides(out), pa = a.scalars, pb = b.scalars
            func index(_ flat: Int, _ shape: [Int]) -> Int {
                let pad = out.count - shape.count, st = strides(shape)
                var idx = 0
                for d in 0..<shape.count where shape[d] != 1 { idx += ((flat / so[d + pad]) % out[d + pad]) * st[d] }
                return idx
            }
            let n = out.reduce(1, *)
            for (op, f) in [(BinaryOp.add, { (x: Float, y: Float) in x + y }), (.sub, { $0 - $1 }), (.mul, { $0 * $1 }), (.div, { $0 / $1 })] {
                let ref = (0..<n).map { f(pa[index($0, sa)], pb[index($0, sb)]) }
                let got = Kernels.binary(a, b, op)
                XCTAssertEqual(got.shape, out)
                assertClose(got, ref, 1e-6, "\(op) \(sa) \(sb)")
            }
            // sumToShape is the adjoint of broadcasting: <broadcast(b), g> == <b, sumToShape(g)>.
            let g = randomTensor(out, &rng)
            let reduced = Kernels.sumToShape(g, sb)
            var lhs: Double = 0, rhs: Double = 0
            let pg = g.scalars
            for i in 0..<n { lhs += Double(pb[index(i, sb)]) * Double(pg[i]) }
            for (x, y) in zip(pb, reduced.scalars) { rhs += Double(x) * Double(y) }
            XCTAssertEqual(lhs, rhs, accuracy: 1e-4)
        }
    }

    func testLargeParallelElementwiseMatchesSerial() {
        // Large enough to be split across kernel threads; cheap deterministic contents.
        let n = Threading.parallelThreshold + 3
        let a = Kernels.map(Tensor(shape: [n], repeating: 1)) { $0 * 0.5 }
        var b = Tensor(zeros: [n])
        b.withUnsafeMutableBufferPointer { p in for i in stride(from: 0, to: n, by: 7) { p[i] = Float(i % 1013) } }
        let c = Kernels.add(a, b), pc = c.scalars, pb = b.scalars
        for i in stride(from: 0, to: n, by: 7) { XCTAssertEqual(pc[i], 0.5 + pb[i]) }
        XCTAssertEqual(pc[n - 1], 0.5 + pb[n - 1])
        XCTAssertEqual(pc[n - 2], 0.5)
        let big = Threading.parallelThreshold
        let rowsBias = Kernels.add(a.rows(0..<big).reshaped([big >> 9, 1 << 9]), b.rows(0..<(1 << 9)))
        let pr = rowsBias.scalars
        for i in stride(from: 0, to: big, by: 4093) { XCTAssertEqual(pr[i], 0.5 + pb[i % 512]) }
        // Every same-shape operator on the parallel path, every element against the scalar formula.
        var rng = SplitMix64(seed: 11)
        let x = Tensor.randomUniform(shape: [n], low: -2, high: 2, rng: &rng)
        let y = Tensor.randomUniform(shape: [n], low: 0.5, high: 3, rng: &rng)
        let px = x.scalars, py = y.scalars
        let cases: [(BinaryOp, (Float, Float) -> Float)] = [(.add, { $0 + $1 }), (.sub, { $0 - $1 }), (.mul, { $0 * $1 }),
                                                             (.div, { $0 / $1 })]
        for (op, f) in cases {
            let got = Kernels.binary(x, y, op).scalars
            var bad = 0
            for i in 0..<n where got[i] != f(px[i], py[i]) { bad += 1 }
            XCTAssertEqual(bad, 0, "\(op): \(bad) elements differ from the scalar formula")
        }
    }

    func testReductionsAndSoftmax() {
        var rng = SplitMix64(seed: 23)
        let x = randomTensor([3, 4, 5], &rng)
        let s1 = Kernels.sum(x, axis: 1)
        let m2 = Kernels.max(x, axis: 2).values
        var ref1: [Float] = [], ref2: [Float] = []
        for i in 0..<3 { for k in 0..<5 { ref1.append((0..<4).reduce(0) { $0 + x[i, $1, k] }) } }
        for i in 0..<3 { for j in 0..<4 { ref2.append((0..<5).map { x[i, j, $0] }.max()!) } }
        assertClose(s1, ref1, 1e-6, "sum axis 1")
        assertClose(m2, ref2, 0, "max axis 2")
        let rows = Tensor(shape: [2, 3], data: [1, 2, 3, -.infinity, -.infinity, -.infinity])
        let sm = Kernels.softmax(rows).scalars
        let e = [Float(1), 2, 3].map { Foundation.exp($0 - 3) }
        let z = e.reduce(0, +)
        XCTAssertEqual(sm[0], e[0] / z, accuracy: 1e-7)
        XCTAssertEqual(Array(sm[3...]), [0, 0, 0], "an all -inf row gives zeros, not NaN")
    }

    func testNormsMatchNaive() {
        var rng = SplitMix64(seed: 24)
        let x = randomTensor([3, 10], &rng), w = randomTensor([10], &rng), b = randomTensor([10], &rng)
        var rms: [Float] = [], gemma: [Float] = [], ln: [Float] = []
        for r in 0..<3 {
            let row = (0..<10).map { Double(x[r, $0]) }
            let inv = 1 / ((row.map { $0 * $0 }.reduce(0, +) / 10) + 1e-6).squareRoot()
            let mu = row.reduce(0, +) / 10
            let v = row.map { ($0 - mu) * ($0 - mu) }.reduce(0, +) / 10
            for j in 0..<10 {
                rms.append(Float(row[j] * inv * Double(w[j])))
                gemma.append(Float(row[j] * inv * (1 + Double(w[j]))))
                ln.append(Float((row[j] - mu) / (v + 1e-5).squareRoot() * Double(w[j]) + Double(b[j])))
            }
        }
        assertClose(Kernels.rmsNorm(x, weight: w, eps: 1e-6, addOne: false).y, rms, 1e-6, "rmsNorm")
        assertClose(Kernels.rmsNorm(x, weight: w, eps: 1e-6, addOne: true).y, gemma, 1e-6, "gemma rmsNorm")
        assertClose(Kernels.layerNorm(x, weight: w, bias: b, eps: 1e-5).y, ln, 1e-5, "layerNorm")
    }

    func testRopeMatchesNaiveRotateHalf() {
        var rng = SplitMix64(seed: 25)
        let dh = 10, table = RopeTable(headDim: dh, theta: 10_000, maxPositions: 50)
        let x = randomTensor([1, 2, 3, dh], &rng), positions = [4, 17, 42]
        let y = Kernels.rope(x, table: table, positions: positions)
        var ref: [Float] = []
        for h in 0..<2 { for t in 0..<3 {
            let p = Double(positions[t])
            let v = (0..<dh).map { Double(x[0, h, t, $0]) }
            // rotate_half(v) = cat(-v2, v1); emb = cat(freqs, freqs)
            let rot = (0..<dh).map { $0 < dh / 2 ? -v[$0 + dh / 2] : v[$0 - dh / 2] }
            for i in 0..<dh {
                let f = Double(table.inverseFrequencies[i % (dh / 2)]) * p
                ref.append(Float(v[i] * Foundation.cos(f) + rot[i] * Foundation.sin(f)))
            }
        } }
        assertClose(y, ref, 2e-5, "rope")
        // Inverse rotation undoes the rotation.
        assertClose(Kernels.rope(y, table: table, positions: positions, inverse: true), x.scalars, 1e-5, "rope inverse")
    }

    func testAttentionMatchesNaive() {
        attentionMatchesNaive(t: 3, s: 7, offset: 4)
        // Query blocks of 2 (the kernel multiplies only the keys a block can see): several
        // blocks, offsets 0 and 4, every mask combination.
        Kernels.withQueryBlockSize(2) {
            attentionMatchesNaive(t: 3, s: 7, offset: 4)
            attentionMatchesNaive(t: 7, s: 7, offset: 0)
        }
    }

    private func attentionMatchesNaive(t: Int, s: Int, offset: Int) {
        var rng = SplitMix64(seed: 26)
        let b = 2, hq = 6, hkv = 2, dh = 5, window = 3
        let q = randomTensor([b, hq, t, dh], &rng, low: -2, high: 2)
        let k = randomTensor([b, hkv, s, dh], &rng, low: -2, high: 2), v = randomTensor([b, hkv, s, dh], &rng)
        var keyMask = [Bool](repeating: true, count: b * s)
        keyMask[1] = false; keyMask[s + 6] = false; keyMask[s + 5] = false; keyMask[s + 4] = false
        for (cap, causal, win) in [(Float?.none, false, Int?.none), (30, true, nil), (2, true, window)] {
            let mask = AttentionMask(causal: causal, slidingWindow: win, keyMask: keyMask, queryOffset: offset)
            let got = Kernels.attention(q: q, k: k, v: v, scale: 0.4, softcap: cap, mask: mask, keepProbabilities: false).out
            var ref: [Float] = []
            for bi in 0..<b { for h in 0..<hq { for ti in 0..<t {
                let kh = h / (hq / hkv)
                var scores: [Double] = []
                var allowed: [Bool] = []
                for si in 0..<s {
                    var d: Double = 0
                    for j in 0..<dh { d += Double(q[bi, h, ti, j]) * Double(k[bi, kh, si, j]) }
                    d *= 0.4
                    if let cap { d = Double(cap) * Foundation.tanh(d / Double(cap)) }
                    let qp = ti + offset
                    allowed.append(keyMask[bi * s + si] && (!causal || si <= qp) && (win == nil || qp - si < win!))
                    scores.append(d)
                }
                let m = zip(scores, allowed).filter { $1 }.map { $0.0 }.max()
                var out = [Double](repeating: 0, count: dh)
                if let m {
                    let e = zip(scores, allowed).map { $1 ? Foundation.exp($0 - m) : 0 }
                    let z = e.reduce(0, +)
                    for si in 0..<s { for j in 0..<dh { out[j] += e[si] / z * Double(v[bi, kh, si, j]) } }
                }
                ref += out.map { Float($0) }
            } } }
            assertClose(got, ref, 2e-6, "attention t \(t) offset \(offset) block \(Kernels.queryBlockSize) cap \(String(describing: cap)) causal \(causal) window \(String(describing: win))")
        }
        // The additive form agrees with the rule: causal + window 2 + offset 1, key 0 padded.
        let small = AttentionMask(causal: true, slidingWindow: 2, keyMask: [false, true, true, true], queryOffset: 1)
        let add = small.additive(batch: 1, queries: 2, keys: 4).scalars
        let inf = -Float.infinity
        XCTAssertEqual(add, [inf, 0, inf, inf, /* query at position 2 */ inf, 0, 0, inf])
        // A query that sees no key produces zeros, not NaN.
        let allMasked = AttentionMask(causal: false, keyMask: [Bool](repeating: false, count: b * s))
        let z = Kernels.attention(q: q, k: k, v: v, scale: 1, softcap: nil, mask: allMasked, keepProbabilities: true)
        XCTAssertTrue(z.out.scalars.allSatisfy { $0 == 0 })
    }

    func testPermuteConcatSliceGather() {
        var rng = SplitMix64(seed: 27)
        let x = randomTensor([2, 3, 4, 5], &rng)
        let p = Kernels.permute(x, [0, 2, 1, 3])
        XCTAssertEqual(p.shape, [2, 4, 3, 5])
        let q = Kernels.permute(x, [3, 0, 2, 1])
        for (a, bb, c, d) in [(0, 0, 0, 0), (1, 2, 3, 4), (1, 0, 2, 3), (0, 1, 3, 2)] {
            XCTAssertEqual(p[a, c, bb, d], x[a, bb, c, d])
            XCTAssertEqual(q[d, a, c, bb], x[a, bb, c, d])
        }
        let y = randomTensor([2, 1, 4, 5], &rng)
        let cat = Kernels.concat([x, y], axis: 1)
        XCTAssertEqual(cat.shape, [2, 4, 4, 5])
        XCTAssertEqual(cat[1, 3, 2, 1], y[1, 0, 2, 1])
        XCTAssertEqual(cat[1, 2, 2, 1], x[1, 2, 2, 1])
        let sl = Kernels.slice(x, axis: -1, range: 1..<3)
        XCTAssertEqual(sl.shape, [2, 3, 4, 2])
        XCTAssertEqual(sl[1, 2, 3, 1], x[1, 2, 3, 2])
        let table = randomTensor([4, 3], &rng)
        let g = Kernels.gatherRows(table, indices: [3, 3, 0])
        XCTAssertEqual(g.scalars, Array(table.scalars[9..<12]) + Array(table.scalars[9..<12]) + Array(table.scalars[0..<3]))
        let pooled = Kernels.maskedMeanPool(Tensor(shape: [1, 3, 2], data: [1, 2, 3, 4, 100, 100]), mask: [1, 1, 0])
        XCTAssertEqual(pooled.scalars, [2, 3])
    }

    func testMatmulBatchedAndSharedOperands() {
        var rng = SplitMix64(seed: 28)
        let a = randomTensor([2, 3, 4, 5], &rng), b = randomTensor([5, 6], &rng), left = randomTensor([4, 5], &rng)
        let c = Tensor.matmul(a, b), d = Tensor.matmul(left, a, transposeB: true)
        XCTAssertEqual(c.shape, [2, 3, 4, 6])
        XCTAssertEqual(d.shape, [2, 3, 4, 4])
        var s: Float = 0
        for k in 0..<5 { s += a[1, 2, 3, k] * b[k, 4] }
        XCTAssertEqual(c[1, 2, 3, 4], s, accuracy: 1e-5)
        s = 0
        for k in 0..<5 { s += left[2, k] * a[1, 1, 3, k] }
        XCTAssertEqual(d[1, 1, 2, 3], s, accuracy: 1e-5)
    }
}
