// PGDAttack: projected sign-gradient descent on an additive residual-stream perturbation
// (paper Eq. 4, Appendix C.1; DESIGN.md section 4 "PGD").
//
// Dimension legend: B examples attacked together, P prompt tokens (chat-formatted,
// generation prompt included), K target (or clean-response) tokens, T the longest P + K - 1
// of the batch (shorter sequences left-padded), D hidden width. A shared delta is [D]; a
// per-position delta is [P, D] (placed at its prompt rows of a zero [B*T, D] for the
// differentiable pass).
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

    /// One example of a batched attack.
    public struct Example: Sendable {
        /// Chat-formatted prompt ids with the generation prompt (P > 0).
        public var prompt: [Int]
        /// Target ids (e.g. "Sure, here is" without special tokens), K > 0.
        public var target: [Int]
        /// The clean greedy response ids (the untargeted attack's objective).
        public var cleanResponse: [Int]
        /// The random baseline's seed.
        public var seed: UInt64

        public init(prompt: [Int], target: [Int], cleanResponse: [Int] = [], seed: UInt64 = 0) {
            self.prompt = prompt
            self.target = target
            self.cleanResponse = cleanResponse
            self.seed = seed
        }
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
        let example = Example(prompt: prompt, target: target, cleanResponse: cleanResponse, seed: seed)
        return try run(batch: [example], observer: observer.map { o in { _, s, d in o(s, d) } })[0]
    }

    /// Attacks several examples together: each step is one forward and one backward pass
    /// over the left-padded batch (larger matrix products than one prompt at a time). Every
    /// example has its own delta, budget and step; a delta only reaches its own example's
    /// loss rows, so the gradient sign each step uses is that of the example's own attack,
    /// and results match single-example runs up to float summation order.
    /// `observer` is called with (example, step, delta).
    public func run(batch examples: [Example], observer: ((Int, Int, Tensor) -> Void)? = nil) throws -> [PGDOutcome] {
        guard !examples.isEmpty else { return [] }
        for (i, e) in examples.enumerated() where e.prompt.isEmpty || e.target.isEmpty {
            throw StudyError.invalidConfiguration("PGD needs a non-empty prompt and target (example \(i): \(e.prompt.count) and \(e.target.count) tokens)")
        }
        let d = model.config.hiddenSize, n = examples.count
        let targetSeq = try Sequence(model: model, layer: options.layer, prompts: examples.map(\.prompt),
                                     continuations: examples.map(\.target))
        var epsAbs = [Double](repeating: 0, count: n), epsRel = [Double?](repeating: nil, count: n)
        var hMax = [Double](repeating: 0, count: n), radius = [Float](repeating: 0, count: n)
        var step = [Float](repeating: 0, count: n)
        for b in 0..<n {
            hMax[b] = Double(targetSeq.promptMaxAbs(example: b, width: d))
            switch options.epsilonMode {
            case .relative:
                epsAbs[b] = options.epsilon * hMax[b]
                epsRel[b] = options.epsilon
            case .absolute:
                epsAbs[b] = options.epsilon
                epsRel[b] = hMax[b] > 0 ? options.epsilon / hMax[b] : nil
            }
            // The largest Float not above epsAbs, so every element satisfies |delta_i| <= epsAbs exactly.
            radius[b] = Float(epsAbs[b])
            if Double(radius[b]) > epsAbs[b] { radius[b] = radius[b].nextDown }
            step[b] = Float(epsAbs[b] * options.stepFraction)
        }
        var deltas = examples.map { Tensor(zeros: options.deltaShape == .shared ? [d] : [$0.prompt.count, d]) }
        // The targeted attack's first step runs at delta = 0: its forward pass gives the NLL
        // before the attack (the same computation), so no separate pass is made for it.
        var firstStep: (values: [Double], grads: [Tensor]?)? = nil
        if options.attack == .targeted && options.steps > 0 { firstStep = try losses(targetSeq, deltas, grad: true) }
        let before = try firstStep?.values ?? losses(targetSeq, deltas, grad: false).values
        var objectiveBefore: [Double?] = before, objectiveAfter = [Double?](repeating: nil, count: n)
        var targetAfter: [Double]
        switch options.attack {
        case .random:
            for b in 0..<n {
                var rng = SplitMix64(seed: examples[b].seed)
                let r = radius[b]
                deltas[b] = Tensor(shape: deltas[b].shape) { q in for i in 0..<q.count { q[i] = rng.nextFloat() < 0.5 ? -r : r } }
                observer?(b, 0, deltas[b])
            }
            targetAfter = try losses(targetSeq, deltas, grad: false).values
            objectiveAfter = targetAfter
        case .targeted:
            for s in 0..<options.steps {
                let g = try s == 0 ? firstStep?.grads ?? gradients(targetSeq, deltas) : gradients(targetSeq, deltas)
                for b in 0..<n {
                    Self.signStep(&deltas[b], grad: g[b], by: -step[b], radius: radius[b])
                    observer?(b, s, deltas[b])
                }
            }
            targetAfter = options.steps == 0 ? before : try losses(targetSeq, deltas, grad: false).values
            objectiveAfter = targetAfter
        case .untargeted:
            // Examples with an empty clean response have no objective: their delta stays 0.
            let active = (0..<n).filter { !examples[$0].cleanResponse.isEmpty }
            for b in 0..<n where examples[b].cleanResponse.isEmpty { objectiveBefore[b] = nil }
            if !active.isEmpty {
                let ySeq = try Sequence(model: model, layer: options.layer, prompts: active.map { examples[$0].prompt },
                                        continuations: active.map { examples[$0].cleanResponse })
                var sub = active.map { deltas[$0] }
                let first = try losses(ySeq, sub, grad: false).values
                for (j, b) in active.enumerated() { objectiveBefore[b] = first[j] }
                for s in 0..<options.steps {
                    let g = try gradients(ySeq, sub)
                    for (j, b) in active.enumerated() {
                        Self.signStep(&sub[j], grad: g[j], by: step[b], radius: radius[b])
                        observer?(b, s, sub[j])
                    }
                }
                let last = options.steps > 0 ? try losses(ySeq, sub, grad: false).values : first
                for (j, b) in active.enumerated() {
                    objectiveAfter[b] = last[j]
                    deltas[b] = sub[j]
                }
            }
            targetAfter = try losses(targetSeq, deltas, grad: false).values
        }
        let scope: InterventionScope = options.deltaPositions == .all ? .all : .prompt
        return (0..<n).map { b in
            let (linf, l2) = Self.norms(deltas[b])
            let promptL2 = options.deltaShape == .shared ? l2 * Double(examples[b].prompt.count).squareRoot() : l2
            return PGDOutcome(delta: deltas[b], epsilonAbsolute: epsAbs[b], epsilonRelative: epsRel[b], hiddenMaxAbs: hMax[b],
                              targetNLLBefore: before[b], targetNLLAfter: targetAfter[b], objectiveBefore: objectiveBefore[b],
                              objectiveAfter: objectiveAfter[b], deltaLinf: linf, deltaL2: l2, deltaL2Prompt: promptL2,
                              intervention: Intervention(layer: options.layer, delta: deltas[b], scope: scope))
        }
    }

    /// Prompts + continuations (left-padded to a common length T) with their residual
    /// stream at the layer and the loss rows of each example.
    public struct Sequence {
        let state: PrefixState
        /// Flattened rows (b*T + t) whose logits predict the continuations, example by example.
        let rows: [Int]
        let targets: [Int]
        /// Loss rows per example (a range into `rows`).
        let exampleRows: [Range<Int>]
        let promptLengths: [Int]
        /// Left padding per example.
        let padding: [Int]

        /// Runs the model up to `layer` on each prompt + continuation (no gradients).
        public init(model: TransformerModel, layer: LayerRef, prompts: [[Int]], continuations: [[Int]]) throws {
            precondition(prompts.count == continuations.count && !prompts.isEmpty, "one continuation per prompt")
            // The last continuation token is only a label, never an input (causal attention).
            let seqs = zip(prompts, continuations).map { $0 + $1.dropLast() }
            let batch = TokenBatch.leftPadded(seqs, padId: model.config.padTokenId ?? 0)
            state = try model.prefix(batch, upTo: layer)
            let t = batch.length
            var rows: [Int] = [], targets: [Int] = [], exampleRows: [Range<Int>] = [], padding: [Int] = []
            for (b, ids) in seqs.enumerated() {
                let pad = t - ids.count
                let first = rows.count
                rows += ((prompts[b].count - 1)..<ids.count).map { b * t + pad + $0 }
                targets += continuations[b]
                exampleRows.append(first..<rows.count)
                padding.append(pad)
            }
            self.rows = rows
            self.targets = targets
            self.exampleRows = exampleRows
            self.padding = padding
            promptLengths = prompts.map(\.count)
        }

        /// One prompt + continuation.
        public init(model: TransformerModel, layer: LayerRef, prompt: [Int], continuation: [Int]) throws {
            try self.init(model: model, layer: layer, prompts: [prompt], continuations: [continuation])
        }

        var count: Int { promptLengths.count }
        var length: Int { state.batch.length }

        /// max |h| over example b's prompt positions.
        func promptMaxAbs(example b: Int, width: Int) -> Float {
            let first = b * length + padding[b]
            return state.hidden.withUnsafeBufferPointer { h in
                var m: Float = 0
                for i in (first * width)..<((first + promptLengths[b]) * width) { m = max(m, abs(h[i])) }
                return m
            }
        }

        /// Positions of example b that its delta is added to.
        func deltaPositions(_ b: Int, _ mode: DeltaPositions) -> Range<Int> {
            padding[b]..<(mode == .prompt ? padding[b] + promptLengths[b] : length)
        }
    }

    /// Mean NLL of each example's continuation with its delta added, and (with `grad`) the
    /// gradients in the deltas' shapes (each a positive multiple of the example's own NLL
    /// gradient: the batch loss is the mean over every loss row).
    func losses(_ seq: Sequence, _ deltas: [Tensor], grad: Bool) throws -> (values: [Double], grads: [Tensor]?) {
        let d = model.config.hiddenSize, t = seq.length, n = seq.count
        precondition(deltas.count == n, "one delta per example")
        let v: Variable, addend: Variable
        if options.deltaShape == .perPosition {
            // [B*T, D]: example b's [P_b, D] rows at its prompt positions, zero elsewhere.
            var dense = Tensor(zeros: [n * t, d])
            dense.withUnsafeMutableBufferPointer { dst in
                for b in 0..<n {
                    deltas[b].withUnsafeBufferPointer { src in
                        (dst.baseAddress! + (b * t + seq.padding[b]) * d).update(from: src.baseAddress!, count: src.count)
                    }
                }
            }
            // Rows outside the prompts are zero and their gradients are never read: no mask.
            v = Variable(dense, requiresGrad: grad)
            addend = v
        } else {
            var stacked = Tensor(zeros: [n, 1, d])
            stacked.withUnsafeMutableBufferPointer { dst in
                for b in 0..<n {
                    deltas[b].withUnsafeBufferPointer { src in (dst.baseAddress! + b * d).update(from: src.baseAddress!, count: d) }
                }
            }
            let mask = Tensor(shape: [n, t, 1]) { p in
                for b in 0..<n { for i in seq.deltaPositions(b, options.deltaPositions) { p[b * t + i] = 1 } }
            }
            v = Variable(stacked, requiresGrad: grad)
            addend = Ops.reshape(Ops.mul(Variable(mask), v), [n * t, d])
        }
        let (loss, rowNLL) = model.forwardFromNLL(seq.state, addend: addend, logitRows: seq.rows, targets: seq.targets)
        let values = seq.exampleRows.map { g in g.isEmpty ? 0 : g.reduce(0.0) { $0 + Double(rowNLL[$1]) } / Double(g.count) }
        guard grad else { return (values, nil) }
        loss.backward()
        guard let g = v.grad else { throw StudyError.invalidConfiguration("no gradient reached delta at layer \(options.layer)") }
        let grads: [Tensor] = (0..<n).map { b in
            let first = options.deltaShape == .perPosition ? (b * t + seq.padding[b]) * d : b * d
            return Tensor(shape: deltas[b].shape) { q in
                g.withUnsafeBufferPointer { src in (q.baseAddress!).update(from: src.baseAddress! + first, count: q.count) }
            }
        }
        return (values, grads)
    }

    /// The gradient of one example's NLL with respect to its delta (delta's shape), up to a
    /// positive factor.
    public func gradient(_ seq: Sequence, _ delta: Tensor) throws -> Tensor {
        try gradients(seq, [delta])[0]
    }

    /// Gradients of every example's NLL with respect to its delta (up to positive factors).
    public func gradients(_ seq: Sequence, _ deltas: [Tensor]) throws -> [Tensor] {
        guard let g = try losses(seq, deltas, grad: true).grads else {
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
