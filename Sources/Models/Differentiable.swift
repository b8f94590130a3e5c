// Differentiable forward passes: gradients to residual-stream perturbations (PGD) and to
// parameters (training). All run the one forward definition (Forward.swift) on the
// autodiff backend; the block-wise recomputation of training is in Training.swift.
//
// Dimension legend: B batch, T positions, N = B*T rows, D hidden, V vocabulary, R selected
// rows, L blocks. Hidden Variables are [N, D]; logits [N, V] or [R, V].
import Foundation
import Numerics

/// Residual stream at an intervention point, computed once without gradients.
public struct PrefixState {
    public let batch: TokenBatch
    public let positions: [Int]
    public let layer: LayerRef
    /// Raw residual stream at `layer` (embedding output or block output, before any final norm) [N, D].
    public let hidden: Tensor
}

/// What a differentiable forward computes.
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
    public var interventions: [Intervention] = []
    /// LoRA dropout active.
    public var training: Bool = false
    public var seed: UInt64 = 0

    public init(positions: PositionMode = .fromMask, hidden: HiddenCapture = .none, logits: LogitsMode = .all,
                lossTargets: [Int]? = nil, interventions: [Intervention] = [], training: Bool = false, seed: UInt64 = 0) {
        self.positions = positions
        self.hidden = hidden
        self.logits = logits
        self.lossTargets = lossTargets
        self.interventions = interventions
        self.training = training
        self.seed = seed
    }
}

/// How `trainingBackward` keeps what the backward pass needs.
public enum CheckpointPolicy: Sendable, Equatable {
    /// Record the whole graph on the tape.
    case none
    /// Keep only block inputs and recompute each block in the backward pass. The last
    /// `kept` blocks record their activations instead (memory traded for speed). Of the
    /// recomputed blocks, the last `replayed` store the outputs of their linear layers
    /// (those without LoRA terms) in the forward pass, and their recomputation reuses them
    /// instead of computing the products again: about Out/D row-widths per layer (9 for
    /// SmolLM2: q, k, v, o, gate, up, down) against the 1 of a recomputed block's input and
    /// the whole tape of a kept one. Results are identical to recomputation.
    case blocks(kept: Int, replayed: Int)

    /// Recompute every block.
    public static let recompute = CheckpointPolicy.blocks(kept: 0, replayed: 0)

    /// `.blocks(kept:replayed:)` when `enabled`, else `.none` (a trainer's settings).
    public init(enabled: Bool, kept: Int = 0, replayed: Int = 0) {
        self = enabled ? .blocks(kept: kept, replayed: replayed) : .none
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
        let x = run(ids: batch.ids, mask: batch.mask, positions: positions, batch: batch.batch, length: batch.length,
                    cache: nil, promptLength: batch.length, interventions: [], capture: .none, logits: .none,
                    throughBlock: k).residual
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
        let iv = Intervention(layer: state.layer, delta: delta, positions: deltaPositions)
        return logitsFrom(state, options: DifferentiableOptions(logits: .rows(logitRows), interventions: [iv]))
    }

    /// Runs the blocks after `state.layer` on `state.hidden + addend` (addend [N, D]: e.g.
    /// one delta per batch row, already masked and broadcast), then the final norm and the LM
    /// head at `logitRows`. Returns logits [R, V].
    public func forwardFrom(_ state: PrefixState, addend: Variable, logitRows: [Int]) -> Variable {
        logitsFrom(state, addend: addend, options: DifferentiableOptions(logits: .rows(logitRows)))
    }

    /// Runs the blocks after `state.layer` on `state.hidden + addend` like
    /// `forwardFrom(_:addend:logitRows:)`, then the mean token NLL of `targets` at
    /// `logitRows` (one target per row) and each row's NLL. With a frozen LM head the head
    /// and the loss are one pass over its weight and no logits are stored (PGD's loss).
    public func forwardFromNLL(_ state: PrefixState, addend: Variable, logitRows: [Int], targets: [Int])
        -> (loss: Variable, rowNLL: [Float]) {
        precondition(targets.count == logitRows.count, "forwardFromNLL: \(targets.count) targets for \(logitRows.count) rows")
        let out = differentiableRun(from: state, addend: addend,
                                    options: DifferentiableOptions(logits: .rows(logitRows), lossTargets: targets))
        guard let loss = out.loss, let rows = out.rowLosses else { preconditionFailure("forwardFromNLL: no loss produced") }
        return (loss, rows)
    }

    /// The logits of a forward from `state` (plus `addend` when given).
    private func logitsFrom(_ state: PrefixState, addend: Variable? = nil, options: DifferentiableOptions) -> Variable {
        guard let logits = differentiableRun(from: state, addend: addend, options: options).logits else {
            preconditionFailure("forwardFrom: logits requested but not produced")
        }
        return logits
    }

    /// The blocks after `state.layer` on `state.hidden` (+ `addend`), with the interventions
    /// at `state.layer` applied first and the later ones after their blocks.
    private func differentiableRun(from state: PrefixState, addend: Variable?, options: DifferentiableOptions)
        -> DifferentiableOutput {
        let k = state.layer.blockIndex(layers: config.numLayers)
        let be = autogradBackend(state.batch, positions: state.positions, options: options)
        let g = geometry(state.batch, positions: state.positions)
        var x = Variable(state.hidden)
        if let addend { x = Ops.add(x, addend) }
        return differentiableRun(be, g, x: intervene(be, x, after: k, options.interventions, g), firstBlock: k + 1,
                                 options: options)
    }

    /// Differentiable forward of the whole model (embedding included) with optional
    /// Variable interventions; gradients reach trainable parameters and deltas.
    public func forwardDifferentiable(_ batch: TokenBatch, options: DifferentiableOptions = DifferentiableOptions()) throws
        -> DifferentiableOutput {
        try checkIds(batch.ids)
        let positions = batch.positions(options.positions)
        let be = autogradBackend(batch, positions: positions, options: options)
        let g = geometry(batch, positions: positions)
        let x = embedding(be, g, options.interventions)
        var out = differentiableRun(be, g, x: x, firstBlock: 0, options: options)
        if options.hidden.contains(0) { out.hidden[0] = x }
        return out
    }

    /// The autodiff backend of one call.
    func autogradBackend(_ batch: TokenBatch, positions: [Int], options: DifferentiableOptions) -> AutogradBackend {
        AutogradBackend(model: self, batch: batch.batch, length: batch.length, positions: positions, mask: batch.mask,
                        training: options.training, seed: options.seed)
    }

    /// The geometry of a call without a cache.
    func geometry(_ batch: TokenBatch, positions: [Int]) -> ForwardGeometry {
        ForwardGeometry(batch: batch.batch, length: batch.length, ids: batch.ids, positions: positions, offset: 0,
                        promptLength: batch.length)
    }

    /// Blocks `firstBlock..<L` on x, then final norm and heads, all recorded on the tape.
    func differentiableRun(_ be: AutogradBackend, _ g: ForwardGeometry, x: Variable, firstBlock: Int,
                           options: DifferentiableOptions) -> DifferentiableOutput {
        let layers = config.numLayers
        var out = DifferentiableOutput(logits: nil, loss: nil, rowLosses: nil,
                                       hidden: [Variable?](repeating: nil, count: layers + 1), scores: nil)
        let keep = keptQueries(firstBlock: firstBlock, length: g.length, options: options)
        let y = blocks(be, x, firstBlock..<layers, options.interventions, g, capture: options.hidden, keepLastFrom: keep,
                       hidden: &out.hidden)
        differentiableHeads(be, y, g, options: options, queriesFrom: keep ?? 0, into: &out)
        return out
    }

    /// The first position whose output the last block must produce when the LM head reads
    /// only some rows (PGD's target positions, the last token): nil when every row is needed
    /// (all logits, the final hidden state, a classification head, an intervention after
    /// the last block) or nothing is gained.
    func keptQueries(firstBlock: Int, length t: Int, options: DifferentiableOptions) -> Int? {
        let layers = config.numLayers
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

    /// The heads on the tape; with `lossTargets`, the LM head and the loss without stored
    /// logits: a frozen head on a few rows (PGD's targets) in one pass over its weight,
    /// otherwise (training) a chunk of rows at a time, with the head weight's gradient when
    /// it is trainable.
    func differentiableHeads(_ be: AutogradBackend, _ x: Variable, _ g: ForwardGeometry, options: DifferentiableOptions,
                             queriesFrom: Int = 0, into out: inout DifferentiableOutput) {
        let targets = options.lossTargets
        let h = heads(be, x, g, logits: options.logits, queriesFrom: queriesFrom, capture: options.hidden,
                      computeLogits: targets == nil, hidden: &out.hidden)
        out.scores = h.scores
        out.logits = h.logits
        guard let targets, let rows = h.lmRows else { return }
        let weight = parameter(spec.lmHead + ".weight")
        let cap = config.finalLogitSoftcap.map { Float($0) }
        if !weight.requiresGrad && rows.shape[0] <= Self.onePassHeadRows {
            (out.loss, out.rowLosses) = Ops.linearCrossEntropy(rows, weight: weight.value, softcap: cap, targets: targets)
        } else {
            (out.loss, out.rowLosses) = Ops.linearCrossEntropy(rows, weight: weight, softcap: cap, targets: targets)
        }
    }
}
