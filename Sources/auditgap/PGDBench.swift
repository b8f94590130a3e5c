// `auditgap bench pgd`: seconds per PGD step (forward from the intervention layer, backward to
// delta) on the SmolLM2-135M architecture with random weights (docs/BENCHMARKS.md, "## PGD").
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

    static func run(json: Bool, repeats: Int, promptTokens: Int = 64, targetTokens: Int = 4) throws -> Int32 {
        Threading.configure()
        var o = smolLM2Options()
        o.initStd = 0.02
        var c = try TinyModelFactory.config(o)
        c.ropeTheta = 100_000
        let model = try TransformerModel(config: c, weights: TinyModelFactory.weights(c, std: 0.02, seed: 1))
        var rng = SplitMix64(seed: 5)
        let prompt = (0..<promptTokens).map { _ in 3 + rng.nextInt(below: c.vocabSize - 3) }
        let target = (0..<targetTokens).map { _ in 3 + rng.nextInt(below: c.vocabSize - 3) }
        var rows: [[String: Any]] = []
        if !json {
            print("pgd step (forward from layer + backward to delta), SmolLM2-135M shape, random weights, \(promptTokens) prompt + \(targetTokens) target tokens, threads \(Threading.blasThreads), median of \(repeats)")
            print("layer       block   s/step   prefix s (once per example)")
        }
        for (name, layer) in [("embedding", LayerRef.embedding), ("mid", .mid), ("last", .last)] {
            let attack = try PGDAttack(model: model, options: PGDOptions(layer: layer, epsilon: 0.001))
            var seq: PGDAttack.Sequence?
            let tPrefix = medianSeconds(repeats: 3) {
                seq = try? PGDAttack.Sequence(model: model, layer: layer, prompt: prompt, continuation: target)
            }
            guard let seq else { throw StudyError.invalidConfiguration("bench: prefix failed") }
            var delta = Tensor(zeros: [c.hiddenSize])
            var failure: Error?
            let t = medianSeconds(repeats: repeats) {
                do {
                    let g = try attack.gradient(seq, delta)
                    delta = Tensor(shape: delta.shape) { q in g.withUnsafeBufferPointer { gp in
                        for i in 0..<q.count { q[i] = gp[i] > 0 ? -2.5e-4 : 2.5e-4 }
                    } }
                } catch { failure = error }
            }
            if let failure { throw failure }
            let block = layer.blockIndex(layers: c.numLayers)
            rows.append(["layer": name, "block": block, "seconds_per_step": t, "prefix_seconds": tPrefix])
            if !json { print(name.padding(toLength: 11, withPad: " ", startingAt: 0) + String(format: " %5d %8.4f %8.4f", block, t, tPrefix)) }
        }
        if json {
            let obj: [String: Any] = ["benchmark": "pgd", "threads": Threading.blasThreads, "prompt_tokens": promptTokens,
                                      "target_tokens": targetTokens, "rows": rows]
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
        return 0
    }
}
