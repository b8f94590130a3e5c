// `auditgap bench pgd`: seconds per PGD step (forward from the intervention layer, backward to
// delta) on the SmolLM2-135M architecture with random weights (docs/BENCHMARKS.md, "bench pgd").
import Foundation
import Models
import Numerics
import Study

enum PGDBench {
    /// SmolLM2-135M shape: hidden 576, 30 layers, 9 heads / 3 KV heads, intermediate 1536,
    /// vocab 49152, tied embeddings.
    static func smolLM2Options() -> TinyModelOptions {
        var o = TinyModelOptions()
        o.hidden = 576
        o.layers = 30
        o.heads = 9
        o.kvHeads = 3
        o.intermediate = 1536
        o.vocab = 49152
        o.tieEmbeddings = true
        o.seed = 1
        o.maxPositions = 2048
        return o
    }

    /// `bench pgd [--repeats N] [--batch B] [--json]`: seconds per step for one prompt, and
    /// per prompt when B prompts (default 4, the pgd stage's default batch_size) are attacked
    /// together.
    static func run(_ argv: [String]) throws -> Int32 {
        let args = try Arguments(argv, valued: ["--repeats", "--batch", "--layer"], knownFlags: ["--json"])
        let batch = try args.int("--batch") ?? 4
        guard batch >= 1 else { throw UsageError("--batch must be >= 1") }
        var layers = [("embedding", LayerRef.embedding), ("mid", .mid), ("last", .last)]
        if let only = args.value("--layer") {
            layers = layers.filter { $0.0 == only }
            guard !layers.isEmpty else { throw UsageError("--layer must be embedding, mid or last, got '\(only)'") }
        }
        return try run(json: args.flag("--json"), repeats: try args.int("--repeats") ?? 5, batch: batch, layers: layers)
    }

    static func run(json: Bool, repeats: Int, batch: Int, layers: [(String, LayerRef)], promptTokens: Int = 64,
                    targetTokens: Int = 4) throws -> Int32 {
        Threading.configure()
        var o = smolLM2Options()
        o.initStd = 0.02
        var c = try TinyModelFactory.config(o)
        c.ropeTheta = 100_000
        let model = try TransformerModel(config: c, weights: TinyModelFactory.weights(c, std: 0.02, seed: 1))
        var rng = SplitMix64(seed: 5)
        let prompts = (0..<batch).map { _ in (0..<promptTokens).map { _ in 3 + rng.nextInt(below: c.vocabSize - 3) } }
        let target = (0..<targetTokens).map { _ in 3 + rng.nextInt(below: c.vocabSize - 3) }
        var rows: [[String: Any]] = []
        if !json {
            print("pgd step (forward from layer + backward to delta), SmolLM2-135M shape, random weights, \(promptTokens) prompt + \(targetTokens) target tokens, threads \(Threading.blasThreads), median of \(repeats); kernels: \(PackedMatrix.kernelName), OpenBLAS \(BLASCore.name)")
            print("layer       block   s/step (1 prompt)   s/step per prompt (batch \(batch))   prefix s (once per example)")
        }
        for (name, layer) in layers {
            let attack = try PGDAttack(model: model, options: PGDOptions(layer: layer, epsilon: 0.001))
            var single: PGDAttack.Sequence?
            let tPrefix = medianSeconds(repeats: 3) {
                single = try? PGDAttack.Sequence(model: model, layer: layer, prompt: prompts[0], continuation: target)
            }
            let batched = try PGDAttack.Sequence(model: model, layer: layer, prompts: prompts,
                                                 continuations: Array(repeating: target, count: batch))
            guard let single else { throw StudyError.invalidConfiguration("bench: prefix failed") }
            var failure: Error?
            func stepTime(_ seq: PGDAttack.Sequence, _ n: Int) -> Double {
                var deltas = Array(repeating: Tensor(zeros: [c.hiddenSize]), count: n)
                return medianSeconds(repeats: repeats) {
                    do {
                        let g = try attack.gradients(seq, deltas)
                        for b in 0..<n {
                            deltas[b] = Tensor(shape: deltas[b].shape) { q in g[b].withUnsafeBufferPointer { gp in
                                for i in 0..<q.count { q[i] = gp[i] > 0 ? -2.5e-4 : 2.5e-4 }
                            } }
                        }
                    } catch { failure = error }
                }
            }
            let t = stepTime(single, 1)
            let tb = stepTime(batched, batch) / Double(batch)
            if let failure { throw failure }
            let block = layer.blockIndex(layers: c.numLayers)
            rows.append(["layer": name, "block": block, "seconds_per_step": t, "batch": batch,
                         "batch_seconds_per_step_per_prompt": tb, "prefix_seconds": tPrefix])
            if !json {
                print(name.padding(toLength: 11, withPad: " ", startingAt: 0)
                      + String(format: " %5d %19.4f %36.4f %28.4f", block, t, tb, tPrefix))
            }
        }
        if json {
            let obj: [String: Any] = ["benchmark": "pgd", "threads": Threading.blasThreads, "prompt_tokens": promptTokens,
                                      "target_tokens": targetTokens, "batch": batch, "rows": rows,
                                      "kernel": PackedMatrix.kernelName, "openblas_core": BLASCore.name]
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
        return 0
    }
}
