// AutogradBackend: the Variable (reverse-mode autodiff) implementation of the decoder block
// operations, used for gradients to interventions and for training (full or LoRA).
// No KV cache: every call sees the whole sequence.
//
// Dimension legend: B batch, T positions, N = B*T rows, D hidden, H heads, Hkv key/value
// heads, Dh head width; attention runs on [B, H, T, Dh].
import Numerics
import Synchronization

/// Executes block operations on Variables for one differentiable forward.
final class AutogradBackend: ForwardBackend {
    typealias Value = Variable
    let model: TransformerModel
    let batch: Int, length: Int
    let positions: [Int]
    /// Key validity [B*T].
    let keyMask: [Bool]
    let table: RopeTable?
    /// Whether LoRA dropout is active.
    let training: Bool
    var rng: SplitMix64

    /// Base of the per-block dropout seeds.
    let seed: UInt64

    init(model: TransformerModel, batch: Int, length: Int, positions: [Int], mask: [Float], training: Bool, seed: UInt64) {
        self.model = model
        self.batch = batch
        self.length = length
        self.positions = positions
        keyMask = mask.map { $0 != 0 }
        self.training = training
        self.seed = seed
        rng = SplitMix64(seed: seed)
        table = model.rope?.table(positions: (positions.max() ?? 0) + 1)
    }

    /// Where the outputs of linear layers without LoRA terms are recorded, or replayed from
    /// (checkpointed training, `CheckpointPolicy.blocks`); nil: neither.
    var products: ProductTape?

    /// Reseeds the dropout stream with block `layer`'s seed, so a checkpointed recomputation
    /// replays the block's masks.
    func willRun(block layer: Int) { rng = SplitMix64(seed: seed &+ UInt64(layer) &* 0x9E37) }

    func linear(_ x: Variable, _ module: String) -> Variable {
        let name = module + ".weight", weight = model.parameter(name)
        let bias = model.parameters[module + ".bias"], packed = model.packedParameter(name, input: x)
        let terms = adapters([module], widths: [weight.shape[0]])
        guard terms.isEmpty else { return Ops.linear(x, weight: weight, bias: bias, packed: packed, adapters: terms, rng: &rng) }
        return tapedLinear(x, weight: weight, bias: bias, packed: packed)
    }

    /// x W^T + b of a layer without LoRA terms, recorded on `products` or replayed from it.
    private func tapedLinear(_ x: Variable, weight: Variable, bias: Variable?, packed: PackedMatrix?) -> Variable {
        let y = Ops.linear(x, weight: weight, bias: bias, packed: packed, recorded: products?.replayed())
        products?.record(y)
        return y
    }

    /// The LoRA terms of `modules`, whose outputs sit side by side with `widths` columns
    /// (dropout only in training; masks are drawn from the backend's stream in module order,
    /// as `Ops.dropout` would draw them).
    func adapters(_ modules: [String], widths: [Int]) -> [LowRankAdapter] {
        var offset = 0, out: [LowRankAdapter] = []
        for (module, width) in zip(modules, widths) {
            if let lora = model.adapters[module] {
                out.append(LowRankAdapter(columns: offset..<(offset + width), a: lora.a, b: lora.b, scale: lora.scale,
                                          dropout: training ? lora.dropout : 0))
            }
            offset += width
        }
        return out
    }

    /// Frozen q/k/v or gate/up base weights (PGD, probes, LoRA training, frozen evaluation)
    /// run as one GEMM on the concatenated weight, forward and backward, with each module's
    /// LoRA term added to its columns in the same op; trainable base weights run one by one.
    func projections(_ x: Variable, _ modules: [String]) -> [Variable] {
        guard let (y, widths) = fusedProjection(x, modules) else { return modules.map { linear(x, $0) } }
        return Ops.split(y, axis: -1, sizes: widths)
    }

    /// The modules' outputs side by side from one GEMM on the concatenated frozen weight
    /// (with their LoRA terms), and each module's width; nil when the weights are not fused.
    private func fusedProjection(_ x: Variable, _ modules: [String]) -> (Variable, [Int])? {
        guard let fused = model.fusedProjection(modules) else { return nil }
        let weight = Variable(fused.weight), bias = fused.bias.map { Variable($0) }
        let packed = model.packedWeight(modules.joined(separator: "|"), fused.weight, input: x)
        let terms = adapters(modules, widths: fused.widths)
        let y = terms.isEmpty ? tapedLinear(x, weight: weight, bias: bias, packed: packed)
            : Ops.linear(x, weight: weight, bias: bias, packed: packed, adapters: terms, rng: &rng)
        return (y, fused.widths)
    }

    /// The fused gate/up output feeds the gated activation directly: no split copies forward,
    /// and one gradient for the fused output backward instead of two zero-padded halves.
    /// The fused GEMM runs once either way (a second run would record or replay the block's
    /// products twice and draw the LoRA dropout masks twice).
    func gatedMLP(_ h: Variable, gate: String, up: String) -> Variable {
        guard let (y, widths) = fusedProjection(h, [gate, up]) else { return gated(gate: linear(h, gate), up: linear(h, up)) }
        if widths[0] == widths[1] { return Ops.gated(fused: y, width: widths[0], model.spec.activation) }
        let gu = Ops.split(y, axis: -1, sizes: widths)
        return gated(gate: gu[0], up: gu[1])
    }

    func norm(_ x: Variable, _ module: String) -> Variable {
        let eps = Float(model.config.normEps)
        switch model.spec.norm {
        case .rms(let addOne):
            return Ops.rmsNorm(x, weight: model.parameter(module + ".weight"), eps: eps, addOne: addOne)
        case .layer:
            return Ops.layerNorm(x, weight: model.parameter(module + ".weight"),
                                 bias: model.parameter(module + ".bias"), eps: eps)
        }
    }

    func add(_ a: Variable, _ b: Variable) -> Variable { Ops.add(a, b) }

    func gated(gate: Variable, up: Variable) -> Variable { Ops.gated(gate, up, model.spec.activation) }

    func activate(_ x: Variable) -> Variable { Ops.activate(x, model.spec.activation) }

    func lookup(_ name: String, _ ids: [Int]) -> Variable { Ops.embedding(weight: model.parameter(name), ids: ids) }

    func scale(_ x: Variable, _ s: Float) -> Variable { Ops.scale(x, by: s) }

    func softcap(_ x: Variable, _ cap: Float) -> Variable { Ops.softcap(x, cap: cap) }

    func gatherRows(_ x: Variable, _ rows: [Int]) -> Variable { Ops.gatherRows(x, indices: rows) }

    /// x + mask * delta rows: a shared delta broadcast over the perturbed rows, or per-position
    /// rows gathered from it; the gradient reaches delta through the same ops.
    func add(_ x: Variable, delta: Variable, rows: [(x: Int, delta: Int)]) -> Variable {
        let d = model.config.hiddenSize, n = batch * length
        var sources = [Int](repeating: 0, count: n)
        let mask = Tensor(shape: [n, 1]) { p in
            for (r, k) in rows {
                p[r] = 1
                sources[r] = k
            }
        }
        let shared = delta.value.count == d
        let rowsOfDelta = shared ? Ops.reshape(delta, [1, d]) : Ops.gatherRows(Ops.reshape(delta, [delta.value.count / d, d]),
                                                                                  indices: sources)
        return Ops.add(x, Ops.mul(Variable(mask), rowsOfDelta))
    }

    /// [B*Tq, heads*Dh] -> [B, heads, Tq, Dh] (Tq = T, or the kept queries of a last block).
    func heads(_ x: Variable, _ count: Int, queries: Int? = nil) -> Variable {
        Ops.permute(Ops.reshape(x, [batch, queries ?? length, count, model.config.headDim]), [0, 2, 1, 3])
    }

    func attention(q: Variable, k: Variable, v: Variable, layer: Int, window: Int?) -> Variable {
        attention(q: q, k: k, v: v, layer: layer, window: window, queryFrom: 0)
    }

    /// Attention of the queries at positions `queryFrom..<T` of every sequence (q holds
    /// only those rows, [B*(T - queryFrom), H*Dh]) to all T keys.
    func attention(q: Variable, k: Variable, v: Variable, layer: Int, window: Int?, queryFrom: Int) -> Variable {
        let c = model.config, tq = length - queryFrom
        var qh = heads(q, c.numHeads, queries: tq), kh = heads(k, c.numKVHeads)
        let vh = heads(v, c.numKVHeads)
        if let table {
            let qPositions = queryFrom == 0 ? positions
                : (0..<batch).flatMap { b in positions[(b * length + queryFrom)..<((b + 1) * length)] }
            qh = Ops.rope(qh, table: table, positions: qPositions)
            kh = Ops.rope(kh, table: table, positions: positions)
        }
        let o = Ops.attention(q: qh, k: kh, v: vh, scale: model.spec.queryScale,
                              softcap: c.attnLogitSoftcap.map { Float($0) }, causal: true, slidingWindow: window,
                              keyMask: keyMask, queryOffset: queryFrom)
        return Ops.reshape(Ops.permute(o, [0, 2, 1, 3]), [batch * tq, c.numHeads * c.headDim])
    }

    /// Rows `from..<T` of every sequence of x [B*T, W] -> [B*(T - from), W].
    func suffixRows(_ x: Variable, from: Int) -> Variable {
        from == 0 ? x : Ops.gatherRows(x, indices: (0..<batch).flatMap { b in (b * length + from)..<((b + 1) * length) })
    }

    /// A block whose output is only needed at positions `from..<T` (the last block when the
    /// LM head reads a few rows): keys and values come from every position, but queries,
    /// the output projection and the MLP run on the kept rows only. Returns [B*(T - from), D].
    func runBlock(spec: BlockSpec, layer: Int, x: Variable, keepingQueriesFrom from: Int) -> Variable {
        let h = norm(x, spec.attnNorm)
        let qkv = projections(h, [spec.q, spec.k, spec.v])
        let attn = attention(q: suffixRows(qkv[0], from: from), k: qkv[1], v: qkv[2], layer: layer,
                             window: spec.window, queryFrom: from)
        return finishBlock(self, spec: spec, residual: suffixRows(x, from: from), attention: attn)
    }
}

/// The outputs of one block's linear layers (those without LoRA terms), in call order:
/// recorded while the block runs without a tape in the forward pass of checkpointed
/// training, then handed back in the same order when the block is replayed on the tape, so
/// the replay computes no matrix product of those layers. The replay is the same code on
/// the same inputs (same dropout seed), so it asks for the outputs in the recorded order.
final class ProductTape {
    /// Outputs handed back by every tape of the process (lets tests see that replay happens).
    static let replayedCount = Atomic<Int>(0)
    private var outputs: [Tensor] = []
    private var cursor = 0
    private var replaying = false

    /// Switches from recording to handing the outputs back from the first.
    func startReplay() {
        replaying = true
        cursor = 0
    }

    /// The next recorded output when replaying, else nil.
    func replayed() -> Tensor? {
        guard replaying else { return nil }
        precondition(cursor < outputs.count, "block replay asked for linear output \(cursor + 1) of \(outputs.count) recorded")
        defer { cursor += 1 }
        ProductTape.replayedCount.add(1, ordering: .relaxed)
        return outputs[cursor]
    }

    /// Records `y`'s value when recording.
    func record(_ y: Variable) {
        if !replaying { outputs.append(y.value) }
    }
}
