// DecoderBlock: the one residual block shared by every family, written once against a
// small backend protocol so the same code runs on plain tensors (inference, KV cache) and
// on autodiff Variables (gradients to interventions, training).
//
// Dimension legend: N = B*T rows, D hidden, H heads, Hkv key/value heads, Dh head width,
// F intermediate. Values are [N, D] row matrices.
//
//   Llama/Qwen2:  x += o(attn(norm1(x)));            x += down(act(gate(norm2(x))) * up(norm2(x)))
//   Gemma-2:      x += post1(o(attn(norm1(x))));     x += post2(down(gelu(gate(norm2 x)) * up(norm2 x)))
//   GPT-2:        x += c_proj(attn(ln_1(x)));        x += c_proj(gelu(c_fc(ln_2(x))))

/// The operations a decoder block needs; module names are checkpoint paths without suffix.
protocol BlockBackend: AnyObject {
    associatedtype Value
    /// x W^T + b (+ LoRA) for the linear module at `module`.
    func linear(_ x: Value, _ module: String) -> Value
    /// Several linears of the same input (q/k/v, gate/up); backends may fuse them.
    func projections(_ x: Value, _ modules: [String]) -> [Value]
    /// The family's normalisation with the weights at `module`.
    func norm(_ x: Value, _ module: String) -> Value
    func add(_ a: Value, _ b: Value) -> Value
    /// residual + linear(x, module); backends may accumulate the product onto the residual.
    func linearResidual(_ x: Value, _ module: String, residual: Value) -> Value
    /// act(gate) * up.
    func gated(gate: Value, up: Value) -> Value
    /// act(x).
    func activate(_ x: Value) -> Value
    /// RoPE (when the family uses it), masked attention of block `layer`; returns [N, H*Dh].
    func attention(q: Value, k: Value, v: Value, layer: Int, window: Int?) -> Value
    /// q/k/v projections of h and attention (backends may read q/k/v from one fused output).
    func selfAttention(_ h: Value, spec: BlockSpec, layer: Int) -> Value
    /// act(gate(h)) * up(h) (backends may read gate and up from one fused output).
    func gatedMLP(_ h: Value, gate: String, up: String) -> Value
}

extension BlockBackend {
    func linearResidual(_ x: Value, _ module: String, residual: Value) -> Value { add(residual, linear(x, module)) }

    func selfAttention(_ h: Value, spec: BlockSpec, layer: Int) -> Value {
        let qkv = projections(h, [spec.q, spec.k, spec.v])
        return attention(q: qkv[0], k: qkv[1], v: qkv[2], layer: layer, window: spec.window)
    }

    func gatedMLP(_ h: Value, gate: String, up: String) -> Value {
        let gu = projections(h, [gate, up])
        return gated(gate: gu[0], up: gu[1])
    }
}

/// Runs decoder block `layer` described by `spec` on the residual stream `x`.
func runBlock<Backend: BlockBackend>(_ be: Backend, spec: BlockSpec, layer: Int, x: Backend.Value) -> Backend.Value {
    finishBlock(be, spec: spec, residual: x, attention: be.selfAttention(be.norm(x, spec.attnNorm), spec: spec, layer: layer))
}

/// The rest of a block once its attention output is known: output projection (and Gemma-2's
/// post-norm) onto `residual`, then the MLP sub-block. `residual` and `attention` have the
/// same rows (all of them, or the suffix of queries a last block keeps).
func finishBlock<Backend: BlockBackend>(_ be: Backend, spec: BlockSpec, residual x: Backend.Value,
                                        attention attn: Backend.Value) -> Backend.Value {
    let x1: Backend.Value
    if let post = spec.attnPostNorm {
        x1 = be.add(x, be.norm(be.linear(attn, spec.o), post))
    } else {
        x1 = be.linearResidual(attn, spec.o, residual: x)
    }
    let h2 = be.norm(x1, spec.mlpNorm)
    let inner: Backend.Value
    if let gate = spec.gate {
        inner = be.gatedMLP(h2, gate: gate, up: spec.up)
    } else {
        inner = be.activate(be.linear(h2, spec.up))
    }
    if let post = spec.mlpPostNorm { return be.add(x1, be.norm(be.linear(inner, spec.down), post)) }
    return be.linearResidual(inner, spec.down, residual: x1)
}
