// InferenceBackend: the tensor (no-autodiff) implementation of the decoder block
// operations, with RoPE tables and a KV cache for one forward call.
//
// Dimension legend: B batch, T positions of this call, N = B*T rows, D hidden, H heads,
// Hkv key/value heads, Dh head width, C cache capacity.
import Numerics

/// Executes block operations on plain tensors for one forward call.
final class InferenceBackend: ForwardBackend {
    typealias Value = Tensor
    let model: TransformerModel
    let batch: Int, queries: Int
    /// Cache length before this call.
    let offset: Int
    let cache: KVCache
    /// True when `cache` is a throwaway single-layer buffer reused by every block.
    let scratch: Bool
    /// Position ids of the call's rows [N].
    let positions: [Int]
    /// The model's RoPE table, covering every position of the call (nil without RoPE).
    let rope: RopeTable?

    init(model: TransformerModel, batch: Int, queries: Int, positions: [Int], cache: KVCache?) {
        self.model = model
        self.batch = batch
        self.queries = queries
        if let cache {
            self.cache = cache
            scratch = false
        } else {
            self.cache = KVCache(config: model.config, batch: batch, capacity: queries, layers: 1)
            scratch = true
        }
        offset = self.cache.length
        self.positions = positions
        rope = model.rope?.table(positions: (positions.max() ?? 0) + 1)
    }

    func linear(_ x: Tensor, _ module: String) -> Tensor {
        let name = module + ".weight"
        var y = model.inferenceLinear(x, weight: model.tensor(name), bias: model.optionalTensor(module + ".bias"), key: name,
                                     frozen: model.isFrozen(name) && model.isFrozen(module + ".bias"))
        addLoRA(&y, x, module)
        return y
    }

    /// y += scale * (x A^T) B^T when `module` has a LoRA adapter.
    private func addLoRA(_ y: inout Tensor, _ x: Tensor, _ module: String) {
        if let lora = model.adapters[module] {
            Kernels.addLowRank(&y, x, a: lora.a.value, b: lora.b.value, scale: lora.scale)
        }
    }

    /// x times the fused weight of `modules` (all their output columns side by side).
    private func fusedLinear(_ x: Tensor, _ fused: FusedProjection, _ modules: [String]) -> Tensor {
        model.inferenceLinear(x, weight: fused.weight, bias: fused.bias, key: modules.joined(separator: "|"), frozen: true)
    }

    func projections(_ x: Tensor, _ modules: [String]) -> [Tensor] {
        guard let fused = model.fusedProjection(modules) else { return modules.map { linear(x, $0) } }
        var parts = Kernels.splitColumns(fusedLinear(x, fused, modules), widths: fused.widths)
        for (i, m) in modules.enumerated() { addLoRA(&parts[i], x, m) }
        return parts
    }

    /// residual + x W^T (+ b) (+ LoRA): the product is accumulated onto a copy of the
    /// residual by sgemm (beta 1) instead of a separate output and add pass. Decoding steps
    /// (few rows) take the compact-weight path and add.
    func linearResidual(_ x: Tensor, _ module: String, residual: Tensor) -> Tensor {
        let name = module + ".weight"
        let w = model.tensor(name)
        let inDim = x.shape[x.rank - 1], n = x.count / inDim, outDim = w.shape[0]
        guard n > TransformerModel.compactMaxRows, residual.count == n * outDim, w.shape[1] == inDim else {
            return Kernels.add(residual, linear(x, module))
        }
        let frozen = model.isFrozen(name) && model.isFrozen(module + ".bias")
        var y = model.inferenceLinear(x, weight: w, bias: model.optionalTensor(module + ".bias"), key: name, frozen: frozen,
                                      accumulateOnto: residual)
        addLoRA(&y, x, module)
        return y
    }

    /// The fused q/k/v output is used in place: RoPE rotates its q and k columns and
    /// attention reads the three column slices with the fused row stride (no split copies).
    func selfAttention(_ h: Tensor, spec: BlockSpec, layer: Int) -> Tensor {
        let modules = [spec.q, spec.k, spec.v], c = model.config
        let qw = c.numHeads * c.headDim, kw = c.numKVHeads * c.headDim
        guard modules.allSatisfy({ model.adapters[$0] == nil }), let fused = model.fusedProjection(modules),
              fused.widths == [qw, kw, kw] else {
            let qkv = projections(h, modules)
            return attention(q: qkv[0], k: qkv[1], v: qkv[2], layer: layer, window: spec.window)
        }
        var y = fusedLinear(h, fused, modules)
        let total = qw + 2 * kw
        return y.withUnsafeMutableBufferPointer { p in
            attend(q: p.baseAddress!, qStride: total, k: p.baseAddress! + qw, v: p.baseAddress! + qw + kw, kvStride: total,
                   layer: layer, window: spec.window)
        }
    }

    /// The fused gate/up output feeds the gated activation directly (no split copies).
    func gatedMLP(_ h: Tensor, gate: String, up: String) -> Tensor {
        let modules = [gate, up]
        guard modules.allSatisfy({ model.adapters[$0] == nil }), let fused = model.fusedProjection(modules),
              fused.widths[0] == fused.widths[1] else {
            let gu = projections(h, modules)
            return gated(gate: gu[0], up: gu[1])
        }
        return Kernels.gated(fused: fusedLinear(h, fused, modules), width: fused.widths[0], model.spec.activation)
    }

    func norm(_ x: Tensor, _ module: String) -> Tensor {
        let eps = Float(model.config.normEps)
        switch model.spec.norm {
        case .rms(let addOne):
            return Kernels.rmsNormForward(x, weight: model.tensor(module + ".weight"), eps: eps, addOne: addOne)
        case .layer:
            return Kernels.layerNormForward(x, weight: model.tensor(module + ".weight"), bias: model.tensor(module + ".bias"),
                                            eps: eps)
        }
    }

    func add(_ a: Tensor, _ b: Tensor) -> Tensor { Kernels.add(a, b) }

    func gated(gate: Tensor, up: Tensor) -> Tensor { Kernels.gated(gate, up, model.spec.activation) }

    func activate(_ x: Tensor) -> Tensor { Kernels.activate(x, model.spec.activation) }

    func lookup(_ name: String, _ ids: [Int]) -> Tensor { Kernels.gatherRows(model.tensor(name), indices: ids) }

    func scale(_ x: Tensor, _ s: Float) -> Tensor { Kernels.scale(x, by: s) }

    func softcap(_ x: Tensor, _ cap: Float) -> Tensor { Kernels.softcap(x, cap: cap) }

    func gatherRows(_ x: Tensor, _ rows: [Int]) -> Tensor { Kernels.gatherRows(x, indices: rows) }

    /// Adds the delta rows in place (x is this call's own tensor; no copy when unshared).
    func add(_ x: Tensor, delta: Variable, rows: [(x: Int, delta: Int)]) -> Tensor {
        var x = x
        let d = model.config.hiddenSize, pd = delta.value
        pd.withUnsafeBufferPointer { src in
            x.withUnsafeMutableBufferPointer { dst in
                for (r, k) in rows {
                    let a = src.baseAddress! + k * d, o = dst.baseAddress! + r * d
                    for i in 0..<d { o[i] += a[i] }
                }
            }
        }
        return x
    }

    /// The whole block, then the kept rows (the inference pass keeps every query).
    func runBlock(spec: BlockSpec, layer: Int, x: Tensor, keepingQueriesFrom from: Int) -> Tensor {
        let y = Models.runBlock(self, spec: spec, layer: layer, x: x)
        return from == 0 ? y : gatherRows(y, (0..<batch).flatMap { b in (b * queries + from)..<((b + 1) * queries) })
    }

    func attention(q: Tensor, k: Tensor, v: Tensor, layer: Int, window: Int?) -> Tensor {
        let c = model.config
        var q = q, k = k
        return q.withUnsafeMutableBufferPointer { pq in
            k.withUnsafeMutableBufferPointer { pk in
                v.withUnsafeBufferPointer { pv in
                    attend(q: pq.baseAddress!, qStride: c.numHeads * c.headDim, k: pk.baseAddress!, v: pv.baseAddress!,
                           kvStride: c.numKVHeads * c.headDim, layer: layer, window: window)
                }
            }
        }
    }

    /// RoPE in place on the query and key rows (when the family uses it), then masked
    /// attention of block `layer` over the KV cache; rows are `qStride` / `kvStride` apart.
    private func attend(q: UnsafeMutablePointer<Float>, qStride: Int, k: UnsafeMutablePointer<Float>,
                        v: UnsafePointer<Float>, kvStride: Int, layer: Int, window: Int?) -> Tensor {
        let c = model.config
        if let rope {
            Kernels.ropeInPlace(q, rowStride: qStride, heads: c.numHeads, table: rope, positions: positions)
            Kernels.ropeInPlace(k, rowStride: kvStride, heads: c.numKVHeads, table: rope, positions: positions)
        }
        let spec = CachedAttentionSpec(batch: batch, queries: queries, heads: c.numHeads, kvHeads: c.numKVHeads,
                                 headDim: c.headDim, scale: model.spec.queryScale,
                                 softcap: c.attnLogitSoftcap.map { Float($0) }, window: window)
        return Kernels.cachedAttention(q: q, qStride: qStride, k: k, v: v, kvStride: kvStride,
                                  cache: cache.layers[scratch ? 0 : layer], keyMask: cache.keyMask,
                                  capacity: cache.capacity, offset: offset, spec: spec)
    }
}
