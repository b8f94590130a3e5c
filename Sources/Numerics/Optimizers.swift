// Optimisers (AdamW and SGD with PyTorch semantics), parameter groups, gradient clipping
// by global norm and learning-rate schedules (as transformers' get_*_schedule_with_warmup).
//
// Dimension legend: every optimiser state tensor has its parameter's shape.
import Foundation

/// A set of parameters sharing a learning rate and weight decay.
public struct ParameterGroup {
    /// Parameters; those with `requiresGrad == false` or no gradient are skipped.
    public var parameters: [Variable]
    /// Base learning rate (multiplied by the optimiser's schedule factor).
    public var learningRate: Float
    /// Weight decay (decoupled for AdamW, L2 for SGD).
    public var weightDecay: Float
    /// Optional label for logs.
    public var name: String

    /// A group.
    public init(parameters: [Variable], learningRate: Float, weightDecay: Float = 0, name: String = "") {
        self.parameters = parameters
        self.learningRate = learningRate
        self.weightDecay = weightDecay
        self.name = name
    }
}

/// Common optimiser interface.
public protocol Optimizer: AnyObject {
    /// Parameter groups.
    var groups: [ParameterGroup] { get set }
    /// Factor applied to every group's learning rate (set from a schedule each step).
    var learningRateFactor: Float { get set }
    /// Applies one update from the accumulated gradients.
    func step()
}

extension Optimizer {
    /// Clears the gradients of every parameter.
    public func zeroGrad() { for g in groups { for p in g.parameters { p.zeroGrad() } } }
    /// All parameters of all groups.
    public var parameters: [Variable] { groups.flatMap { $0.parameters } }
}

/// AdamW as torch.optim.AdamW (amsgrad off): p -= lr*wd*p; m, v moments; bias correction;
/// p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
public final class AdamW: Optimizer {
    public var groups: [ParameterGroup]
    public var learningRateFactor: Float = 1
    /// Exponential decay rates of the moments.
    public let beta1: Float, beta2: Float
    /// Denominator epsilon (added after the square root).
    public let eps: Float
    private var state: [ObjectIdentifier: (m: Tensor, v: Tensor, step: Int)] = [:]

    /// An optimiser over `groups`.
    public init(groups: [ParameterGroup], beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8) {
        self.groups = groups
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
    }

    /// An optimiser with one group.
    public convenience init(parameters: [Variable], learningRate: Float, weightDecay: Float = 0.01,
                            beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8) {
        self.init(groups: [ParameterGroup(parameters: parameters, learningRate: learningRate, weightDecay: weightDecay)],
                  beta1: beta1, beta2: beta2, eps: eps)
    }

    /// Number of updates applied to `parameter` so far.
    public func stepCount(of parameter: Variable) -> Int { state[ObjectIdentifier(parameter)]?.step ?? 0 }

    public func step() {
        for group in groups {
            let lr = group.learningRate * learningRateFactor, wd = group.weightDecay
            for p in group.parameters where p.requiresGrad {
                guard let g = p.grad else { continue }
                let key = ObjectIdentifier(p)
                var (m, v, t) = state.removeValue(forKey: key) ?? (Tensor(zeros: p.shape), Tensor(zeros: p.shape), 0)
                t += 1
                // Scalars as PyTorch computes them: in double precision, then used as float.
                let b1 = beta1, b2 = beta2, eps = eps
                let bc1 = 1 - Foundation.pow(Double(b1), Double(t))
                let bc2 = 1 - Foundation.pow(Double(b2), Double(t))
                let stepSize = Float(Double(lr) / bc1), bc2Sqrt = Float(bc2.squareRoot())
                let decay = Float(1 - Double(lr) * Double(wd))
                let pm = m.mutablePointer(), pv = v.mutablePointer(), pg = g.basePointer
                let pp = p.value.mutablePointer()
                Threading.parallelChunks(p.value.count, costPerItem: 8) { r in
                    // Eight lanes at a time with the same IEEE operations, in the same order,
                    // as the scalar update (so results are identical); the tail lane by lane.
                    var i = r.lowerBound
                    while i + 8 <= r.upperBound {
                        var pi = VectorMath.load(pp + i, count: 8)
                        if wd != 0 { pi *= decay }
                        let gi = VectorMath.load(pg + i, count: 8)
                        var mi = VectorMath.load(pm + i, count: 8), vi = VectorMath.load(pv + i, count: 8)
                        mi += (1 - b1) * (gi - mi)
                        vi = vi * b2 + (1 - b2) * gi * gi
                        let denom = vi.squareRoot() / bc2Sqrt + eps
                        pi -= stepSize * (mi / denom)
                        VectorMath.store(pi, pp + i, count: 8)
                        VectorMath.store(mi, pm + i, count: 8)
                        VectorMath.store(vi, pv + i, count: 8)
                        i += 8
                    }
                    for i in i..<r.upperBound {
                        if wd != 0 { pp[i] *= decay }
                        let gi = pg[i]
                        pm[i] += (1 - b1) * (gi - pm[i])  // torch lerp_(grad, 1 - beta1)
                        pv[i] = pv[i] * b2 + (1 - b2) * gi * gi
                        let denom = pv[i].squareRoot() / bc2Sqrt + eps
                        pp[i] -= stepSize * (pm[i] / denom)
                    }
                }
                state[key] = (m, v, t)
            }
        }
    }
}

/// SGD as torch.optim.SGD (dampening 0, no Nesterov): g += wd*p; buf = momentum*buf + g;
/// p -= lr * buf (buf = g on the first step).
public final class SGD: Optimizer {
    public var groups: [ParameterGroup]
    public var learningRateFactor: Float = 1
    /// Momentum factor (0 = plain SGD).
    public let momentum: Float
    private var buffers: [ObjectIdentifier: Tensor] = [:]

    /// An optimiser over `groups`.
    public init(groups: [ParameterGroup], momentum: Float = 0) {
        self.groups = groups
        self.momentum = momentum
    }

    /// An optimiser with one group.
    public convenience init(parameters: [Variable], learningRate: Float, momentum: Float = 0, weightDecay: Float = 0) {
        self.init(groups: [ParameterGroup(parameters: parameters, learningRate: learningRate, weightDecay: weightDecay)],
                  momentum: momentum)
    }

    public func step() {
        for group in groups {
            let lr = group.learningRate * learningRateFactor, wd = group.weightDecay
            for p in group.parameters where p.requiresGrad {
                guard var d = p.grad else { continue }
                if wd != 0 { d = Kernels.zipMap(d, p.value) { $0 + wd * $1 } }
                if momentum != 0 {
                    let key = ObjectIdentifier(p)
                    if var buf = buffers.removeValue(forKey: key) {
                        let mom = momentum
                        let pb = buf.mutablePointer(), pd = d.basePointer
                        withExtendedLifetime(d) { for i in 0..<buf.count { pb[i] = mom * pb[i] + pd[i] } }
                        d = buf
                    } else {
                        d = d.copy()
                    }
                    buffers[key] = d
                }
                Kernels.accumulate(&p.value, d, alpha: -lr)
            }
        }
    }
}

/// Gradient utilities.
public enum Gradients {
    /// L2 norm of all gradients together (parameters without a gradient count as 0).
    public static func globalNorm(_ parameters: [Variable]) -> Float {
        var total: Double = 0
        for p in parameters {
            guard let g = p.grad else { continue }
            let pg = g.basePointer
            for i in 0..<g.count { total += Double(pg[i]) * Double(pg[i]) }
        }
        return Float(total.squareRoot())
    }

    /// Scales gradients so their global L2 norm is at most `maxNorm` (as
    /// torch.nn.utils.clip_grad_norm_: factor maxNorm / (norm + 1e-6) when below 1).
    /// Returns the norm before clipping.
    @discardableResult
    public static func clipGlobalNorm(_ parameters: [Variable], maxNorm: Float) -> Float {
        let norm = globalNorm(parameters)
        let coef = maxNorm / (norm + 1e-6)
        if coef < 1 {
            for p in parameters {
                guard let g = p.grad else { continue }
                p.grad = Kernels.scale(g, by: coef)
            }
        }
        return norm
    }
}

/// Learning-rate schedule: a factor of the base learning rate per optimiser step (step 0 is
/// the first update), as transformers' LambdaLR schedules.
public enum LRSchedule: Sendable, Equatable {
    /// Factor 1 throughout.
    case constant
    /// Constant after a linear warmup.
    case constantWithWarmup(warmupSteps: Int)
    /// get_linear_schedule_with_warmup: step/warmup, then linear decay to 0 at totalSteps.
    case linearWarmupDecay(warmupSteps: Int, totalSteps: Int)
    /// get_cosine_schedule_with_warmup with 0.5 cycles: warmup, then half a cosine to 0.
    case cosine(warmupSteps: Int, totalSteps: Int)

    /// The factor for `step`.
    public func factor(step: Int) -> Float {
        switch self {
        case .constant:
            return 1
        case .constantWithWarmup(let w):
            return step < w ? Float(step) / Float(Swift.max(1, w)) : 1
        case .linearWarmupDecay(let w, let total):
            if step < w { return Float(step) / Float(Swift.max(1, w)) }
            return Swift.max(0, Float(total - step) / Float(Swift.max(1, total - w)))
        case .cosine(let w, let total):
            if step < w { return Float(step) / Float(Swift.max(1, w)) }
            let progress = Double(step - w) / Double(Swift.max(1, total - w))
            return Float(Swift.max(0, 0.5 * (1 + Foundation.cos(Double.pi * progress))))
        }
    }
}
