// Elementwise activation kernels on Tensors (forward only; the Ops versions add backward).
//
// Dimension legend: every function maps a tensor to one of the same shape, except `mean`,
// which reduces one axis.
import Foundation

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
