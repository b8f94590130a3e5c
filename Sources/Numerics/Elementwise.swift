// Elementwise kernels on contiguous buffers, with numpy-style broadcasting for binary ops.
//
// Dimension legend: N element count; a "coalesced" layout is a list of (size, strideA,
// strideB) triples after merging adjacent dimensions that are laid out contiguously in
// every operand (a broadcast dimension has stride 0).
import Foundation

/// Namespace for forward (and backward helper) kernels, without autodiff bookkeeping.
public enum Kernels {}

/// A binary elementwise operation.
public enum BinaryOp: Sendable {
    case add, sub, mul, div
}

extension Kernels {
    /// The numpy broadcast of two shapes (aligned at the trailing dimension).
    public static func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int] {
        let rank = Swift.max(a.count, b.count)
        var out = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
            let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
            precondition(da == db || da == 1 || db == 1, "cannot broadcast shapes \(a) and \(b)")
            out[i] = da == 1 ? db : da
        }
        return out
    }

    /// Strides of `shape` aligned to `outShape`'s rank, 0 where `shape` is broadcast.
    static func broadcastStrides(_ shape: [Int], to outShape: [Int]) -> [Int] {
        let pad = outShape.count - shape.count
        var strides = [Int](repeating: 0, count: outShape.count)
        var s = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[i + pad] = shape[i] == 1 ? 0 : s
            s *= shape[i]
        }
        return strides
    }

    /// Merges adjacent dimensions that are contiguous in all stride lists.
    static func coalesce(_ shape: [Int], _ strides: [[Int]]) -> (shape: [Int], strides: [[Int]]) {
        var dims: [Int] = []
        var st: [[Int]] = Array(repeating: [], count: strides.count)
        for i in 0..<shape.count where shape[i] != 1 {
            if !dims.isEmpty, (0..<strides.count).allSatisfy({ st[$0][st[$0].count - 1] == strides[$0][i] * shape[i] }) {
                dims[dims.count - 1] *= shape[i]
                for k in 0..<strides.count { st[k][st[k].count - 1] = strides[k][i] }
            } else {
                dims.append(shape[i])
                for k in 0..<strides.count { st[k].append(strides[k][i]) }
            }
        }
        if dims.isEmpty { return ([1], strides.map { _ in [0] }) }
        return (dims, st)
    }

    /// Elementwise `a op b` with broadcasting.
    public static func binary(_ a: Tensor, _ b: Tensor, _ op: BinaryOp) -> Tensor {
        if a.shape == b.shape {
            // Same shapes: one plain loop per op. Through `broadcastMap` the parallel chunks
            // called the operator closure once per element (not inlined across the worker
            // hand-off): 7 GB/s on two threads against 36 GB/s serial at 2^20 floats.
            var out = Tensor(uninitialized: a.shape)
            let po = out.mutablePointer(), pa = a.basePointer, pb = b.basePointer
            Threading.parallelChunks(out.count) { r in
                switch op {
                case .add: for i in r { po[i] = pa[i] + pb[i] }
                case .sub: for i in r { po[i] = pa[i] - pb[i] }
                case .mul: for i in r { po[i] = pa[i] * pb[i] }
                case .div: for i in r { po[i] = pa[i] / pb[i] }
                }
            }
            return out
        }
        switch op {
        case .add: return broadcastMap(a, b) { $0 + $1 }
        case .sub: return broadcastMap(a, b) { $0 - $1 }
        case .mul: return broadcastMap(a, b) { $0 * $1 }
        case .div: return broadcastMap(a, b) { $0 / $1 }
        }
    }

    /// Elementwise sum of two tensors (broadcasting).
    public static func add(_ a: Tensor, _ b: Tensor) -> Tensor { binary(a, b, .add) }
    /// Elementwise difference (broadcasting).
    public static func sub(_ a: Tensor, _ b: Tensor) -> Tensor { binary(a, b, .sub) }
    /// Elementwise product (broadcasting).
    public static func mul(_ a: Tensor, _ b: Tensor) -> Tensor { binary(a, b, .mul) }
    /// Elementwise quotient (broadcasting).
    public static func div(_ a: Tensor, _ b: Tensor) -> Tensor { binary(a, b, .div) }

    /// `f(a, b)` elementwise with broadcasting; parallel for large outputs.
    @inlinable
    public static func broadcastMap(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        if a.shape == b.shape {
            var out = Tensor(uninitialized: a.shape)
            let po = out.mutablePointer(), pa = a.basePointer, pb = b.basePointer
            Threading.parallelChunks(out.count) { r in
                for i in r { po[i] = f(pa[i], pb[i]) }
            }
            return out
        }
        return broadcastMapGeneral(a, b, f)
    }

    @usableFromInline
    static func broadcastMapGeneral(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        let outShape = broadcastShape(a.shape, b.shape)
        var out = Tensor(uninitialized: outShape)
        let (dims, st) = coalesce(outShape, [broadcastStrides(a.shape, to: outShape),
                                             broadcastStrides(b.shape, to: outShape)])
        let inner = dims[dims.count - 1], ia = st[0][dims.count - 1], ib = st[1][dims.count - 1]
        let outer = out.count / Swift.max(inner, 1)
        let po = out.mutablePointer(), pa = a.basePointer, pb = b.basePointer
        Threading.parallelChunks(outer, costPerItem: inner) { rows in
            for row in rows {
                // Offsets of this outer row in a and b (odometer over the outer dims).
                var rem = row, oa = 0, ob = 0
                for d in stride(from: dims.count - 2, through: 0, by: -1) {
                    let i = rem % dims[d]
                    rem /= dims[d]
                    oa += i * st[0][d]
                    ob += i * st[1][d]
                }
                let dst = po + row * inner, sa = pa + oa, sb = pb + ob
                if ia == 1 && ib == 1 {
                    for j in 0..<inner { dst[j] = f(sa[j], sb[j]) }
                } else if ia == 1 {
                    let y = sb[0]
                    for j in 0..<inner { dst[j] = f(sa[j], y) }
                } else if ib == 1 {
                    let x = sa[0]
                    for j in 0..<inner { dst[j] = f(x, sb[j]) }
                } else {
                    let v = f(sa[0], sb[0])
                    for j in 0..<inner { dst[j] = v }
                }
            }
        }
        return out
    }

    /// Sums `g` (shaped like a broadcast result) down to `shape` (the reverse of broadcasting).
    public static func sumToShape(_ g: Tensor, _ shape: [Int]) -> Tensor {
        if g.shape == shape { return g }
        precondition(broadcastShape(g.shape, shape) == g.shape, "cannot reduce \(g.shape) to \(shape)")
        var out = Tensor(zeros: shape)
        let (dims, st) = coalesce(g.shape, [broadcastStrides(shape, to: g.shape)])
        let inner = dims[dims.count - 1], it = st[0][dims.count - 1]
        let outer = g.count / Swift.max(inner, 1)
        let po = out.mutablePointer(), pg = g.basePointer
        for row in 0..<outer {
            var rem = row, ot = 0
            for d in stride(from: dims.count - 2, through: 0, by: -1) {
                ot += (rem % dims[d]) * st[0][d]
                rem /= dims[d]
            }
            let src = pg + row * inner, dst = po + ot
            if it == 1 {
                for j in 0..<inner { dst[j] += src[j] }
            } else {
                var s: Float = 0
                for j in 0..<inner { s += src[j] }
                dst[0] += s
            }
        }
        return out
    }

    /// Relative per-element cost of a transcendental function (exp, tanh, erf) versus an add,
    /// used to decide when a map is worth splitting across threads.
    public static let transcendentalCost = 8

    /// `f(x)` elementwise; parallel for large tensors (`cost` = relative per-element work).
    @inlinable
    public static func map(_ x: Tensor, cost: Int = 1, _ f: (Float) -> Float) -> Tensor {
        var out = Tensor(uninitialized: x.shape)
        let po = out.mutablePointer(), px = x.basePointer
        Threading.parallelChunks(x.count, costPerItem: cost) { r in
            for i in r { po[i] = f(px[i]) }
        }
        return out
    }

    /// `f(x, y)` elementwise for two same-shaped tensors.
    @inlinable
    public static func zipMap(_ x: Tensor, _ y: Tensor, cost: Int = 1, _ f: (Float, Float) -> Float) -> Tensor {
        precondition(x.count == y.count, "zipMap: sizes differ \(x.shape) vs \(y.shape)")
        var out = Tensor(uninitialized: x.shape)
        let po = out.mutablePointer(), px = x.basePointer, py = y.basePointer
        Threading.parallelChunks(x.count, costPerItem: cost) { r in
            for i in r { po[i] = f(px[i], py[i]) }
        }
        return out
    }

    /// `f(x)` elementwise, eight lanes at a time; parallel for large tensors.
    @inlinable
    public static func mapSIMD(_ x: Tensor, cost: Int = 1, _ f: (SIMD8<Float>) -> SIMD8<Float>) -> Tensor {
        var out = Tensor(uninitialized: x.shape)
        let po = out.mutablePointer(), px = x.basePointer
        Threading.parallelChunks(x.count, costPerItem: cost) { r in
            VectorMath.map(r.count, px + r.lowerBound, po + r.lowerBound, f)
        }
        return out
    }

    /// `f(x, y)` elementwise for two same-shaped tensors, eight lanes at a time.
    @inlinable
    public static func zipMapSIMD(_ x: Tensor, _ y: Tensor, cost: Int = 1,
                                  _ f: (SIMD8<Float>, SIMD8<Float>) -> SIMD8<Float>) -> Tensor {
        precondition(x.count == y.count, "zipMap: sizes differ \(x.shape) vs \(y.shape)")
        var out = Tensor(uninitialized: x.shape)
        let po = out.mutablePointer(), px = x.basePointer, py = y.basePointer
        Threading.parallelChunks(x.count, costPerItem: cost) { r in
            VectorMath.map(r.count, px + r.lowerBound, py + r.lowerBound, po + r.lowerBound, f)
        }
        return out
    }

    /// f(gate) * up for two same-shaped tensors (split over threads from 128K elements).
    public static func gated(_ gate: Tensor, _ up: Tensor, _ fn: Activation) -> Tensor {
        precondition(gate.shape == up.shape, "gated: gate \(gate.shape) vs up \(up.shape)")
        var y = Tensor(uninitialized: gate.shape)
        let py = y.mutablePointer(), pg = gate.basePointer, pu = up.basePointer
        Threading.parallelChunks(gate.count, costPerItem: 8) { r in
            gatedForward(r.count, pg + r.lowerBound, pu + r.lowerBound, py + r.lowerBound, fn)
        }
        return y
    }

    /// f(gate) * up read from one fused projection y [N, 2W] (gate columns first, then up)
    /// -> [N, W], without copying the halves out.
    public static func gated(fused y: Tensor, width w: Int, _ fn: Activation) -> Tensor {
        precondition(y.rank == 2 && y.shape[1] == 2 * w, "gated: fused input \(y.shape) is not [N, 2 x \(w)]")
        let rows = y.shape[0]
        var out = Tensor(uninitialized: [rows, w])
        let po = out.mutablePointer(), py = y.basePointer
        Threading.parallelChunks(rows, costPerItem: 8 * w) { r in
            for i in r { gatedForward(w, py + 2 * w * i, py + 2 * w * i + w, po + w * i, fn) }
        }
        return out
    }

    /// out = f(gate) * up over `n` elements (the gated MLP's activation).
    public static func gatedForward(_ n: Int, _ gate: UnsafePointer<Float>, _ up: UnsafePointer<Float>,
                                    _ out: UnsafeMutablePointer<Float>, _ fn: Activation) {
        guard fn.isVectorised else {
            for j in 0..<n { out[j] = fn.apply(gate[j]) * up[j] }
            return
        }
        let full = n & ~7
        var i = 0
        switch fn {
        case .geluErf, .relu: break
        case .silu:
            while i < full {
                let x = VectorMath.load(gate + i, count: 8), u = VectorMath.load(up + i, count: 8)
                VectorMath.store(x * VectorMath.sigmoid(x) * u, out + i, count: 8)
                i += 8
            }
        case .geluTanh:
            while i < full {
                let x = VectorMath.load(gate + i, count: 8), u = VectorMath.load(up + i, count: 8)
                VectorMath.store(VectorMath.geluTanh(x) * u, out + i, count: 8)
                i += 8
            }
        }
        if full < n { padded(n - full, [gate + full, up + full], [out + full]) { p, o in gatedForward8(p[0], p[1], o[0], fn) } }
    }

    /// Backward of `gatedForward` over `n` elements: dGate = g * up * f'(gate) and
    /// dUp = g * f(gate), each only when its pointer is given. SiLU computes the sigmoid once
    /// for both, with the expressions of `VectorMath.siluGrad` and `VectorMath.silu`.
    public static func gatedBackward(_ n: Int, _ g: UnsafePointer<Float>, _ gate: UnsafePointer<Float>,
                                     _ up: UnsafePointer<Float>, _ dGate: UnsafeMutablePointer<Float>?,
                                     _ dUp: UnsafeMutablePointer<Float>?, _ fn: Activation) {
        guard fn.isVectorised else {
            for j in 0..<n {
                if let dGate { dGate[j] = g[j] * up[j] * fn.derivative(gate[j]) }
                if let dUp { dUp[j] = g[j] * fn.apply(gate[j]) }
            }
            return
        }
        let full = n & ~7
        var i = 0
        while i < full {
            gatedBackward8(g + i, gate + i, up + i, dGate.map { $0 + i }, dUp.map { $0 + i }, fn)
            i += 8
        }
        if full < n {
            padded(n - full, [g + full, gate + full, up + full], [dGate, dUp].compactMap { $0.map { $0 + full } }) { p, o in
                gatedBackward8(p[0], p[1], p[2], dGate == nil ? nil : o[0], dUp == nil ? nil : o[dGate == nil ? 0 : 1], fn)
            }
        }
    }

    // The kernels below work on exactly eight lanes with plain vector loads: written as one
    // loop with lane-by-lane tail loads, or through closures, the compiler left the sigmoid
    // as a call per eight lanes or split the vectors into 128-bit halves. gatedForward
    // spells its loops out: calling gatedForward8 from them was scalarised too (four times
    // slower on 68 x 1536), while gatedBackward8 inlines into its loop as it should.

    @inline(__always)
    static func gatedForward8(_ gate: UnsafePointer<Float>, _ up: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                              _ fn: Activation) {
        let x = VectorMath.load(gate, count: 8), u = VectorMath.load(up, count: 8)
        switch fn {
        case .silu: VectorMath.store(x * VectorMath.sigmoid(x) * u, out, count: 8)
        case .geluTanh: VectorMath.store(VectorMath.geluTanh(x) * u, out, count: 8)
        case .geluErf, .relu: for j in 0..<8 { out[j] = fn.apply(x[j]) * u[j] }
        }
    }

    @inline(__always)
    static func gatedBackward8(_ g: UnsafePointer<Float>, _ gate: UnsafePointer<Float>, _ up: UnsafePointer<Float>,
                               _ dGate: UnsafeMutablePointer<Float>?, _ dUp: UnsafeMutablePointer<Float>?,
                               _ fn: Activation) {
        let gi = VectorMath.load(g, count: 8), x = VectorMath.load(gate, count: 8)
        switch fn {
        case .silu:
            let s = VectorMath.sigmoid(x)
            if let dGate { VectorMath.store(gi * VectorMath.load(up, count: 8) * (s * (1 + x * (1 - s))), dGate, count: 8) }
            if let dUp { VectorMath.store(gi * (x * s), dUp, count: 8) }
        case .geluTanh:
            if let dGate { VectorMath.store(gi * VectorMath.load(up, count: 8) * VectorMath.geluTanhGrad(x), dGate, count: 8) }
            if let dUp { VectorMath.store(gi * VectorMath.geluTanh(x), dUp, count: 8) }
        case .geluErf, .relu:
            for j in 0..<8 {
                if let dGate { dGate[j] = gi[j] * up[j] * fn.derivative(x[j]) }
                if let dUp { dUp[j] = gi[j] * fn.apply(x[j]) }
            }
        }
    }

    /// Runs an eight-lane `body` on the last `count` (< 8) elements: inputs copied into
    /// zero-padded stack vectors, the first `count` lanes of each output copied back.
    static func padded(_ count: Int, _ inputs: [UnsafePointer<Float>], _ outputs: [UnsafeMutablePointer<Float>],
                       _ body: ([UnsafePointer<Float>], [UnsafeMutablePointer<Float>]) -> Void) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 8 * (inputs.count + outputs.count)) { t in
            let base = t.baseAddress!
            base.initialize(repeating: 0, count: t.count)
            for (k, p) in inputs.enumerated() { (base + 8 * k).update(from: p, count: count) }
            let outs = (0..<outputs.count).map { base + 8 * (inputs.count + $0) }
            body((0..<inputs.count).map { UnsafePointer(base + 8 * $0) }, outs)
            for (k, p) in outputs.enumerated() { p.update(from: outs[k], count: count) }
        }
    }

    /// `f(x, y, z)` elementwise for three same-shaped tensors.
    @inlinable
    public static func zipMap3(_ x: Tensor, _ y: Tensor, _ z: Tensor, _ f: (Float, Float, Float) -> Float) -> Tensor {
        precondition(x.count == y.count && x.count == z.count, "zipMap3: sizes differ")
        var out = Tensor(uninitialized: x.shape)
        let po = out.mutablePointer(), px = x.basePointer, py = y.basePointer, pz = z.basePointer
        Threading.parallelChunks(x.count) { r in
            for i in r { po[i] = f(px[i], py[i], pz[i]) }
        }
        return out
    }

    /// `x * s`.
    public static func scale(_ x: Tensor, by s: Float) -> Tensor { map(x) { $0 * s } }

    /// Adds `y` into `x` in place (same element count): x += alpha * y.
    public static func accumulate(_ x: inout Tensor, _ y: Tensor, alpha: Float = 1) {
        precondition(x.count == y.count, "accumulate: sizes differ \(x.shape) vs \(y.shape)")
        let px = x.mutablePointer(), py = y.basePointer
        Threading.parallelChunks(x.count) { r in
            if alpha == 1 { for i in r { px[i] += py[i] } } else { for i in r { px[i] += alpha * py[i] } }
        }
    }

    /// Numerically stable sigmoid.
    @inlinable public static func sigmoid(_ x: Float) -> Float {
        x >= 0 ? 1 / (1 + Foundation.exp(-x)) : { let e = Foundation.exp(x); return e / (1 + e) }()
    }

    /// Exact GELU: x * Phi(x).
    @inlinable public static func geluExact(_ x: Float) -> Float { 0.5 * x * (1 + Foundation.erf(x / Float(2.0.squareRoot()))) }

    /// Derivative of exact GELU.
    @inlinable public static func geluExactGrad(_ x: Float) -> Float {
        let cdf = 0.5 * (1 + Foundation.erf(x / Float(2.0.squareRoot())))
        let pdf = Foundation.exp(-0.5 * x * x) / Float((2 * Double.pi).squareRoot())
        return cdf + x * pdf
    }

    /// Tanh-approximate GELU (PyTorch approximate="tanh", "gelu_pytorch_tanh").
    @inlinable public static func geluTanh(_ x: Float) -> Float {
        let c: Float = 0.7978845608028654 // sqrt(2 / pi)
        return 0.5 * x * (1 + Foundation.tanh(c * (x + 0.044715 * x * x * x)))
    }

    /// Derivative of tanh-approximate GELU.
    @inlinable public static func geluTanhGrad(_ x: Float) -> Float {
        let c: Float = 0.7978845608028654
        let u = c * (x + 0.044715 * x * x * x)
        let t = Foundation.tanh(u)
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x)
    }
}
