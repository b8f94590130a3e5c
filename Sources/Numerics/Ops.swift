// Differentiable ops on Variables: arithmetic, unary functions, reductions, matmul, linear.
// Each op computes its forward with `Kernels` and, only when `Autograd.records(...)`,
// attaches a backward closure that captures tensors (never Variables).
//
// Dimension legend: M, K, N matmul dimensions; Bt flattened leading batch dimensions;
// In/Out linear layer widths.
import Foundation

/// Namespace of differentiable operations.
public enum Ops {}

extension Ops {
    /// Defines a differentiable op outside this module: `value` was computed from `inputs`;
    /// `backward(gradOut, needs)` returns one gradient per input (nil where `needs[i]` is
    /// false or the input gets none), each with its input's element count. Records nothing
    /// when gradients are disabled or no input requires one. The closure must capture
    /// tensors, not Variables (a captured Variable would keep the tape alive recursively).
    public static func custom(_ value: Tensor, inputs: [Variable],
                              backward: @escaping (Tensor, [Bool]) -> [Tensor?]) -> Variable {
        guard Autograd.records(inputs) else { return Variable(value) }
        return Variable(value, parents: inputs, backward: backward)
    }
}

// MARK: - Arithmetic with broadcasting

extension Ops {
    /// a + b (numpy broadcasting).
    public static func add(_ a: Variable, _ b: Variable) -> Variable {
        let y = Kernels.add(a.value, b.value)
        guard Autograd.records(a, b) else { return Variable(y) }
        let sa = a.shape, sb = b.shape
        return Variable(y, parents: [a, b]) { g, need in
            [need[0] ? Kernels.sumToShape(g, sa) : nil, need[1] ? Kernels.sumToShape(g, sb) : nil]
        }
    }

    /// a + s * b for same-shaped a and b in one pass (LoRA's scaled low-rank update).
    public static func addScaled(_ a: Variable, _ b: Variable, scale s: Float) -> Variable {
        precondition(a.value.count == b.value.count, "addScaled: \(a.shape) vs \(b.shape)")
        let y = Kernels.zipMapSIMD(a.value, b.value) { $0 + s * $1 }
        guard Autograd.records(a, b) else { return Variable(y) }
        let sb = b.shape
        return Variable(y, parents: [a, b]) { g, need in
            [need[0] ? g : nil, need[1] ? Kernels.scale(g, by: s).reshaped(sb) : nil]
        }
    }

    /// a - b (numpy broadcasting).
    public static func sub(_ a: Variable, _ b: Variable) -> Variable {
        let y = Kernels.sub(a.value, b.value)
        guard Autograd.records(a, b) else { return Variable(y) }
        let sa = a.shape, sb = b.shape
        return Variable(y, parents: [a, b]) { g, need in
            [need[0] ? Kernels.sumToShape(g, sa) : nil,
             need[1] ? Kernels.sumToShape(Kernels.scale(g, by: -1), sb) : nil]
        }
    }

    /// a * b elementwise (numpy broadcasting).
    public static func mul(_ a: Variable, _ b: Variable) -> Variable {
        let y = Kernels.mul(a.value, b.value)
        guard Autograd.records(a, b) else { return Variable(y) }
        let va = a.value, vb = b.value
        return Variable(y, parents: [a, b]) { g, need in
            [need[0] ? Kernels.sumToShape(Kernels.mul(g, vb), va.shape) : nil,
             need[1] ? Kernels.sumToShape(Kernels.mul(g, va), vb.shape) : nil]
        }
    }

    /// a / b elementwise (numpy broadcasting).
    public static func div(_ a: Variable, _ b: Variable) -> Variable {
        let y = Kernels.div(a.value, b.value)
        guard Autograd.records(a, b) else { return Variable(y) }
        let vb = b.value, sa = a.shape
        return Variable(y, parents: [a, b]) { g, need in
            let ga = Kernels.div(g, vb)
            return [need[0] ? Kernels.sumToShape(ga, sa) : nil,
                    need[1] ? Kernels.sumToShape(Kernels.zipMap(ga, y) { -$0 * $1 }, vb.shape) : nil]
        }
    }

    /// x * s for a constant s.
    public static func scale(_ x: Variable, by s: Float) -> Variable {
        let y = Kernels.scale(x.value, by: s)
        guard Autograd.records(x) else { return Variable(y) }
        return Variable(y, parents: [x]) { g, _ in [Kernels.scale(g, by: s)] }
    }

    /// x + c for a constant c.
    public static func addScalar(_ x: Variable, _ c: Float) -> Variable {
        let y = Kernels.map(x.value) { $0 + c }
        guard Autograd.records(x) else { return Variable(y) }
        return Variable(y, parents: [x]) { g, _ in [g] }
    }

    /// -x.
    public static func negate(_ x: Variable) -> Variable { scale(x, by: -1) }
}

/// Elementwise sum with broadcasting.
public func + (a: Variable, b: Variable) -> Variable { Ops.add(a, b) }
/// Elementwise difference with broadcasting.
public func - (a: Variable, b: Variable) -> Variable { Ops.sub(a, b) }
/// Elementwise product with broadcasting.
public func * (a: Variable, b: Variable) -> Variable { Ops.mul(a, b) }
/// Elementwise quotient with broadcasting.
public func / (a: Variable, b: Variable) -> Variable { Ops.div(a, b) }
/// Scales by a constant.
public func * (a: Variable, s: Float) -> Variable { Ops.scale(a, by: s) }
/// Scales by a constant.
public func * (s: Float, a: Variable) -> Variable { Ops.scale(a, by: s) }
/// Negation.
public prefix func - (a: Variable) -> Variable { Ops.negate(a) }

// MARK: - Unary functions

extension Ops {
    /// Elementwise exp.
    public static func exp(_ x: Variable) -> Variable {
        let y = Kernels.exp(x.value)
        guard Autograd.records(x) else { return Variable(y) }
        return Variable(y, parents: [x]) { g, _ in [Kernels.zipMap(g, y) { $0 * $1 }] }
    }

    /// Elementwise natural log.
    public static func log(_ x: Variable) -> Variable {
        let y = Kernels.log(x.value)
        guard Autograd.records(x) else { return Variable(y) }
        let vx = x.value
        return Variable(y, parents: [x]) { g, _ in [Kernels.zipMap(g, vx) { $0 / $1 }] }
    }

    /// Elementwise tanh.
    public static func tanh(_ x: Variable) -> Variable {
        let y = Kernels.tanh(x.value)
        guard Autograd.records(x) else { return Variable(y) }
        return Variable(y, parents: [x]) { g, _ in [Kernels.zipMap(g, y) { $0 * (1 - $1 * $1) }] }
    }

    /// Elementwise logistic sigmoid.
    public static func sigmoid(_ x: Variable) -> Variable {
        let y = Kernels.sigmoid(x.value)
        guard Autograd.records(x) else { return Variable(y) }
        return Variable(y, parents: [x]) { g, _ in [Kernels.zipMap(g, y) { $0 * $1 * (1 - $1) }] }
    }

    /// SiLU (swish): x * sigmoid(x).
    public static func silu(_ x: Variable) -> Variable {
        let y = Kernels.silu(x.value)
        guard Autograd.records(x) else { return Variable(y) }
        let vx = x.value
        return Variable(y, parents: [x]) { g, _ in
            [Kernels.zipMapSIMD(g, vx, cost: 4) { gi, xi in gi * VectorMath.siluGrad(xi) }]
        }
    }

    /// f(gate) * up in one pass (and one backward pass producing both gradients), as
    /// Llama's SiLU-gated and Gemma's GELU-gated MLPs.
    public static func gated(_ gate: Variable, _ up: Variable, _ fn: Activation) -> Variable {
        precondition(gate.shape == up.shape, "gated: gate \(gate.shape) vs up \(up.shape)")
        let vg = gate.value, vu = up.value, n = vg.count
        let y = Kernels.gated(vg, vu, fn)
        guard Autograd.records(gate, up) else { return Variable(y) }
        return Variable(y, parents: [gate, up]) { g, need in
            var dGate: Tensor? = need[0] ? Tensor(uninitialized: vg.shape) : nil
            var dUp: Tensor? = need[1] ? Tensor(uninitialized: vg.shape) : nil
            let pdg = dGate?.mutablePointer(), pdu = dUp?.mutablePointer(), pgr = g.basePointer
            let pg = vg.basePointer, pu = vu.basePointer
            Threading.parallelChunks(n, costPerItem: 8) { r in
                let o = r.lowerBound
                Kernels.gatedBackward(r.count, pgr + o, pg + o, pu + o, pdg.map { $0 + o }, pdu.map { $0 + o }, fn)
            }
            return [dGate, dUp]
        }
    }

    /// f(gate) * up read from one fused projection y [N, 2W] (gate columns first, then up),
    /// -> [N, W]: the gated MLP of a fused frozen gate/up GEMM without copying the halves out,
    /// and a backward that writes both halves of dy in one pass. Same values as `gated` on
    /// the two halves.
    public static func gated(fused y: Variable, width w: Int, _ fn: Activation) -> Variable {
        precondition(y.shape.count == 2 && y.shape[1] == 2 * w, "gated: fused input \(y.shape) is not [N, 2 x \(w)]")
        let vy = y.value, rows = vy.shape[0], py = vy.basePointer
        let out = Kernels.gated(fused: vy, width: w, fn)
        guard Autograd.records(y) else { return Variable(out) }
        return Variable(out, parents: [y]) { g, _ in
            var dy = Tensor(uninitialized: vy.shape)
            let pd = dy.mutablePointer(), pgr = g.basePointer
            Threading.parallelChunks(rows, costPerItem: 8 * w) { r in
                for i in r {
                    let x = py + 2 * w * i, d = pd + 2 * w * i
                    Kernels.gatedBackward(w, pgr + w * i, x, x + w, d, d + w, fn)
                }
            }
            return [dy]
        }
    }

    /// GELU, exact (erf) or tanh-approximate.
    public static func gelu(_ x: Variable, approximate: Bool) -> Variable {
        let y = Kernels.gelu(x.value, approximate: approximate)
        guard Autograd.records(x) else { return Variable(y) }
        let vx = x.value
        return Variable(y, parents: [x]) { g, _ in
            [approximate ? Kernels.zipMapSIMD(g, vx, cost: 4) { $0 * VectorMath.geluTanhGrad($1) }
                         : Kernels.zipMap(g, vx, cost: Kernels.transcendentalCost) { $0 * Kernels.geluExactGrad($1) }]
        }
    }

    /// Soft-capping: cap * tanh(x / cap).
    public static func softcap(_ x: Variable, cap: Float) -> Variable {
        let y = Kernels.softcap(x.value, cap: cap)
        guard Autograd.records(x) else { return Variable(y) }
        return Variable(y, parents: [x]) { g, _ in
            [Kernels.zipMap(g, y) { gi, yi in let t = yi / cap; return gi * (1 - t * t) }]
        }
    }

    /// Elementwise square.
    public static func square(_ x: Variable) -> Variable {
        let y = Kernels.map(x.value) { $0 * $0 }
        guard Autograd.records(x) else { return Variable(y) }
        let vx = x.value
        return Variable(y, parents: [x]) { g, _ in [Kernels.zipMap(g, vx) { 2 * $0 * $1 }] }
    }

    /// Elementwise square root.
    public static func sqrt(_ x: Variable) -> Variable {
        let y = Kernels.map(x.value) { $0.squareRoot() }
        guard Autograd.records(x) else { return Variable(y) }
        return Variable(y, parents: [x]) { g, _ in [Kernels.zipMap(g, y) { $0 / (2 * $1) }] }
    }

    /// Elementwise ReLU.
    public static func relu(_ x: Variable) -> Variable {
        let y = Kernels.map(x.value) { Swift.max($0, 0) }
        guard Autograd.records(x) else { return Variable(y) }
        let vx = x.value
        return Variable(y, parents: [x]) { g, _ in [Kernels.zipMap(g, vx) { $1 > 0 ? $0 : 0 }] }
    }
}

// MARK: - Reductions

extension Ops {
    /// Sum over `axis` (negative counts from the end).
    public static func sum(_ x: Variable, axis: Int, keepDims: Bool = false) -> Variable {
        let y = Kernels.sum(x.value, axis: axis, keepDims: keepDims)
        guard Autograd.records(x) else { return Variable(y) }
        let shape = x.shape
        return Variable(y, parents: [x]) { g, _ in [Kernels.expandAlong(g, to: shape, axis: axis)] }
    }

    /// Mean over `axis`.
    public static func mean(_ x: Variable, axis: Int, keepDims: Bool = false) -> Variable {
        let n = Kernels.axisView(x.shape, axis).n
        return scale(sum(x, axis: axis, keepDims: keepDims), by: 1 / Float(n))
    }

    /// Sum of all elements, as a one-element Variable of shape [].
    public static func sum(_ x: Variable) -> Variable {
        let y = Tensor(scalar: Kernels.sumAll(x.value))
        guard Autograd.records(x) else { return Variable(y) }
        let shape = x.shape
        return Variable(y, parents: [x]) { g, _ in [Tensor(shape: shape, repeating: g.item)] }
    }

    /// Mean of all elements, shape [].
    public static func mean(_ x: Variable) -> Variable {
        scale(sum(x), by: 1 / Float(Swift.max(x.value.count, 1)))
    }

    /// Maximum over `axis`; the gradient goes to the first maximal element.
    public static func max(_ x: Variable, axis: Int, keepDims: Bool = false) -> Variable {
        let (y, idx) = Kernels.max(x.value, axis: axis, keepDims: keepDims)
        guard Autograd.records(x) else { return Variable(y) }
        let shape = x.shape
        return Variable(y, parents: [x]) { g, _ in
            let (o, n, inner, _) = Kernels.axisView(shape, axis)
            var dx = Tensor(zeros: shape)
            let pd = dx.mutablePointer(), pg = g.basePointer
            for a in 0..<o { for i in 0..<inner {
                pd[(a * n + Int(idx[a * inner + i])) * inner + i] = pg[a * inner + i]
            } }
            return [dx]
        }
    }
}

// MARK: - Matmul and linear

extension Ops {
    /// Matrix product of the last two dimensions with transpose flags. Leading (batch)
    /// dimensions must match, or one operand may be rank 2 and shared by every batch entry.
    public static func matmul(_ a: Variable, _ b: Variable, transposeA: Bool = false,
                              transposeB: Bool = false) -> Variable {
        let y = Tensor.matmul(a.value, b.value, transposeA: transposeA, transposeB: transposeB)
        guard Autograd.records(a, b) else { return Variable(y) }
        let va = a.value, vb = b.value
        return Variable(y, parents: [a, b]) { g, need in
            var ga: Tensor?, gb: Tensor?
            if need[0] {
                var full = transposeA ? Tensor.matmul(vb, g, transposeA: transposeB, transposeB: true)
                                      : Tensor.matmul(g, vb, transposeB: !transposeB)
                if va.rank == 2 && vb.rank > 2 {  // shared left operand: sum over the batch
                    full = Kernels.sum(full.reshaped([-1, va.shape[0], va.shape[1]]), axis: 0)
                }
                ga = full.reshaped(va.shape)
            }
            if need[1] {
                let shared = vb.rank == 2 && va.rank > 2
                if shared && !transposeA {
                    // Flatten the batch: A [Bt*M, K], G [Bt*M, N].
                    let k = va.shape[va.rank - 1], n = g.shape[g.rank - 1]
                    let a2 = va.reshaped([-1, k]), g2 = g.reshaped([-1, n])
                    gb = transposeB ? Tensor.matmul(g2, a2, transposeA: true) : Tensor.matmul(a2, g2, transposeA: true)
                } else {
                    var full = transposeB ? Tensor.matmul(g, va, transposeA: true, transposeB: transposeA)
                                          : Tensor.matmul(va, g, transposeA: !transposeA)
                    if shared {
                        full = Kernels.sum(full.reshaped([-1, vb.shape[0], vb.shape[1]]), axis: 0)
                    }
                    gb = full.reshaped(vb.shape)
                }
            }
            return [ga, gb]
        }
    }

    /// Linear layer: x [..., In] times weight [Out, In] (PyTorch layout) plus bias [Out].
    /// `packed`, a packed copy of a frozen weight's value, computes the output and the
    /// gradient to x without OpenBLAS repacking the weight on every call. `recorded`, the
    /// output this layer already produced for the same x, weight and bias (a checkpointed
    /// block replayed on the tape), is used as the output instead of computing the product
    /// again; the backward is the same, since it reads x and the weight, not the output.
    public static func linear(_ x: Variable, weight: Variable, bias: Variable? = nil, packed: PackedMatrix? = nil,
                              recorded: Tensor? = nil) -> Variable {
        precondition(weight.value.rank == 2 && x.shape.last == weight.shape[1] && weight.shape[1] > 0,
                     "linear: input \(x.shape) does not match weight \(weight.shape) ([out, in])")
        let inF = weight.shape[1], outF = weight.shape[0]
        let rows = x.value.count / inF
        let y: Tensor
        if let recorded {
            precondition(recorded.count == rows * outF && recorded.shape.last == outF,
                         "linear: recorded output \(recorded.shape) is not [\(rows), \(outF)]")
            y = recorded.reshaped(Array(x.shape.dropLast()) + [outF])
        } else {
            y = Kernels.linear(x.value, weight: weight.value, bias: bias?.value, packed: packed)
        }
        let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
        guard Autograd.records(inputs) else { return Variable(y) }
        let vx = x.value, vw = weight.value
        return Variable(y, parents: inputs) { g, need in
            let g2 = g.reshaped([rows, outF])
            var out: [Tensor?] = [nil, nil]
            if need[0] {
                out[0] = (packed.map { $0.transposedProduct(g2) } ?? Tensor.matmul(g2, vw)).reshaped(vx.shape)
            }
            if need[1] { out[1] = Tensor.matmul(g2, vx.reshaped([rows, inF]), transposeA: true) }
            if need.count > 2 { out.append(need[2] ? Kernels.sum(g2, axis: 0) : nil) }
            return out
        }
    }
}

// MARK: - Softmax

extension Ops {
    /// Softmax along the last axis.
    public static func softmax(_ x: Variable) -> Variable {
        let y = Kernels.softmax(x.value)
        guard Autograd.records(x) else { return Variable(y) }
        return Variable(y, parents: [x]) { g, _ in [Kernels.softmaxBackward(output: y, grad: g)] }
    }

    /// Log-softmax along the last axis.
    public static func logSoftmax(_ x: Variable) -> Variable {
        let y = Kernels.logSoftmax(x.value)
        guard Autograd.records(x) else { return Variable(y) }
        return Variable(y, parents: [x]) { g, _ in [Kernels.logSoftmaxBackward(output: y, grad: g)] }
    }
}
