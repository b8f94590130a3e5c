// Forward: the one definition of a model's forward pass (embedding, decoder blocks with
// their interventions, final norm, heads), generic over the backend that executes it:
// plain tensors with a KV cache for inference (InferenceBackend), autodiff Variables for
// gradients to interventions and parameters (AutogradBackend). `forward`, `generate`,
// `prefix`, the differentiable forwards and the training loop are thin callers.
//
// Dimension legend: B batch, T positions of the call, N = B*T rows, D hidden, V vocabulary,
// R selected rows, L decoder blocks. Values are [N, D] row matrices.
import Numerics

/// The operations the forward pass needs beyond a block's (see `BlockBackend`).
protocol ForwardBackend: BlockBackend {
    /// Rows `ids` of the table at parameter path `name` [N, D].
    func lookup(_ name: String, _ ids: [Int]) -> Value
    /// x * s.
    func scale(_ x: Value, _ s: Float) -> Value
    /// cap * tanh(x / cap).
    func softcap(_ x: Value, _ cap: Float) -> Value
    /// Rows `rows` of x [N, W] -> [R, W].
    func gatherRows(_ x: Value, _ rows: [Int]) -> Value
    /// x with delta row `delta` added to x row `x` for each pair (`Intervention.rows`).
    func add(_ x: Value, delta: Variable, rows: [(x: Int, delta: Int)]) -> Value
    /// Called before block `layer` runs.
    func willRun(block layer: Int)
    /// A last block whose output is needed only at positions `from..<T` of every sequence;
    /// returns [B*(T - from), D].
    func runBlock(spec: BlockSpec, layer: Int, x: Value, keepingQueriesFrom from: Int) -> Value
}

extension ForwardBackend {
    func willRun(block layer: Int) {}
}

/// The rows, positions and cache offset of one forward call.
struct ForwardGeometry {
    let batch: Int, length: Int
    /// Token ids [B*T].
    let ids: [Int]
    /// Position ids [B*T].
    let positions: [Int]
    /// Cache positions before this call (0 without a cache).
    let offset: Int
    /// Positions of the prompt (the prefill call's length).
    let promptLength: Int
}

/// What the heads produced.
struct HeadOutputs<Value> {
    /// LM logits of the selected rows ([N, V], [B, V] or [R, V]).
    var logits: Value?
    /// The selected final-normed rows, when the caller computes the LM head itself (a fused loss).
    var lmRows: Value?
    /// Classification scores [B, numLabels].
    var scores: Value?
}

extension TransformerModel {
    /// Embedding output (token rows, learned positions, Gemma's scaling) [N, D] followed by
    /// the interventions at the embedding.
    func embedding<B: ForwardBackend>(_ be: B, _ g: ForwardGeometry, _ interventions: [Intervention]) -> B.Value {
        var x = be.lookup(spec.embed + ".weight", g.ids)
        if let pe = spec.positionEmbed {
            let maxP = config.maxPositions
            x = be.add(x, be.lookup(pe + ".weight", g.positions.map { min($0, maxP - 1) }))
        }
        if let s = spec.embedScale { x = be.scale(x, s) }
        return intervene(be, x, after: -1, interventions, g)
    }

    /// x plus the interventions registered after block `blockIndex` (-1 = the embedding).
    func intervene<B: ForwardBackend>(_ be: B, _ x: B.Value, after blockIndex: Int, _ interventions: [Intervention],
                                      _ g: ForwardGeometry) -> B.Value {
        var x = x
        for iv in interventions where iv.layer.blockIndex(layers: config.numLayers) == blockIndex {
            precondition(iv.delta.value.count % config.hiddenSize == 0,
                         "intervention delta \(iv.delta.shape) is not [D] or [P, D] with D = \(config.hiddenSize)")
            let rows = iv.rows(hidden: config.hiddenSize, batch: g.batch, length: g.length, offset: g.offset,
                               promptLength: g.promptLength)
            x = be.add(x, delta: iv.delta, rows: rows)
        }
        return x
    }

    /// Blocks `range` on x, each followed by its interventions; block i's output goes to
    /// `hidden[i + 1]` when `capture` asks for it. With `keepLastFrom`, the last block of
    /// the model keeps only the queries from that position on.
    func blocks<B: ForwardBackend>(_ be: B, _ x: B.Value, _ range: Range<Int>, _ interventions: [Intervention],
                                   _ g: ForwardGeometry, capture: HiddenCapture, keepLastFrom: Int? = nil,
                                   hidden: inout [B.Value?]) -> B.Value {
        let layers = config.numLayers
        var x = x
        for i in range {
            be.willRun(block: i)
            if i == layers - 1, let keep = keepLastFrom {
                x = be.runBlock(spec: spec.blocks[i], layer: i, x: x, keepingQueriesFrom: keep)
            } else {
                x = runBlock(be, spec: spec.blocks[i], layer: i, x: x)
            }
            x = intervene(be, x, after: i, interventions, g)
            if i + 1 < layers && capture.contains(i + 1) { hidden[i + 1] = x }
        }
        return x
    }

    /// Final norm (to `hidden[L]` when captured), then the classification head at each row's
    /// last token or the LM head (with Gemma's final soft-cap) on the rows `logits` selects.
    /// When the last block kept only positions `queriesFrom..<T`, x holds those rows of each
    /// sequence and the selected rows are mapped onto them. With `computeLogits` false the
    /// selected rows are returned instead of their logits.
    func heads<B: ForwardBackend>(_ be: B, _ x: B.Value, _ g: ForwardGeometry, logits mode: LogitsMode,
                                  queriesFrom: Int = 0, capture: HiddenCapture, computeLogits: Bool = true,
                                  hidden: inout [B.Value?]) -> HeadOutputs<B.Value> {
        let layers = config.numLayers
        let normed = be.norm(x, spec.finalNorm)
        if capture.contains(layers) { hidden[layers] = normed }
        var out = HeadOutputs<B.Value>()
        let b = g.batch, t = g.length, kept = t - queriesFrom
        switch config.head {
        case .sequenceClassification:
            out.scores = be.linear(be.gatherRows(normed, lastTokenRows(ids: g.ids, batch: b, length: t)), spec.score)
        case .causalLM:
            let rows: B.Value
            switch mode {
            case .none: return out
            case .all: rows = normed
            case .last: rows = be.gatherRows(normed, (0..<b).map { $0 * kept + kept - 1 })
            case .rows(let r): rows = be.gatherRows(normed, r.map { ($0 / t) * kept + $0 % t - queriesFrom })
            }
            guard computeLogits else {
                out.lmRows = rows
                return out
            }
            var logits = be.linear(rows, spec.lmHead)
            if let cap = config.finalLogitSoftcap { logits = be.softcap(logits, Float(cap)) }
            out.logits = logits
        }
        return out
    }

    /// Index of each row's last non-pad token (transformers' sequence-classification rule:
    /// the rightmost id different from pad_token_id; the last position without a pad id).
    func lastTokenRows(ids: [Int], batch: Int, length: Int) -> [Int] {
        (0..<batch).map { b in
            var last = length - 1
            if let pad = config.padTokenId {
                last = 0
                for t in 0..<length where ids[b * length + t] != pad { last = t }
            }
            return b * length + last
        }
    }

    /// The inference pass of `forward`, `prefix` and generation. With a `cache`, keys/values
    /// are appended to it and positions continue after its current length. Blocks after the
    /// last one a caller needs are skipped when no head is asked for.
    func run(ids: [Int], mask: [Float], positions: [Int], batch: Int, length: Int, cache: KVCache?,
             promptLength: Int, interventions: [Intervention], capture: HiddenCapture, logits: LogitsMode,
             throughBlock: Int? = nil) -> (result: ForwardResult, residual: Tensor) {
        let layers = config.numLayers, d = config.hiddenSize
        let needFinal = throughBlock == nil
            && (logits != .none || config.head == .sequenceClassification || capture.contains(layers))
        let lastBlock = throughBlock ?? (needFinal ? layers - 1 : min(layers - 1, capture.maxIndex(layers: layers) - 1))
        let be = InferenceBackend(model: self, batch: batch, queries: length, positions: positions, cache: cache)
        be.cache.appendMask(mask, t: length)
        let g = ForwardGeometry(batch: batch, length: length, ids: ids, positions: positions, offset: be.offset,
                                promptLength: promptLength)
        var hidden = [Tensor?](repeating: nil, count: layers + 1)
        var x = embedding(be, g, interventions)
        if capture.contains(0) { hidden[0] = x }
        x = blocks(be, x, 0..<(lastBlock + 1), interventions, g, capture: capture, hidden: &hidden)
        if let cache { cache.length += length }
        var result = ForwardResult(logits: nil, hidden: hidden, scores: nil)
        if needFinal {
            let h = heads(be, x, g, logits: logits, capture: capture, hidden: &result.hidden)
            result.scores = h.scores
            result.logits = logits == .all ? h.logits?.reshaped([batch, length, config.vocabSize]) : h.logits
        }
        result.hidden = result.hidden.map { $0?.reshaped([batch, length, d]) }
        return (result, x)
    }
}
