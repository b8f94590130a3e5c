// ProbeTrainer: fits a LinearProbe with BCE and AdamW, keeping the epoch with the best held-out
// AUROC (paper Appendix B, Table 3).
//
// Dimension legend: N examples, F = L*D flattened features, b minibatch.
import Foundation
import Numerics

/// Probe training settings (defaults: the paper's Table 3).
public struct ProbeTrainingOptions: Sendable, Codable, Equatable {
    public var projection = 512
    public var learningRate: Float = 3e-4
    public var weightDecay: Float = 1e-4
    public var batchSize = 32
    public var epochs = 30
    /// Train side of the seeded random split (the rest is held out).
    public var trainFraction = 0.8
    /// Seeds the split, the initialisation and the shuffling.
    public var seed: UInt64 = 0
    /// Train on z-scored features (train-split mean / std per feature) and fold the scaling into
    /// `proj.weight` and `head.bias` afterwards, so the saved probe still reads raw features.
    /// Off by default (the paper feeds raw pooled states).
    public var standardize = false

    public init() {}
}

/// Metrics after one epoch.
public struct ProbeEpoch: Sendable, Codable, Equatable {
    public var epoch: Int
    /// Mean BCE over the epoch's training minibatches (weighted by size).
    public var trainLoss: Double
    public var heldoutLoss: Double
    /// nil when the held-out side lacks a class.
    public var heldoutAUROC: Double?
    public var heldoutGap: Double?
}

/// The fitted probe and its history.
public struct ProbeTrainingResult: @unchecked Sendable {
    // @unchecked: holds the probe (class), owned by the caller.
    /// The probe at `bestEpoch`.
    public var probe: LinearProbe
    public var epochs: [ProbeEpoch]
    /// 1-based epoch whose weights were kept.
    public var bestEpoch: Int
    public var trainIndices: [Int]
    public var heldoutIndices: [Int]
}

/// Probe fitting.
public enum ProbeTrainer {
    /// The seeded split: a permutation of 0..<n, the first round(n * trainFraction) for training.
    public static func split(count n: Int, trainFraction: Double, seed: UInt64) -> (train: [Int], heldout: [Int]) {
        var rng = SplitMix64(seed: seed ^ 0x5EED_5EED)
        let perm = rng.permutation(n)
        let k = min(n, max(0, Int((Double(n) * trainFraction).rounded())))
        return (Array(perm[..<k]), Array(perm[k...]))
    }

    /// Mean BCE of logits against 0/1 labels (stable form), in Double.
    static func bce(_ logits: [Float], _ labels: [Bool]) -> Double {
        guard !logits.isEmpty else { return .nan }
        var total = 0.0
        for (x, y) in zip(logits.map(Double.init), labels) { total += max(x, 0) - x * (y ? 1 : 0) + log1p(exp(-abs(x))) }
        return total / Double(logits.count)
    }

    /// Trains on `set` rows with labels (unlabelled rows are ignored). Selection: the best
    /// held-out AUROC (the earliest epoch on ties); without a usable AUROC, the lowest held-out loss.
    public static func train(_ set: FeatureSet, options o: ProbeTrainingOptions,
                             log: (ProbeEpoch) -> Void = { _ in }) throws -> ProbeTrainingResult {
        let labelled = set.rows.filter { $0.label != nil }
        guard labelled.count >= 2 else { throw StudyError.invalidConfiguration("probe training needs at least 2 labelled rows, got \(labelled.count)") }
        guard o.batchSize > 0, o.epochs > 0 else { throw StudyError.invalidConfiguration("probe training: batch_size and epochs must be positive") }
        let (trainPos, heldPos) = split(count: labelled.count, trainFraction: o.trainFraction, seed: o.seed)
        guard !trainPos.isEmpty, !heldPos.isEmpty else {
            throw StudyError.invalidConfiguration("probe training: the \(o.trainFraction) split of \(labelled.count) rows leaves one side empty")
        }
        let trainIdx = trainPos.map { labelled[$0].index }, heldIdx = heldPos.map { labelled[$0].index }
        let label = Dictionary(uniqueKeysWithValues: labelled.map { ($0.index, $0.label == 1) })
        let probe = LinearProbe(config: LinearProbeConfig(layers: set.layers, hidden: set.hidden, projection: o.projection), seed: o.seed)
        let opt = AdamW(parameters: probe.parameters, learningRate: o.learningRate, weightDecay: o.weightDecay)
        let scaling = o.standardize ? Standardization(set.gather(trainIdx)) : nil
        func batch(_ idx: [Int]) -> Tensor {
            var x = set.gather(idx)
            scaling?.apply(&x)
            return x
        }
        let heldX = batch(heldIdx), heldY = heldIdx.map { label[$0]! }
        var rng = SplitMix64(seed: o.seed &+ 1)
        var epochs: [ProbeEpoch] = []
        var best: (epoch: Int, key: Double, probe: LinearProbe)?
        for epoch in 1...o.epochs {
            let order = rng.shuffled(trainIdx)
            var lossSum = 0.0
            for start in stride(from: 0, to: order.count, by: o.batchSize) {
                let idx = Array(order[start..<min(order.count, start + o.batchSize)])
                let x = Variable(batch(idx))
                let y = Tensor(shape: [idx.count], data: idx.map { label[$0]! ? 1 : 0 })
                let loss = Ops.bceWithLogits(probe.logits(features: x), targets: y)
                loss.backward()
                opt.step()
                opt.zeroGrad()
                lossSum += Double(loss.item) * Double(idx.count)
            }
            let heldLogits = probe.logits(heldX)
            let auroc = try ProbeMetrics.auroc(scores: heldLogits.map(Double.init), positives: heldY)
            let gap = try ProbeMetrics.calibratedGap(logits: heldLogits.map(Double.init), positives: heldY)
            let e = ProbeEpoch(epoch: epoch, trainLoss: lossSum / Double(order.count), heldoutLoss: bce(heldLogits, heldY),
                               heldoutAUROC: auroc, heldoutGap: gap)
            epochs.append(e)
            log(e)
            let key = auroc ?? -e.heldoutLoss
            if best == nil || key > best!.key { best = (epoch, key, probe.copy()) }
        }
        if let scaling { scaling.fold(into: best!.probe) }
        return ProbeTrainingResult(probe: best!.probe, epochs: epochs, bestEpoch: best!.epoch, trainIndices: trainIdx, heldoutIndices: heldIdx)
    }
}

/// Per-feature z-scoring of the training rows, and its exact folding into a probe:
/// w2 W1 ((x - mu) * s) + b = w2 (W1 diag(s)) x + (b - w2 W1 diag(s) mu).
struct Standardization {
    /// [F]
    var mean: [Float]
    /// 1 / std per feature (0 for constant features).
    var scale: [Float]

    init(_ rows: Tensor) {
        let n = rows.shape[0], f = rows.shape[1]
        var sum = [Double](repeating: 0, count: f), sq = [Double](repeating: 0, count: f)
        rows.withUnsafeBufferPointer { p in
            for r in 0..<n {
                for i in 0..<f {
                    let v = Double(p[r * f + i])
                    sum[i] += v
                    sq[i] += v * v
                }
            }
        }
        mean = sum.map { Float($0 / Double(max(n, 1))) }
        scale = (0..<f).map { i in
            let m = sum[i] / Double(max(n, 1))
            let std = max(0, sq[i] / Double(max(n, 1)) - m * m).squareRoot()
            return std > 1e-8 ? Float(1 / std) : 0
        }
    }

    /// x <- (x - mean) * scale, row by row.
    func apply(_ x: inout Tensor) {
        let f = mean.count
        x.withUnsafeMutableBufferPointer { p in
            for r in 0..<(p.count / f) {
                for i in 0..<f { p[r * f + i] = (p[r * f + i] - mean[i]) * scale[i] }
            }
        }
    }

    /// Rewrites the probe to take raw features.
    func fold(into probe: LinearProbe) {
        let f = mean.count, pDim = probe.config.projection
        var shift = 0.0
        let w2 = probe.headWeight.value.scalars
        probe.projection.value.withUnsafeMutableBufferPointer { w in
            for j in 0..<pDim {
                var c = 0.0
                for i in 0..<f {
                    w[j * f + i] *= scale[i]
                    c += Double(w[j * f + i]) * Double(mean[i])
                }
                shift += Double(w2[j]) * c
            }
        }
        probe.headBias.value.withUnsafeMutableBufferPointer { $0[0] -= Float(shift) }
    }
}
