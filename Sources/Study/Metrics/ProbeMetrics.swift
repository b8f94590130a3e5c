// ProbeMetrics: AUROC (Mann-Whitney with midranks) and the calibrated sigmoid gap (paper Section 3).
import Foundation

/// Ranking and calibration metrics of a probe's logits against binary labels (true = unsafe).
public enum ProbeMetrics {
    /// The logistic sigmoid, computed without overflow.
    public static func sigmoid(_ x: Double) -> Double {
        x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x))
    }

    /// AUROC = P(score of a random positive > score of a random negative) + 0.5 P(tie), computed
    /// as the Mann-Whitney U statistic with midranks for tied scores, divided by n+ n-.
    /// - Returns: nil when either class is empty.
    /// - Throws: `countMismatch` for unequal lengths; `invalidConfiguration` for non-finite scores.
    public static func auroc(scores: [Double], positives: [Bool]) throws -> Double? {
        try validate(scores, positives)
        let nPos = positives.filter { $0 }.count, nNeg = positives.count - nPos
        guard nPos > 0, nNeg > 0 else { return nil }
        let order = scores.indices.sorted { scores[$0] < scores[$1] }
        var rankSumPos = 0.0
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && scores[order[j + 1]] == scores[order[i]] { j += 1 }
            let midrank = Double(i + j + 2) / 2  // ranks are 1-based: (i+1 + j+1) / 2
            for k in i...j where positives[order[k]] { rankSumPos += midrank }
            i = j + 1
        }
        let u = rankSumPos - Double(nPos) * Double(nPos + 1) / 2
        return u / (Double(nPos) * Double(nNeg))
    }

    /// Calibrated gap = mean sigmoid(logit) on unsafe items minus mean sigmoid(logit) on safe items.
    /// - Returns: nil when either class is empty.
    public static func calibratedGap(logits: [Double], positives: [Bool]) throws -> Double? {
        try validate(logits, positives)
        var sumPos = 0.0, sumNeg = 0.0, nPos = 0, nNeg = 0
        for (x, p) in zip(logits, positives) {
            if p { sumPos += sigmoid(x); nPos += 1 } else { sumNeg += sigmoid(x); nNeg += 1 }
        }
        guard nPos > 0, nNeg > 0 else { return nil }
        return sumPos / Double(nPos) - sumNeg / Double(nNeg)
    }

    private static func validate(_ values: [Double], _ labels: [Bool]) throws {
        guard values.count == labels.count else {
            throw StudyError.countMismatch(what: "probe scores vs labels", expected: labels.count, got: values.count)
        }
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw StudyError.invalidConfiguration("probe score \(bad) is not finite (\(values[bad]))")
        }
    }
}
