// Loss functions with fused forward/backward: cross-entropy, token-wise KL divergence,
// binary cross-entropy with logits, mean squared error. All return a scalar (shape []).
//
// Dimension legend: logits [N, V] (any leading shape flattened to N rows); targets [N].
import Foundation

extension Kernels {
    /// Log-probability of each row's target under softmax(logits) ([N, V] -> [N]);
    /// rows whose target equals `ignoreIndex` get 0.
    public static func targetLogProbabilities(_ logits: Tensor, targets: [Int], ignoreIndex: Int = -100) -> [Float] {
        targetLogProbabilitiesAndNormalizers(logits, targets: targets, ignoreIndex: ignoreIndex).logProbabilities
    }

    /// One target per row, each inside the vocabulary or equal to `ignoreIndex`.
    static func checkTargets(_ targets: [Int], rows: Int, vocabulary v: Int, ignoreIndex: Int, caller: String) {
        precondition(targets.count == rows, "\(caller): \(targets.count) targets for \(rows) rows")
        for t in targets where t != ignoreIndex {
            precondition(t >= 0 && t < v, "target \(t) outside vocabulary 0..<\(v)")
        }
    }

    /// `targetLogProbabilities` and each row's log-sum-exp (0 for ignored rows).
    static func targetLogProbabilitiesAndNormalizers(_ logits: Tensor, targets: [Int], ignoreIndex: Int = -100)
        -> (logProbabilities: [Float], logSumExp: [Float]) {
        let v = logits.shape.last ?? 1, n = logits.count / Swift.max(v, 1)
        checkTargets(targets, rows: n, vocabulary: v, ignoreIndex: ignoreIndex, caller: "targetLogProbabilities")
        let pl = logits.basePointer
        var out = [Float](repeating: 0, count: n), norms = [Float](repeating: 0, count: n)
        out.withUnsafeMutableBufferPointer { po in norms.withUnsafeMutableBufferPointer { pn in
            let base = po.baseAddress!, lse = pn.baseAddress!
            Threading.parallelChunks(n, costPerItem: v * transcendentalCost) { rows in
                for r in rows where targets[r] != ignoreIndex {
                    lse[r] = logSumExp(pl + r * v, v)
                    base[r] = pl[r * v + targets[r]] - lse[r]
                }
            }
        } }
        return (out, norms)
    }

    /// Per-row KL(softmax(reference) || softmax(logits)) summed over the last axis ([N, V] -> [N]).
    public static func rowKLDivergence(reference: Tensor, logits: Tensor) -> [Double] {
        let v = logits.shape.last ?? 1, n = logits.count / Swift.max(v, 1)
        let pr = reference.basePointer, pl = logits.basePointer
        var out = [Double](repeating: 0, count: n)
        out.withUnsafeMutableBufferPointer { po in
            let base = po.baseAddress!
            Threading.parallelChunks(n, costPerItem: v * 2 * transcendentalCost) { rows in
                for r in rows {
                    let a = pr + r * v, b = pl + r * v
                    let lseA = logSumExp(a, v), lseB = logSumExp(b, v)
                    var s: Double = 0
                    for j in 0..<v {
                        let la = a[j] - lseA
                        let p = Foundation.exp(la)
                        if p > 0 { s += Double(p) * Double(la - (b[j] - lseB)) }
                    }
                    base[r] = s
                }
            }
        }
        return out
    }
}

extension Ops {
    /// Mean cross-entropy of logits [N, V] against class targets [N], skipping rows whose
    /// target is `ignoreIndex` (PyTorch semantics; returns 0 when every row is ignored).
    public static func crossEntropy(logits: Variable, targets: [Int], ignoreIndex: Int = -100) -> Variable {
        crossEntropyWithRowNLL(logits: logits, targets: targets, ignoreIndex: ignoreIndex).loss
    }

    /// `crossEntropy` and each row's NLL (0 for ignored rows), from one pass over the logits.
    public static func crossEntropyWithRowNLL(logits: Variable, targets: [Int], ignoreIndex: Int = -100)
        -> (loss: Variable, rowNLL: [Float]) {
        let v = logits.shape.last ?? 1, n = logits.value.count / Swift.max(v, 1)
        let (lp, lse) = Kernels.targetLogProbabilitiesAndNormalizers(logits.value, targets: targets, ignoreIndex: ignoreIndex)
        let count = Kernels.targetCount(targets, ignoreIndex: ignoreIndex)
        let rowNLL = lp.map { -$0 }
        let y = Kernels.meanLoss(rowNLL, count: count)
        guard Autograd.records(logits) else { return (Variable(y), rowNLL) }
        let vl = logits.value
        return (Variable(y, parents: [logits]) { g, _ in
            guard count > 0 else { return [Tensor(zeros: vl.shape)] }
            // Every row is written below (ignored rows with zeros), so no zero fill first.
            var dx = Tensor(uninitialized: vl.shape)
            let w = g.item / Float(count), pd = dx.mutablePointer(), pl = vl.basePointer
            // One pass per row: w * softmax = w * exp(l - lse) with the forward's log-sum-exp.
            Threading.parallelChunks(n, costPerItem: v * 8) { rows in
                for r in rows {
                    let dst = pd + r * v
                    guard targets[r] != ignoreIndex else {
                        dst.update(repeating: 0, count: v)
                        continue
                    }
                    Kernels.crossEntropyRowGradient(pl + r * v, dst, v, logSumExp: lse[r], target: targets[r], weight: w)
                }
            }
            return [dx]
        }, rowNLL)
    }

    /// Token-wise KL(p_ref || p) between softmax(referenceLogits) and softmax(logits), summed
    /// over the vocabulary and averaged over rows where `mask` is true (all rows if nil).
    public static func klDivergence(referenceLogits: Tensor, logits: Variable, mask: [Bool]? = nil) -> Variable {
        precondition(referenceLogits.count == logits.value.count,
                     "klDivergence: reference \(referenceLogits.shape) vs logits \(logits.shape)")
        let v = logits.shape.last ?? 1, n = logits.value.count / Swift.max(v, 1)
        if let mask { precondition(mask.count == n, "klDivergence: mask has \(mask.count) rows, logits \(n)") }
        let rows = (0..<n).filter { mask?[$0] ?? true }
        let perRow = Kernels.rowKLDivergence(reference: referenceLogits, logits: logits.value)
        var total: Double = 0
        for r in rows { total += perRow[r] }
        let y = Tensor(scalar: rows.isEmpty ? 0 : Float(total / Double(rows.count)))
        guard Autograd.records(logits) else { return Variable(y) }
        let vl = logits.value, ref = referenceLogits
        return Variable(y, parents: [logits]) { g, _ in
            var dx = Tensor(zeros: vl.shape)
            guard !rows.isEmpty else { return [dx] }
            let w = g.item / Float(rows.count), pd = dx.mutablePointer()
            // p_ref is softmax(reference) written into dx first, then dx = w * (p - p_ref).
            let pRef = Kernels.softmax(ref.reshaped(vl.shape))
            let pr = pRef.basePointer, pl = vl.basePointer
            withExtendedLifetime(pRef) { rows.withUnsafeBufferPointer { selected in
                Threading.parallelChunks(selected.count, costPerItem: v * Kernels.transcendentalCost) { range in
                    for i in range {
                        let r = selected[i], dst = pd + r * v, q = pr + r * v
                        Kernels.softmaxRow(pl + r * v, dst, v)
                        for j in 0..<v { dst[j] = w * (dst[j] - q[j]) }
                    }
                }
            } }
            return [dx]
        }
    }

    /// Mean binary cross-entropy of logits against targets in [0, 1] (same shape), stable form
    /// max(x, 0) - x t + log(1 + exp(-|x|)).
    public static func bceWithLogits(_ logits: Variable, targets: Tensor) -> Variable {
        precondition(targets.count == logits.value.count, "bceWithLogits: targets \(targets.shape) vs logits \(logits.shape)")
        let n = logits.value.count, px = logits.value.basePointer, pt = targets.basePointer
        var total: Double = 0
        for i in 0..<n {
            let x = px[i]
            total += Double(Swift.max(x, 0) - x * pt[i] + Foundation.log1p(Foundation.exp(-Swift.abs(x))))
        }
        let y = Tensor(scalar: n == 0 ? 0 : Float(total / Double(n)))
        guard Autograd.records(logits) else { return Variable(y) }
        let vl = logits.value
        return Variable(y, parents: [logits]) { g, _ in
            let w = g.item / Float(Swift.max(n, 1))
            return [Kernels.zipMap(vl, targets) { w * (Kernels.sigmoid($0) - $1) }]
        }
    }

    /// Mean squared error between a prediction and a constant target (same element count).
    public static func mse(_ prediction: Variable, _ target: Tensor) -> Variable {
        precondition(target.count == prediction.value.count, "mse: target \(target.shape) vs prediction \(prediction.shape)")
        let n = prediction.value.count
        let diff = Kernels.zipMap(prediction.value, target) { $0 - $1 }
        let pd = diff.basePointer
        var total: Double = 0
        withExtendedLifetime(diff) { for i in 0..<n { total += Double(pd[i] * pd[i]) } }
        let y = Tensor(scalar: n == 0 ? 0 : Float(total / Double(n)))
        guard Autograd.records(prediction) else { return Variable(y) }
        return Variable(y, parents: [prediction]) { g, _ in
            [Kernels.scale(diff, by: 2 * g.item / Float(Swift.max(n, 1)))]
        }
    }

    /// Mean squared error between two Variables (gradients flow to both).
    public static func mse(_ a: Variable, _ b: Variable) -> Variable { mean(square(sub(a, b))) }
}

extension Kernels {
    /// Rows whose target is not `ignoreIndex`: the denominator of a mean token loss.
    static func targetCount(_ targets: [Int], ignoreIndex: Int) -> Int {
        targets.reduce(0) { $0 + ($1 == ignoreIndex ? 0 : 1) }
    }

    /// The mean token loss sum(rowNLL) / count as a scalar tensor (summed in Double), 0 when
    /// no row has a target.
    static func meanLoss(_ rowNLL: [Float], count: Int) -> Tensor {
        var total: Double = 0
        for value in rowNLL { total += Double(value) }
        return Tensor(scalar: count == 0 ? 0 : Float(total / Double(count)))
    }

    /// dst = weight * (softmax(src) - onehot(target)) for one row of `count` logits whose
    /// log-sum-exp is `logSumExp`: one pass, w * exp(l - lse) (a full softmax when the
    /// log-sum-exp is not finite). `dst` may be `src`.
    static func crossEntropyRowGradient(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ count: Int,
                                        logSumExp: Float, target: Int, weight: Float) {
        if logSumExp.isFinite {
            VectorMath.shiftedExp(src, dst, count, shift: logSumExp, scale: weight)
        } else {
            softmaxRow(src, dst, count)
            for j in 0..<count { dst[j] *= weight }
        }
        dst[target] -= weight
    }
}
