// Finite-difference gradient checking helper shared by the gradient tests.
import XCTest
@testable import Numerics

/// Random tensor with values in [low, high).
func randomTensor(_ shape: [Int], _ rng: inout SplitMix64, low: Float = -1, high: Float = 1) -> Tensor {
    Tensor.randomUniform(shape: shape, low: low, high: high, rng: &rng)
}

/// Checks analytic gradients of loss = sum(f(inputs) * W) (W random, fixed) against central
/// differences for every element of every input. Fails with the maximum relative error
/// (max |analytic - numeric| / max(max |numeric|, 1e-2)) per input.
func checkGradients(_ name: String, _ inputs: [Tensor], step: Float = 3e-3, tolerance: Float = 1e-2,
                    seed: UInt64 = 99, file: StaticString = #filePath, line: UInt = #line,
                    _ f: ([Variable]) -> Variable) {
    let vars = inputs.map { Variable($0, requiresGrad: true) }
    let out = f(vars)
    var rng = SplitMix64(seed: seed)
    let weights = randomTensor(out.shape, &rng)
    Ops.sum(Ops.mul(out, Variable(weights))).backward()

    func loss(_ xs: [Tensor]) -> Double {
        Autograd.withNoGrad {
            let y = f(xs.map { Variable($0) }).value
            precondition(y.count == weights.count)
            var s: Double = 0
            let a = y.scalars, w = weights.scalars
            for i in 0..<a.count { s += Double(a[i]) * Double(w[i]) }
            return s
        }
    }

    for (k, x) in inputs.enumerated() {
        let analytic = vars[k].grad?.scalars ?? [Float](repeating: 0, count: x.count)
        XCTAssertEqual(analytic.count, x.count, "\(name): gradient \(k) has wrong size", file: file, line: line)
        var numeric = [Float](repeating: 0, count: x.count)
        for i in 0..<x.count {
            var xs = inputs
            var plus = x.copy(), minus = x.copy()
            plus.withUnsafeMutableBufferPointer { $0[i] += step }
            minus.withUnsafeMutableBufferPointer { $0[i] -= step }
            xs[k] = plus
            let lp = loss(xs)
            xs[k] = minus
            let lm = loss(xs)
            numeric[i] = Float((lp - lm) / (2 * Double(step)))
        }
        let scale = Swift.max(numeric.map { abs($0) }.max() ?? 0, 1e-2)
        var worst: Float = 0, at = 0
        for i in 0..<x.count {
            let e = abs(analytic[i] - numeric[i]) / scale
            if e > worst { worst = e; at = i }
        }
        XCTAssertLessThanOrEqual(worst, tolerance,
            "\(name): input \(k) shape \(x.shape) max relative error \(worst) at \(at) (analytic \(analytic[at]), numeric \(numeric[at]))",
            file: file, line: line)
    }
}
