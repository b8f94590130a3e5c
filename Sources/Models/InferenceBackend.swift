// InferenceBackend: the tensor (no-autodiff) implementation of the decoder block
// operations, with RoPE tables and a KV cache for one forward call.
//
// Dimension legend: B batch, T positions of this call, N = B*T rows, D hidden, H heads,
// Hkv key/value heads, Dh head width, C cache capacity.
import Numerics

/// Executes block operations on plain tensors for one forward call.
final class InferenceBackend: BlockBackend {
    typealias Value = Tensor
    let model: TransformerModel
    let batch: Int, queries: Int
    /// Cache length before this call.
    let offset: Int
    let cache: KVCache
    /// True when `cache` is a throwaway single-layer buffer reused by every block.
    let scratch: Bool
    /// RoPE tables [N, Dh/2].
    let cos: Tensor?, sin: Tensor?

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
        if let rope = model.rope {
            let tables = rope.tables(positions: positions)
            cos = tables.cos
            sin = tables.sin
        } else {
            cos = nil
            sin = nil
        }
    }

    func linear(_ x: Tensor, _ module: String) -> Tensor {
        let name = module + ".weight"
        var y = model.decodingLinear(x, weight: model.tensor(name), bias: model.optionalTensor(module + ".bias"), key: name,
                                     frozen: model.isFrozen(name) && model.isFrozen(module + ".bias"))
        addLoRA(&y, x, module)
        return y
    }

    /// y += scale * (x A^T) B^T when `module` has a LoRA adapter.
    private func addLoRA(_ y: inout Tensor, _ x: Tensor, _ module: String) {
        if let lora = model.adapters[module] {
            ModelOps.addLowRank(&y, x, a: lora.a.value, b: lora.b.value, scale: lora.scale)
        }
    }

    /// x times the fused weight of `modules` (all their output columns side by side).
    private func fusedLinear(_ x: Tensor, _ fused: FusedProjection, _ modules: [String]) -> Tensor {
        model.decodingLinear(x, weight: fused.weight, bias: fused.bias, key: modules.joined(separator: "|"), frozen: true)
    }

    func projections(_ x: Tensor, _ modules: [String]) -> [Tensor] {
        guard let fused = model.fusedProjection(modules) else { return modules.map { linear(x, $0) } }
        var parts = ModelOps.splitColumns(fusedLinear(x, fused, modules), widths: fused.widths)
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
            return ModelOps.add(residual, linear(x, module))
        }
        let frozen = model.isFrozen(name) && model.isFrozen(module + ".bias")
        var y = ModelOps.linear(x, w, bias: model.optionalTensor(module + ".bias"), accumulateOnto: residual,
                                packed: frozen ? model.packedWeight(name, w, rows: n) : nil)
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
        return ModelOps.gatedActivation(fused: fusedLinear(h, fused, modules), width: fused.widths[0], model.spec.activation)
    }

    func norm(_ x: Tensor, _ module: String) -> Tensor {
        let eps = Float(model.config.normEps)
        switch model.spec.norm {
        case .rms(let addOne):
            return ModelOps.rmsNorm(x, weight: model.tensor(module + ".weight"), eps: eps, addOne: addOne)
        case .layer:
            return ModelOps.layerNorm(x, weight: model.tensor(module + ".weight"), bias: model.tensor(module + ".bias"),
                                      eps: eps)
        }
    }

    func add(_ a: Tensor, _ b: Tensor) -> Tensor { ModelOps.add(a, b) }

    func gated(gate: Tensor, up: Tensor) -> Tensor {
        ModelOps.gatedActivation(gate: gate, up: up, model.spec.activation)
    }

    func activate(_ x: Tensor) -> Tensor { ModelOps.activation(x, model.spec.activation) }

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
        let c = model.config, rows = batch * queries
        if let cos, let sin {
            ModelOps.applyRope(q, rows: rows, rowStride: qStride, heads: c.numHeads, headDim: c.headDim, cos: cos, sin: sin)
            ModelOps.applyRope(k, rows: rows, rowStride: kvStride, heads: c.numKVHeads, headDim: c.headDim, cos: cos, sin: sin)
        }
        let spec = AttentionSpec(batch: batch, queries: queries, heads: c.numHeads, kvHeads: c.numKVHeads,
                                 headDim: c.headDim, scale: model.spec.queryScale,
                                 softcap: c.attnLogitSoftcap.map { Float($0) }, window: window)
        return ModelOps.attention(q: q, qStride: qStride, k: k, v: v, kvStride: kvStride,
                                  cache: cache.layers[scratch ? 0 : layer], keyMask: cache.keyMask,
                                  capacity: cache.capacity, offset: offset, spec: spec)
    }
}
