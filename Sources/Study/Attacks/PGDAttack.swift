// PGDAttack: projected sign-gradient descent on an additive residual-stream perturbation
// (paper Eq. 4, Appendix C.1; DESIGN.md section 4 "PGD").
//
// Dimension legend: P prompt tokens (chat-formatted, generation prompt included), K target
// (or clean-response) tokens, T = P + K, D hidden width. A shared delta is [D]; a
// per-position delta is [P, D] (padded with zero rows to [T, D] for the differentiable pass).
//
// The residual stream up to the intervention layer is computed once per sequence without
// gradients (`TransformerModel.prefix`); each step reruns only the blocks after it
// (`forwardFrom`) and the LM head only at the K loss rows.
import Foundation
import Models
import Numerics

/// The result of one attack on one example.
public struct PGDOutcome: Sendable {
    /// The final perturbation: [D] (shared) or [P, D] (per position).
    public var delta: Tensor
    /// The budget in residual-stream units (the L-inf radius actually enforced).
    public var epsilonAbsolute: Double
    /// The budget relative to `hiddenMaxAbs` (nil when the clean prompt's stream is all zero).
    public var epsilonRelative: Double?
    /// max |h| over the clean prompt positions at the layer.
    public var hiddenMaxAbs: Double
    /// NLL (mean per token) of the target after the prompt, without and with delta.
    public var targetNLLBefore: Double
    public var targetNLLAfter: Double
    /// The quantity the attack optimised (target NLL for `targeted`, clean-response NLL for
    /// `untargeted`, target NLL for `random`), before and after; nil when it is undefined
    /// (untargeted attack on an empty clean response).
    public var objectiveBefore: Double?
    public var objectiveAfter: Double?
    /// ||delta||_inf and ||delta||_2 of the perturbation tensor.
    public var deltaLinf: Double
    public var deltaL2: Double
    /// ||.||_2 of everything added to the prompt positions (sqrt(P) x deltaL2 when shared).
    public var deltaL2Prompt: Double
    /// The intervention to generate with.
    public var intervention: Intervention
}

/// One latent-space attack configuration bound to a model.
public struct PGDAttack: @unchecked Sendable {
    // @unchecked: TransformerModel is a reference type read-only here.
    public let model: TransformerModel
    public let options: PGDOptions

    /// An attack; throws when the options do not fit the model.
    public init(model: TransformerModel, options: PGDOptions) throws {
        try options.validate(layers: model.config.numLayers)
        guard model.config.head == .causalLM else {
            throw StudyError.invalidConfiguration("PGD needs a causal-LM model, got a \(model.config.head.rawValue) head")
        }
        self.model = model
        self.options = options
    }

    /// Attacks one example.
    /// - Parameters:
    ///   - prompt: chat-formatted prompt ids with the generation prompt (P > 0).
    ///   - target: target ids (e.g. "Sure, here is" without special tokens), K > 0.
    ///   - cleanResponse: the clean greedy response ids (the untargeted attack's objective).
    ///   - seed: the random baseline's seed.
    ///   - observer: called after every step with (step, delta).
    public func run(prompt: [Int], target: [Int], cleanResponse: [Int] = [], seed: UInt64 = 0,
                    observer: ((Int, Tensor) -> Void)? = nil) throws -> PGDOutcome {
        guard !prompt.isEmpty, !target.isEmpty else {
            throw StudyError.invalidConfiguration("PGD needs a non-empty prompt and target (got \(prompt.count) and \(target.count) tokens)")
        }
        let d = model.config.hiddenSize, p = prompt.count
        let targetSeq = try Sequence(model: model, layer: options.layer, prompt: prompt, continuation: target)
        let hMax = Double(targetSeq.promptMaxAbs(rows: p, width: d))
        let epsAbs: Double
        let epsRel: Double?
        switch options.epsilonMode {
        case .relative:
            epsAbs = options.epsilon * hMax
            epsRel = options.epsilon
        case .absolute:
            epsAbs = options.epsilon
            epsRel = hMax > 0 ? options.epsilon / hMax : nil
        }
        // The largest Float not above epsAbs, so every element satisfies |delta_i| <= epsAbs exactly.
        var radius = Float(epsAbs)
        if Double(radius) > epsAbs { radius = radius.nextDown }
        let step = Float(epsAbs * options.stepFraction)
        var delta = Tensor(zeros: options.deltaShape == .shared ? [d] : [p, d])
        let before = try loss(targetSeq, delta, grad: false).0
        var objectiveBefore: Double? = before
        var objectiveAfter: Double?
        var targetAfter: Double
        switch options.attack {
        case .random:
            var rng = SplitMix64(seed: seed)
            delta = Tensor(shape: delta.shape) { q in for i in 0..<q.count { q[i] = rng.nextFloat() < 0.5 ? -radius : radius } }
            observer?(0, delta)
            targetAfter = try loss(targetSeq, delta, grad: false).0
            objectiveAfter = targetAfter
        case .targeted:
            for s in 0..<options.steps {
                let g = try gradient(targetSeq, delta)
                Self.signStep(&delta, grad: g, by: -step, radius: radius)
                observer?(s, delta)
            }
            targetAfter = options.steps == 0 ? before : try loss(targetSeq, delta, grad: false).0
            objectiveAfter = targetAfter
        case .untargeted:
            if cleanResponse.isEmpty {
                objectiveBefore = nil
            } else {
                let ySeq = try Sequence(model: model, layer: options.layer, prompt: prompt, continuation: cleanResponse)
                var last = try loss(ySeq, delta, grad: false).0
                objectiveBefore = last
                for s in 0..<options.steps {
                    let g = try gradient(ySeq, delta)
                    Self.signStep(&delta, grad: g, by: step, radius: radius)
                    observer?(s, delta)
                }
                if options.steps > 0 { last = try loss(ySeq, delta, grad: false).0 }
                objectiveAfter = last
            }
            targetAfter = try loss(targetSeq, delta, grad: false).0
        }
        let (linf, l2) = Self.norms(delta)
        let promptL2 = options.deltaShape == .shared ? l2 * Double(p).squareRoot() : l2
        let scope: InterventionScope = options.deltaPositions == .all ? .all : .prompt
        return PGDOutcome(delta: delta, epsilonAbsolute: epsAbs, epsilonRelative: epsRel, hiddenMaxAbs: hMax,
                          targetNLLBefore: before, targetNLLAfter: targetAfter, objectiveBefore: objectiveBefore,
                          objectiveAfter: objectiveAfter, deltaLinf: linf, deltaL2: l2, deltaL2Prompt: promptL2,
                          intervention: Intervention(layer: options.layer, delta: delta, scope: scope))
    }

    /// A prompt + continuation with its residual stream at the layer and the loss rows.
    public struct Sequence {
        let state: PrefixState
        /// Flattened rows whose logits predict the continuation: P-1 ..< T-1 (the sequence holds T-1 ids).
        let rows: [Int]
        let targets: [Int]
        let promptLength: Int

        /// Runs the model up to `layer` on prompt + continuation (no gradients).
        public init(model: TransformerModel, layer: LayerRef, prompt: [Int], continuation: [Int]) throws {
            // The last continuation token is only a label, never an input (causal attention).
            let ids = prompt + continuation.dropLast()
            state = try model.prefix(TokenBatch(ids: [ids]), upTo: layer)
            rows = Array((prompt.count - 1)..<ids.count)
            targets = continuation
            promptLength = prompt.count
        }

        var length: Int { state.batch.length }

        /// max |h| over the first `rows` positions.
        func promptMaxAbs(rows: Int, width: Int) -> Float {
            state.hidden.withUnsafeBufferPointer { h in
                var m: Float = 0
                for i in 0..<(rows * width) { m = max(m, abs(h[i])) }
                return m
            }
        }
    }

    /// Mean NLL of the sequence's continuation with `delta` added, and (with `grad`) its
    /// gradient in delta's shape.
    func loss(_ seq: Sequence, _ delta: Tensor, grad: Bool) throws -> (Double, Tensor?) {
        let d = model.config.hiddenSize
        let value: Tensor
        if options.deltaShape == .perPosition {
            // [P, D] -> [T, D] with zero rows after the prompt (masked out by deltaPositions).
            value = Tensor(shape: [seq.length, d]) { dst in
                delta.withUnsafeBufferPointer { src in
                    for i in 0..<dst.count { dst[i] = i < src.count ? src[i] : 0 }
                }
            }
        } else {
            value = delta
        }
        let v = Variable(value, requiresGrad: grad)
        let positions: Range<Int>? = options.deltaPositions == .prompt ? 0..<seq.promptLength : nil
        let logits = model.forwardFrom(seq.state, delta: v, deltaPositions: positions, logitRows: seq.rows)
        let l = Ops.crossEntropy(logits: logits, targets: seq.targets)
        guard grad else { return (Double(l.item), nil) }
        l.backward()
        guard let g = v.grad else { throw StudyError.invalidConfiguration("no gradient reached delta at layer \(options.layer)") }
        if options.deltaShape == .perPosition {
            return (Double(l.item), Tensor(shape: delta.shape) { q in
                g.withUnsafeBufferPointer { src in for i in 0..<q.count { q[i] = src[i] } }
            })
        }
        return (Double(l.item), g)
    }

    /// The gradient of the sequence's NLL with respect to delta (delta's shape).
    public func gradient(_ seq: Sequence, _ delta: Tensor) throws -> Tensor {
        guard let g = try loss(seq, delta, grad: true).1 else {
            throw StudyError.invalidConfiguration("no gradient reached delta at layer \(options.layer)")
        }
        return g
    }

    /// delta <- clamp(delta + by * sign(grad), -radius, radius); sign(0) = 0.
    static func signStep(_ delta: inout Tensor, grad: Tensor, by: Float, radius: Float) {
        precondition(delta.count == grad.count, "gradient \(grad.shape) does not match delta \(delta.shape)")
        grad.withUnsafeBufferPointer { g in
            delta.withUnsafeMutableBufferPointer { x in
                for i in 0..<x.count {
                    let s: Float = g[i] > 0 ? 1 : (g[i] < 0 ? -1 : 0)
                    x[i] = min(radius, max(-radius, x[i] + by * s))
                }
            }
        }
    }

    /// (L-inf, L2) norms.
    static func norms(_ t: Tensor) -> (Double, Double) {
        t.withUnsafeBufferPointer { x in
            var m: Float = 0
            var s: Double = 0
            for v in x { m = max(m, abs(v)); s += Double(v) * Double(v) }
            return (Double(m), s.squareRoot())
        }
    }
}
