// features, probe and probe-eval kinds; LinearProbe as a differentiable module; audit-probe scorer.
import Foundation
import XCTest
import Models
import Numerics
@testable import Study

final class StagesProbeTests: XCTestCase {
    /// Triples whose unsafe response carries a planted word ("zq"); otherwise the same random words.
    static func plantedTriples(_ n: Int) -> String {
        let words = ["apple", "river", "stone", "cloud", "paper", "green", "music", "table", "light", "sugar", "metal", "ocean"]
        var rng = SplitMix64(seed: 42)
        var out = ""
        for i in 0..<n {
            let filler = (0..<5).map { _ in words[rng.nextInt(below: words.count)] }.joined(separator: " ")
            let prompt = "Question \(i): tell me about the \(words[rng.nextInt(below: words.count)])"
            out += "{\"id\": \"t\(i)\", \"prompt\": \"\(prompt)\", \"safe\": \"\(filler) fine\", \"unsafe\": \"\(filler) zq zq zq\"}\n"
        }
        return out
    }

    func testProbeLearnsPlantedSignalThroughPipeline() throws {
        let box = StageSandbox()
        try box.write("triples.jsonl", Self.plantedTriples(60))
        try box.write("responses.jsonl", """
        {"id": "r1", "prompt": "Question 1: tell me", "response": "apple river zq zq zq"}
        {"id": "r2", "prompt": "Question 1: tell me", "response": "apple river fine"}
        """)
        try box.run("""
        stages:
          tiny: {kind: synthetic-model, params: {hidden: 32, layers: 2, seed: 5}}
          feats:
            kind: features
            inputs: {data: file:triples.jsonl, model: tiny}
            params: {batch_size: 16}
          audit:
            kind: probe
            inputs: {features: feats}
            params: {seed: 3}
          heldout:
            kind: probe-eval
            inputs: {probe: audit, features: feats}
            params: {split: heldout}
          scored:
            kind: judge
            inputs: {responses: file:responses.jsonl, probe: audit, model: tiny}
            params: {judges: [{name: probe, kind: probe}]}
        """)
        let info = try box.json("feats", "info.json")
        XCTAssertEqual(info["rows"] as? Int, 120)
        XCTAssertEqual(info["layers"] as? Int, 2)
        XCTAssertEqual(info["hidden"] as? Int, 32)
        let rows = try box.rows("feats", "rows.jsonl")
        XCTAssertEqual(rows[0]["id"] as? String, "t0:safe")
        XCTAssertEqual(rows[1]["label"] as? Int, 1)
        let probe = try box.json("audit", "probe.json")
        let auroc = try XCTUnwrap(probe["heldout_auroc"] as? Double)
        XCTAssertGreaterThan(auroc, 0.95, "the probe should separate the planted word")
        XCTAssertEqual((probe["heldout_ids"] as? [Any])?.count, 24)
        let epochs = try box.rows("audit", "epochs.jsonl")
        XCTAssertEqual(epochs.count, 30)
        let chosen = try XCTUnwrap(probe["chosen_epoch"] as? Int)
        XCTAssertEqual(epochs.map { $0["heldoutAUROC"] as? Double ?? 0 }.max(), epochs[chosen - 1]["heldoutAUROC"] as? Double)
        XCTAssertLessThan(epochs.last!["trainLoss"] as! Double, epochs.first!["trainLoss"] as! Double)
        // probe-eval on the held-out ids reproduces the probe's own selection metric.
        let eval = try box.json("heldout", "eval.json")
        XCTAssertEqual(eval["count"] as? Int, 24)
        XCTAssertEqual(try XCTUnwrap(eval["auroc"] as? Double), auroc, accuracy: 1e-9)
        XCTAssertEqual((eval["safe"] as? Int ?? 0) + (eval["unsafe"] as? Int ?? 0), 24)
        XCTAssertGreaterThan(eval["calibratedGap"] as? Double ?? -1, 0)
        // Audit-probe scorer: S = -logit, lower for the planted response.
        let scored = try box.rows("scored", "judgements.jsonl").map { ($0["scores"] as! [String: Double])["probe"]! }
        XCTAssertLessThan(scored[0], scored[1])
        let loaded = try LinearProbe.load(from: try box.output("audit"))
        let m = try StageSupport.loadModel(path: try box.output("tiny"))
        let f = try FeatureExtractor(model: m).features([JudgeItem(prompt: "Question 1: tell me", response: "apple river zq zq zq")])
        XCTAssertEqual(scored[0], -Double(loaded.logits(f)[0]), accuracy: 1e-5)
    }

    func testFeaturesAreMaskedMeansOfHiddenStates() throws {
        let m = try StageSupport.loadModel(path: try SharedTinyModel.url())
        var o = FeatureOptions()
        o.batchSize = 3
        let extractor = FeatureExtractor(model: m, options: o)
        let items = [JudgeItem(prompt: "short", response: "a"), JudgeItem(prompt: "a somewhat longer prompt", response: "and a longer response too"),
                     JudgeItem(prompt: "mid size", response: "ok then")]
        let f = try extractor.features(items)
        let (layers, d) = extractor.shape
        XCTAssertEqual(f.shape, [3, layers, d])
        for (n, item) in items.enumerated() {
            let ids = try extractor.ids(prompt: item.prompt, response: item.response)
            let r = try m.model.forward(TokenBatch(ids: [ids]), options: ForwardOptions(hidden: .all, logits: .none))
            for l in 0..<layers {
                let h = r.hidden[l + 1]!.scalars
                for i in [0, d / 2, d - 1] {
                    var mean: Float = 0
                    for t in 0..<ids.count { mean += h[t * d + i] }
                    mean /= Float(ids.count)
                    XCTAssertEqual(f.scalars[(n * layers + l) * d + i], mean, accuracy: 1e-4, "item \(n) layer \(l) dim \(i)")
                }
            }
        }
        // Truncation to max tokens.
        var short = FeatureOptions()
        short.maxTokens = 4
        XCTAssertEqual(try FeatureExtractor(model: m, options: short).ids(prompt: items[1].prompt, response: items[1].response).count, 4)
    }

    func testProbeEvalAUROCWithTiesAndGap() throws {
        let r = try ProbeEvalKind.evaluate(logits: [0, 0, 1, 2], unsafe: [false, true, true, false], split: "all")
        XCTAssertEqual(r.auroc!, 0.375, accuracy: 1e-12)  // (0.5 + 0 + 1 + 0) / 4
        let s = ProbeMetrics.sigmoid
        XCTAssertEqual(r.calibratedGap!, (s(0) + s(1)) / 2 - (s(0) + s(2)) / 2, accuracy: 1e-12)
        XCTAssertEqual(r.safe, 2)
        XCTAssertEqual(r.unsafe, 2)
        XCTAssertNil(try ProbeEvalKind.evaluate(logits: [1, 2], unsafe: [true, true], split: "all").auroc)
    }

    func testLinearProbeIsDifferentiableAndRoundTrips() throws {
        let probe = LinearProbe(config: LinearProbeConfig(layers: 2, hidden: 3, projection: 5), seed: 9)
        var rng = SplitMix64(seed: 1)
        let x = Tensor.randomNormal(shape: [2, 2, 3], std: 1, rng: &rng)
        let v = Variable(x, requiresGrad: true)
        let out = probe.logits(features: v)
        XCTAssertEqual(out.shape, [2])
        Ops.sum(out).backward()
        let g = try XCTUnwrap(v.grad).scalars
        // Finite differences on the input.
        for k in [0, 4, 11] {
            var plus = x.copy(), minus = x.copy()
            plus.withUnsafeMutableBufferPointer { $0[k] += 1e-2 }
            minus.withUnsafeMutableBufferPointer { $0[k] -= 1e-2 }
            let fd = (probe.logits(plus).reduce(0, +) - probe.logits(minus).reduce(0, +)) / 2e-2
            XCTAssertEqual(g[k], fd, accuracy: 1e-3)
        }
        XCTAssertNotNil(probe.projection.grad)
        // Manual: w2 (W1 x) + b.
        let w1 = probe.projection.value.scalars, w2 = probe.headWeight.value.scalars, b = probe.headBias.value.scalars[0]
        let flat = x.scalars
        var manual = b
        for j in 0..<5 {
            var h: Float = 0
            for i in 0..<6 { h += w1[j * 6 + i] * flat[i] }
            manual += w2[j] * h
        }
        XCTAssertEqual(probe.logits(x)[0], manual, accuracy: 1e-5)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("probe-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try probe.save(to: dir)
        let back = try LinearProbe.load(from: dir)
        XCTAssertEqual(back.config, probe.config)
        XCTAssertEqual(back.logits(x), probe.logits(x))
        XCTAssertEqual(Set(try SafeTensors.read(dir.appendingPathComponent("probe.safetensors")).keys), ["proj.weight", "head.weight", "head.bias"])
    }
}

final class ProbeTrainerTests: XCTestCase {
    /// 80 rows of N(0, 1) features [2, 4] with a large offset, label = sign of a planted direction.
    static func plantedSet() -> FeatureSet {
        var rng = SplitMix64(seed: 11)
        let n = 80, f = 8
        var x = Tensor.randomNormal(shape: [n, 2, 4], std: 1, rng: &rng)
        var rows: [FeatureRow] = []
        x.withUnsafeMutableBufferPointer { p in
            for r in 0..<n {
                let label = r % 2
                p[r * f + 3] += label == 1 ? 3 : -3
                for i in 0..<f { p[r * f + i] = p[r * f + i] * 40 + 100 }  // raw features far from zero
                rows.append(FeatureRow(index: r, id: "r\(r)", label: label))
            }
        }
        return FeatureSet(features: x, rows: rows)
    }

    func testTrainingIsSeededAndStandardizationFoldsExactly() throws {
        let set = Self.plantedSet()
        var o = ProbeTrainingOptions()
        o.projection = 16
        o.epochs = 10
        o.seed = 4
        o.learningRate = 1e-2
        let a = try ProbeTrainer.train(set, options: o), b = try ProbeTrainer.train(set, options: o)
        XCTAssertEqual(a.epochs, b.epochs)
        XCTAssertEqual(a.heldoutIndices.count, 16)
        XCTAssertEqual(Set(a.trainIndices).intersection(a.heldoutIndices), [])
        o.standardize = true
        let s = try ProbeTrainer.train(set, options: o)
        let best = try XCTUnwrap(s.epochs[s.bestEpoch - 1].heldoutAUROC)
        XCTAssertGreaterThan(best, 0.9)
        // The folded probe reads raw features and reproduces the recorded held-out AUROC.
        let logits = s.probe.logits(set.gather(s.heldoutIndices)).map(Double.init)
        let auroc = try ProbeMetrics.auroc(scores: logits, positives: s.heldoutIndices.map { set.rows[$0].label == 1 })
        XCTAssertEqual(try XCTUnwrap(auroc), best, accuracy: 1e-9)
        // Folding is exact: folded(raw) == unfolded(standardized).
        let probe = LinearProbe(config: LinearProbeConfig(layers: 2, hidden: 4, projection: 5), seed: 1)
        let z = Standardization(set.gather(Array(0..<40)))
        var x = set.gather([41, 42])
        let raw = x.copy()
        z.apply(&x)
        let before = probe.logits(x)
        z.fold(into: probe)
        let after = probe.logits(raw)
        for (u, v) in zip(before, after) { XCTAssertEqual(u, v, accuracy: 1e-3 * max(1, abs(u))) }
    }
}
