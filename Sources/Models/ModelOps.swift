// ModelOps: forward-only kernels of the inference path (no autodiff bookkeeping).
//
// Dimension legend: N rows (= B*T flattened batch x positions), D width of a row, H query
// heads, Hkv key/value heads, Dh head width, S key positions (cache length), T query
// positions of this call, B batch.
// Activations are row-major [N, D] tensors; attention reads q as [B*T, H*Dh] and keys /
// values from a `LayerKVCache` laid out [B, Hkv, capacity, Dh].
import Foundation
import Numerics

/// Forward-only kernels on `Tensor` used by the inference backend.
public enum ModelOps {
    /// y = x W^T (+ b) (+ base): x [N, in], weight [out, in], bias [out], base [N, out]
    /// (e.g. the residual stream, which sgemm then accumulates onto with beta 1). `packed`,
    /// a packed copy of a frozen weight, replaces sgemm.
    public static func linear(_ x: Tensor, _ weight: Tensor, bias: Tensor? = nil, accumulateOnto base: Tensor? = nil,
                              packed: PackedMatrix? = nil) -> Tensor {
        let n = x.count / x.shape[x.rank - 1], inDim = x.shape[x.rank - 1], outDim = weight.shape[0]
        precondition(weight.shape[1] == inDim, "linear: input width \(inDim) != weight \(weight.shape)")
        precondition(base == nil || base!.count == n * outDim, "linear: base \(base!.shape) is not [\(n), \(outDim)]")
        var out = Tensor(uninitialized: [n, outDim])
        x.withUnsafeBufferPointer { px in
            weight.withUnsafeBufferPointer { pw in
                out.withUnsafeMutableBufferPointer { po in
                    if let base {
                        base.withUnsafeBufferPointer { pr in po.baseAddress!.update(from: pr.baseAddress!, count: n * outDim) }
                        if let bias {
                            bias.withUnsafeBufferPointer { pb in
                                for r in 0..<n {
                                    let row = po.baseAddress! + r * outDim
                                    for i in 0..<outDim { row[i] += pb[i] }
                                }
                            }
                        }
                    } else if let bias {
                        bias.withUnsafeBufferPointer { pb in
                            for r in 0..<n { (po.baseAddress! + r * outDim).update(from: pb.baseAddress!, count: outDim) }
                        }
                    }
                    if let packed {
                        precondition(packed.rows == outDim && packed.cols == inDim, "linear: packed weight for \(weight.shape)")
                        packed.product(x: px.baseAddress!, m: n, ldx: inDim, y: po.baseAddress!, ldy: outDim,
                                       accumulate: bias != nil || base != nil)
                    } else {
                        sgemm(transA: false, transB: true, m: n, n: outDim, k: inDim, a: px.baseAddress!, lda: inDim,
                              b: pw.baseAddress!, ldb: inDim, beta: bias == nil && base == nil ? 0 : 1, c: po.baseAddress!,
                              ldc: outDim)
                    }
                }
            }
        }
        return out
    }

    /// Splits the columns of y [N, sum(widths)] into [N, w] tensors.
    public static func splitColumns(_ y: Tensor, widths: [Int]) -> [Tensor] {
        let n = y.shape[0], total = y.shape[1]
        var start = 0
        return widths.map { w in
            defer { start += w }
            let from = start
            var part = Tensor(uninitialized: [n, w])
            part.withUnsafeMutableBufferPointer { out in
                y.withUnsafeBufferPointer { py in
                    for r in 0..<n { (out.baseAddress! + r * w).update(from: py.baseAddress! + r * total + from, count: w) }
                }
            }
            return part
        }
    }

    /// out += scale * (x A^T) B^T: the low-rank LoRA update; a [r, in], b [out, r].
    public static func addLowRank(_ out: inout Tensor, _ x: Tensor, a: Tensor, b: Tensor, scale: Float) {
        let mid = linear(x, a)
        let n = mid.shape[0], r = a.shape[0], outDim = b.shape[0]
        mid.withUnsafeBufferPointer { pm in
            b.withUnsafeBufferPointer { pb in
                out.withUnsafeMutableBufferPointer { po in
                    sgemm(transA: false, transB: true, m: n, n: outDim, k: r, alpha: scale, a: pm.baseAddress!, lda: r,
                          b: pb.baseAddress!, ldb: r, beta: 1, c: po.baseAddress!, ldc: outDim)
                }
            }
        }
    }

    /// RMSNorm over the last dimension: x / sqrt(mean(x^2) + eps) * w (or * (1 + w)).
    public static func rmsNorm(_ x: Tensor, weight: Tensor, eps: Float, addOne: Bool) -> Tensor {
        let d = x.shape[x.rank - 1], n = x.count / d
        return Tensor(shape: x.shape) { out in
            x.withUnsafeBufferPointer { px in
                weight.withUnsafeBufferPointer { pw in
                    for r in 0..<n {
                        let row = px.baseAddress! + r * d, dst = out.baseAddress! + r * d
                        var ss: Float = 0
                        for i in 0..<d { ss += row[i] * row[i] }
                        let inv = 1 / (ss / Float(d) + eps).squareRoot()
                        if addOne {
                            for i in 0..<d { dst[i] = row[i] * inv * (1 + pw[i]) }
                        } else {
                            for i in 0..<d { dst[i] = pw[i] * (row[i] * inv) }
                        }
                    }
                }
            }
        }
    }

    /// LayerNorm over the last dimension with affine weight and bias.
    public static func layerNorm(_ x: Tensor, weight: Tensor, bias: Tensor, eps: Float) -> Tensor {
        let d = x.shape[x.rank - 1], n = x.count / d
        return Tensor(shape: x.shape) { out in
            x.withUnsafeBufferPointer { px in
                weight.withUnsafeBufferPointer { pw in
                    bias.withUnsafeBufferPointer { pb in
                        for r in 0..<n {
                            let row = px.baseAddress! + r * d, dst = out.baseAddress! + r * d
                            var mean: Float = 0
                            for i in 0..<d { mean += row[i] }
                            mean /= Float(d)
                            var v: Float = 0
                            for i in 0..<d { let c = row[i] - mean; v += c * c }
                            let inv = 1 / (v / Float(d) + eps).squareRoot()
                            for i in 0..<d { dst[i] = (row[i] - mean) * inv * pw[i] + pb[i] }
                        }
                    }
                }
            }
        }
    }

    /// Elementwise activation by transformers' name: silu, gelu_pytorch_tanh / gelu_new
    /// (tanh approximation), gelu (erf).
    public static func activation(_ x: Tensor, _ kind: Activation) -> Tensor {
        Tensor(shape: x.shape) { out in
            x.withUnsafeBufferPointer { px in
                let a0 = px.baseAddress!, d0 = out.baseAddress!
                Threading.parallelChunks(x.count, costPerItem: 4) { r in
                    VectorMath.map(r.count, a0 + r.lowerBound, d0 + r.lowerBound) { kind.apply($0) }
                }
            }
        }
    }

    /// act(gate) * up from a fused gate/up output y [N, 2W] (gate columns 0..<W, up W..<2W),
    /// without splitting it first.
    public static func gatedActivation(fused y: Tensor, width w: Int, _ kind: Activation) -> Tensor {
        let n = y.shape[0]
        precondition(y.rank == 2 && y.shape[1] == 2 * w, "gated activation: fused \(y.shape) is not [N, 2 x \(w)]")
        var out = Tensor(uninitialized: [n, w])
        y.withUnsafeBufferPointer { py in
            out.withUnsafeMutableBufferPointer { po in
                let y0 = py.baseAddress!, d0 = po.baseAddress!
                // One loop per activation (the switch outside it): through a closure that
                // switches on `kind`, every eight lanes paid a call.
                Threading.parallelChunks(n, costPerItem: 8 * w) { rows in
                    for r in rows {
                        let g = y0 + r * 2 * w, u = g + w, d = d0 + r * w
                        switch kind {
                        case .silu: Kernels.gatedForward(w, g, u, d, .silu)
                        case .geluTanh: Kernels.gatedForward(w, g, u, d, .geluTanh)
                        case .geluErf, .relu: VectorMath.map(w, g, u, d) { kind.apply($0) * $1 }
                        }
                    }
                }
            }
        }
        return out
    }

    /// act(gate) * up, fused.
    public static func gatedActivation(gate: Tensor, up: Tensor, _ kind: Activation) -> Tensor {
        precondition(gate.shape == up.shape, "gated activation: \(gate.shape) vs \(up.shape)")
        switch kind {
        case .silu: return Kernels.gated(gate, up, .silu)
        case .geluTanh: return Kernels.gated(gate, up, .geluTanh)
        case .geluErf, .relu: break
        }
        return Tensor(shape: gate.shape) { out in
            gate.withUnsafeBufferPointer { pg in
                up.withUnsafeBufferPointer { pu in
                    let g0 = pg.baseAddress!, u0 = pu.baseAddress!, d0 = out.baseAddress!
                    Threading.parallelChunks(gate.count, costPerItem: 4) { r in
                        VectorMath.map(r.count, g0 + r.lowerBound, u0 + r.lowerBound, d0 + r.lowerBound) {
                            kind.apply($0) * $1
                        }
                    }
                }
            }
        }
    }

    /// a + b (same shapes), or a + b broadcast over rows when b has a's last dimension only.
    public static func add(_ a: Tensor, _ b: Tensor) -> Tensor {
        if a.shape == b.shape || a.count == b.count { return Kernels.add(a, b.reshaped(a.shape)) }
        let d = b.count
        precondition(a.count % d == 0, "add: cannot broadcast \(b.shape) over \(a.shape)")
        return Tensor(shape: a.shape) { out in
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    for i in 0..<out.count { out[i] = pa[i] + pb[i % d] }
                }
            }
        }
    }

    /// x * s.
    public static func scale(_ x: Tensor, _ s: Float) -> Tensor {
        Tensor(shape: x.shape) { out in
            x.withUnsafeBufferPointer { px in for i in 0..<out.count { out[i] = px[i] * s } }
        }
    }

    /// tanh(x / cap) * cap.
    public static func softcap(_ x: Tensor, _ cap: Float) -> Tensor {
        Tensor(shape: x.shape) { out in
            x.withUnsafeBufferPointer { px in for i in 0..<out.count { out[i] = tanh(px[i] / cap) * cap } }
        }
    }

    /// Rows of `table` [V, D] at `ids`.
    public static func embedding(_ table: Tensor, ids: [Int]) -> Tensor {
        let d = table.shape[1]
        return Tensor(shape: [ids.count, d]) { out in
            table.withUnsafeBufferPointer { pt in
                for (r, id) in ids.enumerated() {
                    precondition(id >= 0 && id < table.shape[0], "token id \(id) outside vocabulary \(table.shape[0])")
                    (out.baseAddress! + r * d).update(from: pt.baseAddress! + id * d, count: d)
                }
            }
        }
    }

    /// Rotate-half RoPE in place, with per-row cos/sin [N, Dh/2], on `rows` rows of heads*Dh
    /// values starting at `x`, rows `rowStride` floats apart (the q or k columns of separate
    /// or fused q/k/v outputs).
    static func applyRope(_ x: UnsafeMutablePointer<Float>, rows n: Int, rowStride: Int, heads: Int, headDim: Int,
                          cos: Tensor, sin: Tensor) {
        let half = headDim / 2
        cos.withUnsafeBufferPointer { pc in
            sin.withUnsafeBufferPointer { ps in
                for r in 0..<n {
                    let c = pc.baseAddress! + r * half, s = ps.baseAddress! + r * half
                    for h in 0..<heads {
                        let v = x + r * rowStride + h * headDim
                        for i in 0..<half {
                            let x1 = v[i], x2 = v[i + half]
                            v[i] = x1 * c[i] - x2 * s[i]
                            v[i + half] = x2 * c[i] + x1 * s[i]
                        }
                    }
                }
            }
        }
    }
}

/// MLP / GLU activation functions.
public enum Activation: String, Sendable {
    case silu, geluTanh, geluErf, relu

    /// Parses transformers' `hidden_act` / `hidden_activation` / `activation_function`.
    public init?(transformersName: String) {
        switch transformersName {
        case "silu", "swish": self = .silu
        case "gelu_pytorch_tanh", "gelu_new", "gelu_fast", "gelu_tanh": self = .geluTanh
        case "gelu": self = .geluErf
        case "relu": self = .relu
        default: return nil
        }
    }

    /// The activation of one value.
    @inline(__always)
    public func apply(_ x: Float) -> Float {
        switch self {
        case .silu: return x / (1 + exp(-x))
        case .geluTanh:
            return 0.5 * x * (1 + tanh(0.797_884_56 * (x + 0.044715 * x * x * x)))
        case .geluErf: return 0.5 * x * (1 + erf(x * 0.707_106_78))
        case .relu: return max(0, x)
        }
    }

    /// The activation lane-wise (silu and gelu-tanh vectorised; others lane by lane).
    @inline(__always)
    public func apply(_ x: SIMD8<Float>) -> SIMD8<Float> {
        switch self {
        case .silu: return VectorMath.silu(x)
        case .geluTanh: return VectorMath.geluTanh(x)
        case .geluErf, .relu:
            var y = x
            for i in 0..<8 { y[i] = apply(x[i]) }
            return y
        }
    }

    /// Derivative of the activation at x.
    @inline(__always)
    public func derivative(_ x: Float) -> Float {
        switch self {
        case .silu:
            let s = 1 / (1 + exp(-x))
            return s * (1 + x * (1 - s))
        case .geluTanh:
            let k: Float = 0.797_884_56
            let u = k * (x + 0.044715 * x * x * x)
            let t = tanh(u)
            return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x)
        case .geluErf:
            return 0.5 * (1 + erf(x * 0.707_106_78)) + x * exp(-0.5 * x * x) * 0.398_942_28
        case .relu: return x > 0 ? 1 : 0
        }
    }
}
