// GPT-2: learned absolute positions, LayerNorm, fused qkv `c_attn`, GELU (tanh, "gelu_new")
// MLP, tied embeddings. HF stores GPT-2 projections as Conv1D with weight [in, out]; at load
// they are transposed to the [out, in] layout of every other family and `c_attn` is split
// into q/k/v modules (`transformer.h.i.attn.q_proj`, ...). `hfWeights` undoes both.
//
// Dimension legend: D hidden (n_embd), H heads, Dh = D/H, F = 4D (n_inner), P positions.
// Internal weights: q/k/v/c_proj [D, D], c_fc [F, D], mlp.c_proj [D, F].
import Numerics

/// GPT-2 family layout and checkpoint conversion.
public enum GPT2 {
    /// The GPT-2 layout for `config`.
    public static func spec(_ config: ModelConfig) -> ArchitectureSpec {
        let blocks = (0..<config.numLayers).map { i -> BlockSpec in
            let p = "transformer.h.\(i)"
            return BlockSpec(attnNorm: "\(p).ln_1", attnPostNorm: nil, mlpNorm: "\(p).ln_2", mlpPostNorm: nil,
                             q: "\(p).attn.q_proj", k: "\(p).attn.k_proj", v: "\(p).attn.v_proj", o: "\(p).attn.c_proj",
                             gate: nil, up: "\(p).mlp.c_fc", down: "\(p).mlp.c_proj", window: nil)
        }
        return ArchitectureSpec(embed: "transformer.wte", positionEmbed: "transformer.wpe", embedScale: nil,
                                finalNorm: "transformer.ln_f", lmHead: "transformer.wte", score: "score",
                                norm: .layer, usesRope: false,
                                activation: Activation(transformersName: config.hiddenAct) ?? .geluTanh,
                                queryScale: 1 / Float(config.headDim).squareRoot(), blocks: blocks)
    }

    /// Converts HF GPT-2 tensors (Conv1D [in, out], fused c_attn) to the internal layout.
    static func internalWeights(_ hf: [String: Tensor], config: ModelConfig) -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        let d = config.hiddenSize
        for (rawName, t) in hf {
            var name = rawName
            if !name.hasPrefix("transformer.") && !name.hasPrefix("score.") && !name.hasPrefix("lm_head.") {
                name = "transformer." + name
            }
            if name.hasSuffix(".attn.bias") || name.hasSuffix(".attn.masked_bias") { continue }  // causal-mask buffers
            if name.hasSuffix("attn.c_attn.weight") {
                let base = String(name.dropLast("c_attn.weight".count))
                let w = transpose2D(t)  // [3D, D]
                for (i, part) in ["q_proj", "k_proj", "v_proj"].enumerated() {
                    out[base + part + ".weight"] = w.rows((i * d)..<((i + 1) * d)).copy()
                }
            } else if name.hasSuffix("attn.c_attn.bias") {
                let base = String(name.dropLast("c_attn.bias".count))
                let b = t.reshaped([3, d])
                for (i, part) in ["q_proj", "k_proj", "v_proj"].enumerated() {
                    out[base + part + ".bias"] = b.rows(i..<(i + 1)).reshaped([d]).copy()
                }
            } else if name.hasSuffix(".weight") && t.rank == 2 && (name.contains(".attn.c_proj") || name.contains(".mlp.c_")) {
                out[name] = transpose2D(t)
            } else {
                out[name] = t
            }
        }
        return out
    }

    /// Converts internal tensors back to HF GPT-2 names and Conv1D layout.
    static func hfWeights(_ weights: [String: Tensor], config: ModelConfig) -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (name, t) in weights {
            if name.contains(".attn.q_proj") || name.contains(".attn.k_proj") || name.contains(".attn.v_proj") { continue }
            if name.hasSuffix(".weight") && t.rank == 2 && (name.contains(".attn.c_proj") || name.contains(".mlp.c_")) {
                out[name] = transpose2D(t)
            } else {
                out[name] = t
            }
        }
        for i in 0..<config.numLayers {
            let base = "transformer.h.\(i).attn."
            guard let q = weights[base + "q_proj.weight"], let k = weights[base + "k_proj.weight"],
                  let v = weights[base + "v_proj.weight"] else { continue }
            out[base + "c_attn.weight"] = transpose2D(Tensor(shape: [3 * q.shape[0], q.shape[1]],
                                                             data: q.scalars + k.scalars + v.scalars))
            if let qb = weights[base + "q_proj.bias"], let kb = weights[base + "k_proj.bias"],
               let vb = weights[base + "v_proj.bias"] {
                out[base + "c_attn.bias"] = Tensor(shape: [3 * qb.count], data: qb.scalars + kb.scalars + vb.scalars)
            }
        }
        return out
    }

    /// A transposed copy of a matrix.
    static func transpose2D(_ t: Tensor) -> Tensor {
        let r = t.shape[0], c = t.shape[1]
        return Tensor(shape: [c, r]) { out in
            t.withUnsafeBufferPointer { p in
                for i in 0..<r { for j in 0..<c { out[j * r + i] = p[i * c + j] } }
            }
        }
    }
}
