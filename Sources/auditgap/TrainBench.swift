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
        var keptBlocks = 0
        /// Recomputed blocks that reuse their recorded linear outputs (all by default).
        var replayedBlocks = Int.max
        /// The LM head and loss as SFT runs them (chunks of rows, no stored logits), or
        /// composed (logits, then cross-entropy) with `--composed-head`.
        var fusedHead = true
        var json = false
    }

    /// Parses `bench train|lora [--steps N] [--batch B] [--length T] [--checkpointing | --no-checkpointing]
    /// [--keep-blocks K] [--replay-blocks R] [--composed-head] [--json]`. Full fine-tuning
    /// checkpoints by default (the 3 GB goal); LoRA does not (its frozen base keeps no weight
    /// gradients or optimiser state, and PEFT's eager baseline does not checkpoint either).
    static func run(_ argv: [String], lora: Bool) throws -> Int32 {
        let args = try Arguments(argv, valued: ["--steps", "--batch", "--length", "--repeats", "--keep-blocks", "--replay-blocks"],
                                 knownFlags: ["--json", "--no-checkpointing", "--checkpointing", "--composed-head"])
        var o = Options(lora: lora)
        o.steps = try args.int("--steps") ?? args.int("--repeats") ?? 3
        o.batch = try args.int("--batch") ?? 2
        o.length = try args.int("--length") ?? 256
        o.checkpointing = args.flag("--checkpointing") || (!lora && !args.flag("--no-checkpointing"))
        // By default no block is kept and every block is replayed: each stores its seven
        // linear outputs (about 10.6 MB at 512 rows) and its backward recomputes only norms,
        // RoPE, attention and the activation, no matrix product. Same 2.84 GB peak as keeping
        // 12 blocks and recomputing 18, and 1.03-1.28x faster in four interleaved pairs.
        // Keeping 6 and replaying 24 took 2.93 GB; 12 and 18, 3.03 GB.
        o.keptBlocks = try args.int("--keep-blocks") ?? 0
        o.replayedBlocks = try args.int("--replay-blocks") ?? Int.max
        o.fusedHead = !args.flag("--composed-head")
        o.json = args.flag("--json")
        return try measure(o)
    }

    /// User + system CPU seconds of this process so far (all threads).
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        func s(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return s(usage.ru_utime) + s(usage.ru_stime)
    }

    /// Peak resident set size of this process in bytes (getrusage ru_maxrss, KiB on Linux).
    static func peakRSSBytes() -> Int {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Int(usage.ru_maxrss) * 1024
    }

    static func measure(_ o: Options) throws -> Int32 {
        Threading.configure()
        let c = ModelBench.smolLM2Config()
        let replayed = min(o.replayedBlocks, max(0, c.numLayers - o.keptBlocks))
        let model = try ModelBench.randomModel(config: c, seed: 1)
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
        var options = DifferentiableOptions(training: true, seed: 4)
        let checkpointing = CheckpointPolicy(enabled: o.checkpointing, kept: o.keptBlocks, replayed: o.replayedBlocks)
        if o.fusedHead { options.lossTargets = targets }
        var losses: [Float] = []
        var cpu: [Double] = []
        func step() throws -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            let cpuStart = cpuSeconds()
            defer { cpu.append(cpuSeconds() - cpuStart) }
            let loss = try model.trainingBackward(batch, options: options, checkpointing: checkpointing) { out in
                if let loss = out.loss { return loss }
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
        let measuredCPU = Array(cpu.dropFirst())
        let medianCPU = measuredCPU.sorted()[measuredCPU.count / 2]
        let tokens = Double(o.batch * o.length)
        let rss = peakRSSBytes()
        let name = o.lora ? "lora" : "train"
        if o.json {
            let obj: [String: Any] = [
                "benchmark": name, "threads": Threading.blasThreads, "batch": o.batch, "length": o.length,
                "checkpointing": o.checkpointing, "kept_blocks": o.keptBlocks, "replayed_blocks": replayed, "fused_head": o.fusedHead, "trainable_parameters": trainable, "warmup_seconds": warm,
                "step_seconds": times, "median_step_seconds": median, "tokens_per_second": tokens / median,
                "peak_rss_bytes": rss, "losses": losses.map(Double.init), "cpu_seconds": measuredCPU,
                "median_cpu_seconds": medianCPU, "tokens_per_cpu_second": tokens / medianCPU,
            ]
            if let data = try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]),
               let s = String(data: data, encoding: .utf8) { print(s) }
        } else {
            print("bench \(name): SmolLM2-135M architecture (random weights), batch \(o.batch) x \(o.length), "
                  + "threads \(Threading.blasThreads), checkpointing \(o.checkpointing) (last \(o.checkpointing ? o.keptBlocks : 0) blocks kept, \(o.checkpointing ? replayed : 0) replayed), head \(o.fusedHead ? "fused" : "composed"), trainable \(trainable)")
            print(String(format: "warm-up step %.2f s; steps %@", warm, times.map { String(format: "%.2f", $0) }.joined(separator: " ")))
            print(String(format: "median step %.3f s -> %.1f tokens/s; CPU %.1f s/step -> %.1f tokens per CPU-second; peak RSS %.2f GB; losses %@",
                         median, tokens / median, medianCPU, tokens / medianCPU, Double(rss) / 1e9, losses.map { String(format: "%.4f", $0) }.joined(separator: " ")))
        }
        return 0
    }
}
