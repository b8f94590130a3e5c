// Differentiable forward passes: gradients to residual-stream perturbations (PGD) and to
// parameters (training), with a block-wise recomputation scheme that keeps only block
// inputs in memory (gradient checkpointing).
//
// Dimension legend: B batch, T positions, N = B*T rows, D hidden, V vocabulary, R selected
// rows, L blocks. Hidden Variables are [N, D]; logits [N, V] or [R, V].
import Foundation
import Numerics

/// A perturbation Variable added to the residual stream at `layer`.
public struct DeltaIntervention {
    public var layer: LayerRef
    /// [D] shared by the perturbed positions, or [T, D] one row per position.
    public var delta: Variable
    /// Positions t (per row) that receive the perturbation; nil = all positions.
    public var positions: Range<Int>?

    public init(layer: LayerRef, delta: Variable, positions: Range<Int>? = nil) {
        self.layer = layer
        self.delta = delta
        self.positions = positions
    }
}

/// Residual stream at an intervention point, computed once without gradients.
public struct PrefixState {
    public let batch: TokenBatch
    public let positions: [Int]
    public let layer: LayerRef
    /// Raw residual stream at `layer` (embedding output or block output, before any final norm) [N, D].
    public let hidden: Tensor
}

/// Options of differentiable forwards.
public struct DifferentiableOptions {
    public var positions: PositionMode = .fromMask
    public var hidden: HiddenCapture = .none
    /// `.all` ([N, V]), `.rows(r)` ([R, V]), `.last` ([B, V]) or `.none`.
    public var logits: LogitsMode = .all
    /// Targets of the logit rows (one per row of `logits`, -100 to skip one): the output's
    /// `loss` is then their mean token NLL and `rowLosses` each row's NLL, and no logits are
    /// stored or returned: a frozen LM head on at most `TransformerModel.onePassHeadRows`
    /// rows runs with the loss as one pass over its weight, more rows (or a trainable head)
    /// a chunk of rows at a time (`Ops.linearCrossEntropy`).
    public var lossTargets: [Int]? = nil
    public var interventions: [DeltaIntervention] = []
    /// LoRA dropout active.
    public var training: Bool = false
    public var seed: UInt64 = 0
    /// Recompute each block in the backward pass instead of keeping its activations.
    public var checkpointing: Bool = true
    /// With checkpointing, the last `keptBlocks` blocks record their activations in the
    /// forward pass and are not recomputed (memory traded for speed; 0 = recompute all).
    public var keptBlocks: Int = 0
    /// With checkpointing, the last `replayedBlocks` of the blocks that are not kept store the
    /// outputs of their linear layers (those without LoRA terms) in the forward pass, and
    /// their recomputation reuses them instead of computing the products again: about
    /// Out/D row-widths per layer instead of none (9 for SmolLM2: q, k, v, o, gate, up, down),
    /// against the 1 of a recomputed block's input and the whole tape of a kept one. Results
    /// are identical to recomputation.
    public var replayedBlocks: Int = 0

    public init(positions: PositionMode = .fromMask, hidden: HiddenCapture = .none, logits: LogitsMode = .all,
                interventions: [DeltaIntervention] = [], training: Bool = false, seed: UInt64 = 0,
                checkpointing: Bool = true, keptBlocks: Int = 0, replayedBlocks: Int = 0) {
        self.keptBlocks = keptBlocks
        self.replayedBlocks = replayedBlocks
        self.positions = positions
        self.hidden = hidden
        self.logits = logits
        self.interventions = interventions
        self.training = training
        self.seed = seed
        self.checkpointing = checkpointing
    }
}

/// Outputs of a differentiable forward.
public struct DifferentiableOutput {
    public var logits: Variable?
    /// Mean token NLL of the logit rows against `DifferentiableOptions.lossTargets`.
    public var loss: Variable?
    /// Each logit row's NLL (0 for skipped rows), with `loss`.
    public var rowLosses: [Float]?
    /// L+1 slots in output_hidden_states order, [N, D] each where captured.
    public var hidden: [Variable?]
    /// Sequence-classification scores [B, numLabels].
    public var scores: Variable?
}

extension TransformerModel {
    /// Runs the stack without gradients up to `layer` and returns the raw residual stream there.
    public func prefix(_ batch: TokenBatch, upTo layer: LayerRef, positions mode: PositionMode = .fromMask) throws -> PrefixState {
        try checkIds(batch.ids)
        let k = layer.blockIndex(layers: config.numLayers)
        guard k >= -1 && k < config.numLayers else { throw ModelError.invalidInput("layer \(layer) outside 0..<\(config.numLayers)") }
        let positions = batch.positions(mode)
        var x = embed(ids: batch.ids, positions: positions)
        if k >= 0 {
            let be = InferenceBackend(model: self, batch: batch.batch, queries: batch.length, positions: positions, cache: nil)
            be.cache.appendMask(batch.mask, t: batch.length)
            for i in 0...k { x = runBlock(be, spec: spec.blocks[i], layer: i, x: x) }
        }
        return PrefixState(batch: batch, positions: positions, layer: layer, hidden: x)
    }

    /// Rows up to which a frozen LM head with `lossTargets` reads its weight once for all
    /// rows (the one-pass kernel's 4 x 2 row tiles); more rows go through sgemm in chunks.
    static let onePassHeadRows = 64

    /// Runs the blocks after `state.layer` on `state.hidden + delta` (delta on `deltaPositions`,
    /// default all) with autodiff, then the final norm and the LM head at `logitRows`
    /// (flattened b*T + t). Returns logits [R, V]; backpropagate a loss to get delta.grad.
    /// Parameters should be frozen (the default) so only delta collects a gradient.
    public func forwardFrom(_ state: PrefixState, delta: Variable, deltaPositions: Range<Int>? = nil,
                            logitRows: [Int]) -> Variable {
        let start = Variable(state.hidden)
        let iv = DeltaIntervention(layer: state.layer, delta: delta, positions: deltaPositions)
        return forwardFrom(state, input: addDelta(start, iv, batch: state.batch.batch, length: state.batch.length),
                           logitRows: logitRows)
    }

    /// Runs the blocks after `state.layer` on `state.hidden + addend` (addend [N, D]: e.g.
    /// one delta per batch row, already masked and broadcast), then the final norm and the LM
    /// head at `logitRows`. Returns logits [R, V].
    public func forwardFrom(_ state: PrefixState, addend: Variable, logitRows: [Int]) -> Variable {
        forwardFrom(state, input: Ops.add(Variable(state.hidden), addend), logitRows: logitRows)
    }

    /// Runs the blocks after `state.layer` on `state.hidden + addend` like
    /// `forwardFrom(_:addend:logitRows:)`, then the mean token NLL of `targets` at
    /// `logitRows` (one target per row) and each row's NLL. With a frozen LM head the head
    /// and the loss are one pass over its weight and no logits are stored (PGD's loss).
    public func forwardFromNLL(_ state: PrefixState, addend: Variable, logitRows: [Int], targets: [Int])
        -> (loss: Variable, rowNLL: [Float]) {
        precondition(targets.count == logitRows.count, "forwardFromNLL: \(targets.count) targets for \(logitRows.count) rows")
        var options = DifferentiableOptions(logits: .rows(logitRows), checkpointing: false)
        options.lossTargets = targets
        let out = differentiableRun(x0: Ops.add(Variable(state.hidden), addend),
                                    firstBlock: state.layer.blockIndex(layers: config.numLayers) + 1,
                                    batch: state.batch, positions: state.positions, options: options)
        guard let loss = out.loss, let rows = out.rowLosses else { preconditionFailure("forwardFromNLL: no loss produced") }
        return (loss, rows)
    }

    func forwardFrom(_ state: PrefixState, input x: Variable, logitRows: [Int]) -> Variable {
        let out = differentiableRun(x0: x, firstBlock: state.layer.blockIndex(layers: config.numLayers) + 1,
                                    batch: state.batch, positions: state.positions,
                                    options: DifferentiableOptions(logits: .rows(logitRows), checkpointing: false))
        guard let logits = out.logits else { preconditionFailure("forwardFrom: logits requested but not produced") }
        return logits
    }

    /// Differentiable forward of the whole model (embedding included) with optional
    /// Variable interventions; gradients reach trainable parameters and deltas.
    public func forwardDifferentiable(_ batch: TokenBatch, options: DifferentiableOptions = DifferentiableOptions()) throws
        -> DifferentiableOutput {
        try checkIds(batch.ids)
        let positions = batch.positions(options.positions)
        var x = embedVariable(ids: batch.ids, positions: positions)
        for iv in options.interventions where iv.layer == .embedding {
            x = addDelta(x, iv, batch: batch.batch, length: batch.length)
        }
        var out = differentiableRun(x0: x, firstBlock: 0, batch: batch, positions: positions, options: options)
        if options.hidden.contains(0) { out.hidden[0] = x }
        return out
    }

    /// Embedding output as a Variable (gradient reaches the tables when trainable) [N, D].
    func embedVariable(ids: [Int], positions: [Int]) -> Variable {
        var x = Ops.embedding(weight: parameter(spec.embed + ".weight"), ids: ids)
        if let pe = spec.positionEmbed {
            let maxP = config.maxPositions
            x = Ops.add(x, Ops.embedding(weight: parameter(pe + ".weight"), ids: positions.map { min($0, maxP - 1) }))
        }
        if let s = spec.embedScale { x = Ops.scale(x, by: s) }
        return x
    }

    /// x [N, D] + delta on the chosen positions of every row.
    func addDelta(_ x: Variable, _ iv: DeltaIntervention, batch: Int, length: Int) -> Variable {
        let d = config.hiddenSize
        let range = iv.positions ?? 0..<length
        let mask = Tensor(shape: [batch, length, 1]) { p in
            for b in 0..<batch { for t in range where t < length { p[b * length + t] = 1 } }
        }
        let shaped: Variable
        if iv.delta.value.count == d {
            shaped = Ops.reshape(iv.delta, [1, 1, d])
        } else {
            precondition(iv.delta.value.count == length * d,
                         "per-position delta must be [T, D] = [\(length), \(d)], got \(iv.delta.shape)")
            shaped = Ops.reshape(iv.delta, [1, length, d])
        }
        let term = Ops.mul(Variable(mask), shaped)
        return Ops.reshape(Ops.add(Ops.reshape(x, [batch, length, d]), term), [batch * length, d])
    }

    /// Blocks `firstBlock..<L` on x0, then final norm and heads, all recorded on the tape.
    func differentiableRun(x0: Variable, firstBlock: Int, batch: TokenBatch, positions: [Int],
                           options: DifferentiableOptions) -> DifferentiableOutput {
        let layers = config.numLayers
        var out = DifferentiableOutput(logits: nil, loss: nil, rowLosses: nil,
                                       hidden: [Variable?](repeating: nil, count: layers + 1), scores: nil)
        let be = AutogradBackend(model: self, batch: batch.batch, length: batch.length, positions: positions,
                                 mask: batch.mask, training: options.training, seed: options.seed)
        var x = x0
        let keep = keptQueries(firstBlock: firstBlock, batch: batch, options: options)
        if firstBlock < layers {
            for i in firstBlock..<layers {
                be.reseed(options.seed &+ UInt64(i) &* 0x9E37)
                if i == layers - 1, let keep {
                    x = be.runBlock(spec: spec.blocks[i], layer: i, x: x, keepingQueriesFrom: keep)
                } else {
                    x = runBlock(be, spec: spec.blocks[i], layer: i, x: x)
                }
                for iv in options.interventions where iv.layer.blockIndex(layers: layers) == i {
                    x = addDelta(x, iv, batch: batch.batch, length: batch.length)
                }
                if i + 1 < layers && options.hidden.contains(i + 1) { out.hidden[i + 1] = x }
            }
        }
        heads(x, batch: batch, options: options, queriesFrom: keep ?? 0, into: &out)
        return out
    }

    /// The first position whose output the last block must produce when the LM head reads
    /// only some rows (PGD's target positions, the last token): nil when every row is needed
    /// (all logits, the final hidden state, a classification head, an intervention after
    /// the last block) or nothing is gained.
    func keptQueries(firstBlock: Int, batch: TokenBatch, options: DifferentiableOptions) -> Int? {
        let layers = config.numLayers, t = batch.length
        guard firstBlock < layers, config.head == .causalLM, !options.hidden.contains(layers),
              !options.interventions.contains(where: { $0.layer.blockIndex(layers: layers) == layers - 1 }) else { return nil }
        let from: Int
        switch options.logits {
        case .none, .all: return nil
        case .last: from = t - 1
        case .rows(let r):
            guard let first = r.map({ $0 % Swift.max(t, 1) }).min() else { return nil }
            from = first
        }
        return from > 0 ? from : nil
    }

    /// Final norm, LM head (selected rows) and classification head on the tape. When the
    /// last block kept only positions `queriesFrom..<T`, x holds those rows of each sequence
    /// and the logit rows are mapped onto them.
    func heads(_ x: Variable, batch: TokenBatch, options: DifferentiableOptions, queriesFrom: Int = 0,
               into out: inout DifferentiableOutput) {
        let layers = config.numLayers
        let normed: Variable
        let eps = Float(config.normEps)
        switch spec.norm {
        case .rms(let addOne):
            normed = Ops.rmsNorm(x, weight: parameter(spec.finalNorm + ".weight"), eps: eps, addOne: addOne)
        case .layer:
            normed = Ops.layerNorm(x, weight: parameter(spec.finalNorm + ".weight"),
                                   bias: parameter(spec.finalNorm + ".bias"), eps: eps)
        }
        if options.hidden.contains(layers) { out.hidden[layers] = normed }
        let b = batch.batch, t = batch.length, kept = t - queriesFrom
        switch config.head {
        case .sequenceClassification:
            let rows = Ops.gatherRows(normed, indices: lastTokenRows(ids: batch.ids, batch: b, length: t))
            out.scores = Ops.linear(rows, weight: parameter(spec.score + ".weight"))
        case .causalLM:
            let rows: Variable
            switch options.logits {
            case .none: return
            case .all: rows = normed
            case .last: rows = Ops.gatherRows(normed, indices: (0..<b).map { $0 * kept + kept - 1 })
            case .rows(let r): rows = Ops.gatherRows(normed, indices: r.map { ($0 / t) * kept + $0 % t - queriesFrom })
            }
            let head = spec.lmHead + ".weight"
            let cap = config.finalLogitSoftcap.map { Float($0) }
            if let targets = options.lossTargets {
                // The head and the loss without stored logits: a frozen head on a few rows
                // (PGD's targets) in one pass over its weight; otherwise (training) a chunk of
                // rows at a time, with the head weight's gradient when it is trainable.
                let weight = parameter(head)
                if !weight.requiresGrad && rows.shape[0] <= Self.onePassHeadRows {
                    (out.loss, out.rowLosses) = Ops.linearCrossEntropy(rows, weight: weight.value, softcap: cap, targets: targets)
                } else {
                    (out.loss, out.rowLosses) = Ops.linearCrossEntropy(rows, weight: weight, softcap: cap, targets: targets)
                }
                return
            }
            var logits = Ops.linear(rows, weight: parameter(head), packed: packedParameter(head, input: rows))
            if let cap { logits = Ops.softcap(logits, cap: cap) }
            out.logits = logits
        }
    }
}
