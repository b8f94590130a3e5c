// `auditgap bench train|lora`: tokens/s of one optimiser step (forward, backward, AdamW) on
// the SmolLM2-135M architecture with random weights, and the process's peak RSS.
// scripts/bench_torch_train.py measures the same step in PyTorch (+ PEFT) for comparison.
//
// Dimension legend: B batch rows, T tokens per row; SmolLM2-135M: D 576, F 1536, L 30,
// H 9, Hkv 3, V 49152 (tied embeddings).
import Foundation
import Models
import Numerics

/// The training-step benchmark.
enum TrainBench {
    /// Options of one run.
    struct Options {
        var lora: Bool
        var batch = 2
        var length = 256
        var steps = 3
        var checkpointing = true
        var json = false
    }

    /// Parses `bench train|lora [--steps N] [--batch B] [--length T] [--no-checkpointing] [--json]`.
    static func run(_ argv: [String], lora: Bool) throws -> Int32 {
        let args = try Arguments(argv, valued: ["--steps", "--batch", "--length", "--repeats"],
                                 knownFlags: ["--json", "--no-checkpointing"])
        var o = Options(lora: lora)
        o.steps = try args.int("--steps") ?? args.int("--repeats") ?? 3
        o.batch = try args.int("--batch") ?? 2
        o.length = try args.int("--length") ?? 256
        o.checkpointing = !args.flag("--no-checkpointing")
        o.json = args.flag("--json")
        return try measure(o)
    }

    /// SmolLM2-135M's configuration.
    static func smolLM2Config() -> ModelConfig {
        var c = ModelConfig(architecture: .llama, vocabSize: 49152, hiddenSize: 576, intermediateSize: 1536,
                            numLayers: 30, numHeads: 9, numKVHeads: 3)
        c.tieWordEmbeddings = true
        c.ropeTheta = 100_000
        c.maxPositions = 8192
        c.normEps = 1e-5
        return c
    }

    /// Random weights (normal, std 0.02; norms 1) in Hugging Face names, tied head.
    static func randomWeights(_ c: ModelConfig, seed: UInt64) -> [String: Tensor] {
        var rng = SplitMix64(seed: seed)
        func normal(_ shape: [Int]) -> Tensor {
            Tensor(shape: shape) { p in for i in 0..<p.count { p[i] = 0.02 * rng.nextGaussian() } }
        }
        let d = c.hiddenSize, f = c.intermediateSize, q = c.numHeads * c.headDim, kv = c.numKVHeads * c.headDim
        var w: [String: Tensor] = ["model.embed_tokens.weight": normal([c.vocabSize, d]),
                                   "model.norm.weight": Tensor(shape: [d], repeating: 1)]
        for i in 0..<c.numLayers {
            let p = "model.layers.\(i)."
            w[p + "input_layernorm.weight"] = Tensor(shape: [d], repeating: 1)
            w[p + "post_attention_layernorm.weight"] = Tensor(shape: [d], repeating: 1)
            w[p + "self_attn.q_proj.weight"] = normal([q, d])
            w[p + "self_attn.k_proj.weight"] = normal([kv, d])
            w[p + "self_attn.v_proj.weight"] = normal([kv, d])
            w[p + "self_attn.o_proj.weight"] = normal([d, q])
            w[p + "mlp.gate_proj.weight"] = normal([f, d])
            w[p + "mlp.up_proj.weight"] = normal([f, d])
            w[p + "mlp.down_proj.weight"] = normal([d, f])
        }
        return w
    }

    /// Peak resident set size of this process in bytes (getrusage ru_maxrss, KiB on Linux).
    static func peakRSSBytes() -> Int {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Int(usage.ru_maxrss) * 1024
    }

    static func measure(_ o: Options) throws -> Int32 {
        Threading.configure()
        let c = smolLM2Config()
        let model = try TransformerModel(config: c, weights: randomWeights(c, seed: 1))
        if o.lora {
            try model.addLoRA(LoRAConfig(seed: 2))
        } else {
            model.setTrainable()
        }
        let params = model.trainableParameters.map(\.variable)
        let trainable = params.reduce(0) { $0 + $1.value.count }
        let optimizer = AdamW(parameters: params, learningRate: o.lora ? 1e-4 : 2e-5, weightDecay: 0)
        var rng = SplitMix64(seed: 3)
        let rows = (0..<o.batch).map { _ in (0..<o.length).map { _ in rng.nextInt(below: c.vocabSize) } }
        let batch = TokenBatch(ids: rows)
        let targets = TransformerModel.nextTokenTargets(batch)
        let options = DifferentiableOptions(training: true, seed: 4, checkpointing: o.checkpointing)
        var losses: [Float] = []
        func step() throws -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            let loss = try model.trainingBackward(batch, options: options) { out in
                guard let logits = out.logits else { preconditionFailure("bench: no logits") }
                return Ops.crossEntropy(logits: logits, targets: targets)
            }
            optimizer.step()
            optimizer.zeroGrad()
            losses.append(loss)
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        let warm = try step()
        var times: [Double] = []
        for _ in 0..<max(1, o.steps) { times.append(try step()) }
        let median = times.sorted()[times.count / 2]
        let tokens = Double(o.batch * o.length)
        let rss = peakRSSBytes()
        let name = o.lora ? "lora" : "train"
        if o.json {
            let obj: [String: Any] = [
                "benchmark": name, "threads": Threading.blasThreads, "batch": o.batch, "length": o.length,
                "checkpointing": o.checkpointing, "trainable_parameters": trainable, "warmup_seconds": warm,
                "step_seconds": times, "median_step_seconds": median, "tokens_per_second": tokens / median,
                "peak_rss_bytes": rss, "losses": losses.map(Double.init),
            ]
            if let data = try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]),
               let s = String(data: data, encoding: .utf8) { print(s) }
        } else {
            print("bench \(name): SmolLM2-135M architecture (random weights), batch \(o.batch) x \(o.length), "
                  + "threads \(Threading.blasThreads), checkpointing \(o.checkpointing), trainable \(trainable)")
            print(String(format: "warm-up step %.2f s; steps %@", warm, times.map { String(format: "%.2f", $0) }.joined(separator: " ")))
            print(String(format: "median step %.3f s -> %.1f tokens/s; peak RSS %.2f GB; losses %@", median,
                         tokens / median, Double(rss) / 1e9, losses.map { String(format: "%.4f", $0) }.joined(separator: " ")))
        }
        return 0
    }
}
