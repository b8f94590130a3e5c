// `auditgap bench forward|generate` on the SmolLM2-135M architecture (hidden 576,
// 30 layers, 9 heads / 3 KV heads, intermediate 1536, vocab 49152, tied): random weights
// unless `--model PATH` names a real checkpoint. `bench train|lora` lives in TrainBench.swift.
// Compare with scripts/bench_torch_models.py (same workloads, PyTorch eager + transformers).
import Foundation
import Models
import Numerics

/// Model benchmarks.
enum ModelBench {
    /// SmolLM2-135M hyper-parameters.
    static func smolLM2Config() -> ModelConfig {
        var c = ModelConfig(architecture: .llama, vocabSize: 49152, hiddenSize: 576, intermediateSize: 1536,
                            numLayers: 30, numHeads: 9, numKVHeads: 3, headDim: 64)
        c.ropeTheta = 100_000
        c.normEps = 1e-5
        c.tieWordEmbeddings = true
        c.maxPositions = 8192
        return c
    }

    /// A SmolLM2-shaped model with seeded uniform random weights (std about 0.02), rounded to
    /// bfloat16 values like the bf16 checkpoint SmolLM2-135M-Instruct is published as (loaded
    /// as float32; decoding then reads the lossless bf16 copies, DerivedWeights.swift).
    static func randomModel(config c: ModelConfig, seed: UInt64 = 0) throws -> TransformerModel {
        var rng = SplitMix64(seed: seed)
        func rand(_ shape: [Int], ones: Bool = false) -> Tensor {
            Tensor(shape: shape) { p in
                if ones { for i in 0..<p.count { p[i] = 1 } } else {
                    for i in 0..<p.count {
                        let v = (rng.nextFloat() - 0.5) * 0.07
                        p[i] = Float(bitPattern: (v.bitPattern &+ 0x8000) & 0xFFFF_0000)  // nearest bf16
                    }
                }
            }
        }
        var w: [String: Tensor] = ["model.embed_tokens.weight": rand([c.vocabSize, c.hiddenSize]),
                                   "model.norm.weight": rand([c.hiddenSize], ones: true)]
        let q = c.numHeads * c.headDim, kv = c.numKVHeads * c.headDim
        for i in 0..<c.numLayers {
            let p = "model.layers.\(i)."
            w[p + "input_layernorm.weight"] = rand([c.hiddenSize], ones: true)
            w[p + "post_attention_layernorm.weight"] = rand([c.hiddenSize], ones: true)
            w[p + "self_attn.q_proj.weight"] = rand([q, c.hiddenSize])
            w[p + "self_attn.k_proj.weight"] = rand([kv, c.hiddenSize])
            w[p + "self_attn.v_proj.weight"] = rand([kv, c.hiddenSize])
            w[p + "self_attn.o_proj.weight"] = rand([c.hiddenSize, q])
            w[p + "mlp.gate_proj.weight"] = rand([c.intermediateSize, c.hiddenSize])
            w[p + "mlp.up_proj.weight"] = rand([c.intermediateSize, c.hiddenSize])
            w[p + "mlp.down_proj.weight"] = rand([c.hiddenSize, c.intermediateSize])
        }
        return try TransformerModel(config: c, weights: w)
    }

    static func model(_ args: Arguments) throws -> (TransformerModel, String) {
        if let path = args.value("--model") { return (try TransformerModel.load(path: path), path) }
        return (try randomModel(config: smolLM2Config()), "random SmolLM2-135M-shaped")
    }

    static func randomIds(batch: Int, length: Int, vocab: Int, seed: UInt64) -> [[Int]] {
        var rng = SplitMix64(seed: seed)
        return (0..<batch).map { _ in (0..<length).map { _ in 10 + rng.nextInt(below: vocab - 10) } }
    }

    static func emit(_ json: Bool, _ obj: [String: Any], _ text: String) throws {
        if json {
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(text)
        }
    }

    /// Hidden-state forward (every layer kept, LM head skipped), batch 8 x 128 by default.
    static func forward(_ argv: [String]) throws -> Int32 {
        let args = try Arguments(argv, valued: ["--model", "--repeats", "--batch", "--length"], knownFlags: ["--json"])
        Threading.configure()
        let (m, name) = try model(args)
        let b = try args.int("--batch") ?? 8, t = try args.int("--length") ?? 128, repeats = try args.int("--repeats") ?? 5
        let batch = TokenBatch(ids: randomIds(batch: b, length: t, vocab: m.config.vocabSize, seed: 1))
        let opts = ForwardOptions(hidden: .all, logits: .none)
        let secs = medianSeconds(repeats: repeats) { _ = try? m.forward(batch, options: opts) }
        let tps = Double(b * t) / secs
        try emit(args.flag("--json"), ["bench": "forward", "model": name, "batch": b, "length": t,
                                       "median_seconds": secs, "tokens_per_second": tps, "threads": Threading.blasThreads],
                 "forward (hidden states, no LM head) \(name), batch \(b) x \(t): median \(String(format: "%.3f", secs)) s, \(String(format: "%.0f", tps)) tokens/s (threads \(Threading.blasThreads), OpenBLAS \(BLASCore.name))")
        return 0
    }

    /// Greedy generation of 64 new tokens at batch 1 (and batched throughput at `--batch`, default 8).
    static func generate(_ argv: [String]) throws -> Int32 {
        let args = try Arguments(argv, valued: ["--model", "--repeats", "--batch", "--new-tokens", "--prompt-length"],
                                 knownFlags: ["--json"])
        Threading.configure()
        let (m, name) = try model(args)
        let newTokens = try args.int("--new-tokens") ?? 64, promptLen = try args.int("--prompt-length") ?? 16
        let repeats = try args.int("--repeats") ?? 3, bigBatch = try args.int("--batch") ?? 8
        var obj: [String: Any] = ["bench": "generate", "model": name, "new_tokens": newTokens, "prompt_length": promptLen,
                                  "threads": Threading.blasThreads]
        var lines: [String] = []
        for b in [1, bigBatch] {
            let prompts = randomIds(batch: b, length: promptLen, vocab: m.config.vocabSize, seed: 2)
            let opts = GenerationOptions(maxNewTokens: newTokens, eosTokenIds: [])
            let secs = medianSeconds(repeats: repeats) { _ = try? m.generate(prompts: prompts, options: opts) }
            let tps = Double(b * newTokens) / secs
            obj["batch\(b)_median_seconds"] = secs
            obj["batch\(b)_tokens_per_second"] = tps
            lines.append("generate (greedy, KV cache) \(name), batch \(b), \(newTokens) new tokens after \(promptLen): median \(String(format: "%.3f", secs)) s, \(String(format: "%.1f", tps)) new tokens/s")
        }
        try emit(args.flag("--json"), obj, lines.joined(separator: "\n"))
        return 0
    }

}
