// RMSNorm (plain and Gemma's (1 + w)) and LayerNorm over the last axis, forward and
// backward, computed in Float32.
//
// Dimension legend: x viewed as rows [R, D] with D the normalised (last) dimension;
// weight and bias are [D].
import Foundation

extension Kernels {
    /// RMSNorm forward: y = x * r * w', r = 1/sqrt(mean(x^2) + eps), w' = (addOne ? 1 + w : w).
    /// Returns y and the per-row r (for backward).
    public static func rmsNorm(_ x: Tensor, weight: Tensor, eps: Float, addOne: Bool) -> (y: Tensor, rstd: [Float]) {
        let d = x.shape.last ?? 1, rows = x.count / Swift.max(d, 1)
        var rstd = [Float](repeating: 0, count: rows)
        let y = rstd.withUnsafeMutableBufferPointer { rmsNormRows(x, weight: weight, eps: eps, addOne: addOne, rstd: $0.baseAddress) }
        return (y, rstd)
    }

    /// RMSNorm forward without the statistics (inference): the same values as `rmsNorm`.
    public static func rmsNormForward(_ x: Tensor, weight: Tensor, eps: Float, addOne: Bool) -> Tensor {
        rmsNormRows(x, weight: weight, eps: eps, addOne: addOne, rstd: nil)
    }

    /// The RMSNorm rows, split over threads; each row's r goes to `rstd` when given.
    private static func rmsNormRows(_ x: Tensor, weight: Tensor, eps: Float, addOne: Bool,
                                    rstd: UnsafeMutablePointer<Float>?) -> Tensor {
        let d = x.shape.last ?? 1, rows = x.count / Swift.max(d, 1)
        precondition(weight.count == d, "rmsNorm: weight \(weight.shape) for last dimension \(d)")
        var y = Tensor(uninitialized: x.shape)
        let py = y.mutablePointer(), px = x.basePointer, pw = weight.basePointer
        Threading.parallelChunks(rows, costPerItem: d * 3) { range in
            for r in range {
                let xr = px + r * d, yr = py + r * d
                var ss: Float = 0
                for j in 0..<d { ss += xr[j] * xr[j] }
                let inv = 1 / (ss / Float(d) + eps).squareRoot()
                rstd?[r] = inv
                if addOne { for j in 0..<d { yr[j] = xr[j] * inv * (1 + pw[j]) } }
                else { for j in 0..<d { yr[j] = xr[j] * inv * pw[j] } }
            }
        }
        return y
    }

    /// RMSNorm backward: gradients for x and the weight.
    public static func rmsNormBackward(_ g: Tensor, x: Tensor, weight: Tensor, rstd: [Float], addOne: Bool,
                                       needX: Bool, needWeight: Bool) -> (dx: Tensor?, dw: Tensor?) {
        let d = x.shape.last ?? 1, rows = x.count / Swift.max(d, 1)
        let px = x.basePointer, pg = g.basePointer, pw = weight.basePointer
        var dx: Tensor?
        if needX {
            var t = Tensor(uninitialized: x.shape)
            let pd = t.mutablePointer()
            rstd.withUnsafeBufferPointer { pr in
                let prb = pr.baseAddress!
                Threading.parallelChunks(rows, costPerItem: d * 4) { range in
                    for r in range {
                        let xr = px + r * d, gr = pg + r * d, dr = pd + r * d, inv = prb[r]
                        // dxhat = g * w'; dx = inv * (dxhat - xhat * mean(dxhat * xhat))
                        var dot: Float = 0
                        for j in 0..<d {
                            let w = addOne ? 1 + pw[j] : pw[j]
                            dot += gr[j] * w * xr[j] * inv
                        }
                        let m = dot / Float(d)
                        for j in 0..<d {
                            let w = addOne ? 1 + pw[j] : pw[j]
                            dr[j] = inv * (gr[j] * w - xr[j] * inv * m)
                        }
                    }
                }
            }
            dx = t
        }
        var dw: Tensor?
        if needWeight {
            var t = Tensor(zeros: weight.shape)
            let pd = t.mutablePointer()
            for r in 0..<rows {
                let xr = px + r * d, gr = pg + r * d, inv = rstd[r]
                for j in 0..<d { pd[j] += gr[j] * xr[j] * inv }
            }
            dw = t
        }
        return (dx, dw)
    }

    /// LayerNorm forward: y = (x - mean) * r * w + b with r = 1/sqrt(var + eps) (biased
    /// variance). `weight`/`bias` may be nil (then 1 / 0). Returns y, per-row mean and r.
    public static func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float)
        -> (y: Tensor, mean: [Float], rstd: [Float]) {
        let d = x.shape.last ?? 1, rows = x.count / Swift.max(d, 1)
        var y = Tensor(uninitialized: x.shape)
        var means = [Float](repeating: 0, count: rows), rstd = [Float](repeating: 0, count: rows)
        let py = y.mutablePointer(), px = x.basePointer
        let pw = weight?.basePointer, pb = bias?.basePointer
        for r in 0..<rows {
            let xr = px + r * d, yr = py + r * d
            var s: Float = 0
            for j in 0..<d { s += xr[j] }
            let mu = s / Float(d)
            var v: Float = 0
            for j in 0..<d { let c = xr[j] - mu; v += c * c }
            let inv = 1 / (v / Float(d) + eps).squareRoot()
            means[r] = mu
            rstd[r] = inv
            for j in 0..<d {
                var o = (xr[j] - mu) * inv
                if let pw { o *= pw[j] }
                if let pb { o += pb[j] }
                yr[j] = o
            }
        }
        return (y, means, rstd)
    }

    /// LayerNorm forward without the statistics (inference): the same values as `layerNorm`.
    public static func layerNormForward(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float) -> Tensor {
        layerNorm(x, weight: weight, bias: bias, eps: eps).y
    }

    /// LayerNorm backward: gradients for x, weight and bias.
    public static func layerNormBackward(_ g: Tensor, x: Tensor, weight: Tensor?, mean: [Float], rstd: [Float],
                                         needX: Bool, needWeight: Bool, needBias: Bool)
        -> (dx: Tensor?, dw: Tensor?, db: Tensor?) {
        let d = x.shape.last ?? 1, rows = x.count / Swift.max(d, 1)
        let px = x.basePointer, pg = g.basePointer, pw = weight?.basePointer
        var dx: Tensor? = needX ? Tensor(uninitialized: x.shape) : nil
        var dw: Tensor? = needWeight ? Tensor(zeros: [d]) : nil
        var db: Tensor? = needBias ? Tensor(zeros: [d]) : nil
        let pdx = dx?.mutablePointer(), pdw = dw?.mutablePointer(), pdb = db?.mutablePointer()
        for r in 0..<rows {
            let xr = px + r * d, gr = pg + r * d, mu = mean[r], inv = rstd[r]
            if let pdw { for j in 0..<d { pdw[j] += gr[j] * (xr[j] - mu) * inv } }
            if let pdb { for j in 0..<d { pdb[j] += gr[j] } }
            if let pdx {
                var sumD: Float = 0, sumDX: Float = 0
                for j in 0..<d {
                    let dh = gr[j] * (pw?[j] ?? 1)
                    sumD += dh
                    sumDX += dh * (xr[j] - mu) * inv
                }
                let m1 = sumD / Float(d), m2 = sumDX / Float(d)
                let dr = pdx + r * d
                for j in 0..<d {
                    let dh = gr[j] * (pw?[j] ?? 1)
                    dr[j] = inv * (dh - m1 - (xr[j] - mu) * inv * m2)
                }
            }
        }
        return (dx, dw, db)
    }
}

extension Ops {
    /// RMSNorm over the last axis; `addOne` selects Gemma's (1 + w) scaling.
    public static func rmsNorm(_ x: Variable, weight: Variable, eps: Float, addOne: Bool = false) -> Variable {
        let (y, rstd) = Kernels.rmsNorm(x.value, weight: weight.value, eps: eps, addOne: addOne)
        guard Autograd.records(x, weight) else { return Variable(y) }
        let vx = x.value, vw = weight.value
        return Variable(y, parents: [x, weight]) { g, need in
            let (dx, dw) = Kernels.rmsNormBackward(g, x: vx, weight: vw, rstd: rstd, addOne: addOne,
                                                   needX: need[0], needWeight: need[1])
            return [dx, dw]
        }
    }

    /// LayerNorm over the last axis with optional affine weight and bias.
    public static func layerNorm(_ x: Variable, weight: Variable?, bias: Variable?, eps: Float) -> Variable {
        let (y, mean, rstd) = Kernels.layerNorm(x.value, weight: weight?.value, bias: bias?.value, eps: eps)
        var inputs = [x]
        if let weight { inputs.append(weight) }
        if let bias { inputs.append(bias) }
        guard Autograd.records(inputs) else { return Variable(y) }
        let vx = x.value, vw = weight?.value, hasW = weight != nil, hasB = bias != nil
        return Variable(y, parents: inputs) { g, need in
            let needW = hasW && need[1], needB = hasB && need[hasW ? 2 : 1]
            let r = Kernels.layerNormBackward(g, x: vx, weight: vw, mean: mean, rstd: rstd,
                                              needX: need[0], needWeight: needW, needBias: needB)
            var out: [Tensor?] = [r.dx]
            if hasW { out.append(r.dw) }
            if hasB { out.append(r.db) }
            return out
        }
    }
}
