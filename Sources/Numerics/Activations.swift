// Activation functions: the one `Activation` type of the runtime, its elementwise kernels on
// Tensors and the differentiable versions (the gated MLP's fused kernels are in
// Elementwise.swift and Ops.swift).
//
// Dimension legend: every function maps a tensor to one of the same shape, except `mean`,
// which reduces one axis.
import Foundation

/// MLP / GLU activation functions.
public enum Activation: String, Sendable, CaseIterable {
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

    /// Whether the fused gated kernels have an eight-lane path for this activation.
    public var isVectorised: Bool { self == .silu || self == .geluTanh }

    /// The activation of one value (the scalar path of the kernels).
    @inline(__always)
    public func apply(_ x: Float) -> Float {
        switch self {
        case .silu: return x / (1 + Foundation.exp(-x))
        case .geluTanh: return Kernels.geluTanh(x)
        case .geluErf: return Kernels.geluExact(x)
        case .relu: return Swift.max(0, x)
        }
    }

    /// Derivative of the activation at x.
    @inline(__always)
    public func derivative(_ x: Float) -> Float {
        switch self {
        case .silu:
            let s = 1 / (1 + Foundation.exp(-x))
            return s * (1 + x * (1 - s))
        case .geluTanh: return Kernels.geluTanhGrad(x)
        case .geluErf: return Kernels.geluExactGrad(x)
        case .relu: return x > 0 ? 1 : 0
        }
    }
}

extension Kernels {
    /// Elementwise exp.
    public static func exp(_ x: Tensor) -> Tensor { mapSIMD(x, cost: 4) { VectorMath.exp($0) } }
    /// Elementwise natural log.
    public static func log(_ x: Tensor) -> Tensor { map(x, cost: transcendentalCost) { Foundation.log($0) } }
    /// Elementwise tanh.
    public static func tanh(_ x: Tensor) -> Tensor { map(x, cost: transcendentalCost) { Foundation.tanh($0) } }
    /// Elementwise logistic sigmoid.
    public static func sigmoid(_ x: Tensor) -> Tensor { mapSIMD(x, cost: 4) { VectorMath.sigmoid($0) } }
    /// SiLU: x * sigmoid(x).
    public static func silu(_ x: Tensor) -> Tensor { mapSIMD(x, cost: 4) { VectorMath.silu($0) } }
    /// GELU, exact (erf) or tanh-approximate.
    public static func gelu(_ x: Tensor, approximate: Bool) -> Tensor {
        approximate ? mapSIMD(x, cost: 4) { VectorMath.geluTanh($0) } : map(x, cost: transcendentalCost, geluExact)
    }
    /// `a(x)` elementwise.
    public static func activate(_ x: Tensor, _ a: Activation) -> Tensor {
        switch a {
        case .silu: return silu(x)
        case .geluTanh: return gelu(x, approximate: true)
        case .geluErf: return gelu(x, approximate: false)
        case .relu: return map(x) { Swift.max($0, 0) }
        }
    }
    /// Soft-capping: cap * tanh(x / cap).
    public static func softcap(_ x: Tensor, cap: Float) -> Tensor {
        map(x, cost: transcendentalCost) { cap * Foundation.tanh($0 / cap) }
    }
    /// Mean over `axis`.
    public static func mean(_ x: Tensor, axis: Int, keepDims: Bool = false) -> Tensor {
        let n = axisView(x.shape, axis).n
        return scale(sum(x, axis: axis, keepDims: keepDims), by: 1 / Float(Swift.max(n, 1)))
    }
}

extension Ops {
    /// `a(x)` elementwise, differentiable.
    public static func activate(_ x: Variable, _ a: Activation) -> Variable {
        switch a {
        case .silu: return silu(x)
        case .geluTanh: return gelu(x, approximate: true)
        case .geluErf: return gelu(x, approximate: false)
        case .relu: return relu(x)
        }
    }
}
