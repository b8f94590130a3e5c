// LVSTable and LayerCurves: the paper's Table 1 layout and per-layer LVS curves as CSV/Markdown/JSON.
import Foundation

/// Which per-group aggregate a table shows.
public enum LVSStatistic: String, Sendable, Codable {
    /// Mean of per-example LVS (paper).
    case mean
    /// Median of per-example LVS (authors' release).
    case median

    func value(_ s: LVSGroupSummary) -> Double? { self == .mean ? s.mean : s.median }
}

/// Orders layer names: `embedding`, then block indices ascending, then `mid`, `last`, then others by name.
public enum LayerOrder {
    /// A sort key for a layer name.
    public static func key(_ layer: String) -> (Int, Int, String) {
        switch layer.lowercased() {
        case "embedding", "emb", "embed": return (0, 0, "")
        case "mid", "middle": return (2, 0, "")
        case "last", "final": return (2, 1, "")
        default:
            if let i = Int(layer) { return (1, i, "") }
            return (3, 0, layer)
        }
    }

    /// Sorts layer names by `key`.
    public static func sorted(_ layers: [String]) -> [String] { layers.sorted { key($0) < key($1) } }
}

/// A Table-1-like LVS table: models x layer columns, one block per epsilon.
public struct LVSTable: Sendable, Codable, Equatable {
    /// One row: a model at one epsilon.
    public struct Row: Sendable, Codable, Equatable {
        /// Model name.
        public var model: String
        /// Perturbation budget.
        public var epsilon: Double
        /// Values in `columns` order; nil where the group is missing or empty.
        public var values: [Double?]
        /// Valid observation counts in `columns` order.
        public var counts: [Int]

        /// Encodes missing values as JSON null.
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(model, forKey: .model)
            try c.encode(epsilon, forKey: .epsilon)
            try c.encode(values, forKey: .values)
            try c.encode(counts, forKey: .counts)
        }
    }

    /// The attack shown.
    public var attack: String
    /// The statistic shown.
    public var statistic: LVSStatistic
    /// Layer names of the columns (e.g. embedding, mid, last).
    public var layers: [String]
    /// Column titles (e.g. Emb, Mid, Last).
    public var columns: [String]
    /// Rows, grouped by epsilon ascending, models in first-appearance order.
    public var rows: [Row]

    /// Builds the table from group summaries of one attack.
    public init(summaries: [LVSGroupSummary], attack: String = "pgd", statistic: LVSStatistic = .mean,
                layers: [String] = ["embedding", "mid", "last"], columns: [String] = ["Emb", "Mid", "Last"]) {
        precondition(layers.count == columns.count, "one column title per layer")
        self.attack = attack
        self.statistic = statistic
        self.layers = layers
        self.columns = columns
        let mine = summaries.filter { $0.key.attack == attack }
        var models: [String] = []
        for s in mine where !models.contains(s.key.model) { models.append(s.key.model) }
        let epsilons = Array(Set(mine.map(\.key.epsilon))).sorted()
        var index: [LVSGroupKey: LVSGroupSummary] = [:]
        for s in mine { index[s.key] = s }
        rows = epsilons.flatMap { eps in
            models.map { model in
                let cells = layers.map { index[LVSGroupKey(model: model, layer: $0, epsilon: eps, attack: attack)] }
                return Row(model: model, epsilon: eps, values: cells.map { $0.flatMap(statistic.value) },
                           counts: cells.map { $0?.count ?? 0 })
            }
        }
    }

    /// CSV: `model,epsilon,<columns...>,<n_columns...>`; empty cells for missing values.
    public func csv() -> String {
        let header = ["model", "epsilon"] + columns + columns.map { "n_\($0)" }
        let body = rows.map { r in [r.model, Format.number(r.epsilon)] + r.values.map { $0.map(Format.number) ?? "" } + r.counts.map(String.init) }
        return DelimitedParser().render([header] + body)
    }

    /// Markdown: one table per epsilon, values with `digits` decimals, `–` where missing.
    public func markdown(digits: Int = 3) -> String {
        var out = "LVS (\(statistic.rawValue), attack \(attack))\n"
        for eps in Array(Set(rows.map(\.epsilon))).sorted() {
            out += "\n### epsilon = \(Format.number(eps))\n\n"
            out += "| Model | " + columns.joined(separator: " | ") + " |\n"
            out += "|---|" + columns.map { _ in "---:" }.joined(separator: "|") + "|\n"
            for r in rows where r.epsilon == eps {
                let cells = r.values.map { $0.map { String(format: "%.\(digits)f", $0) } ?? "–" }
                out += "| \(Format.markdownCell(r.model)) | " + cells.joined(separator: " | ") + " |\n"
            }
        }
        return out
    }

    /// Pretty, key-sorted JSON.
    public func json() throws -> Data { try Format.json(self) }
}

/// LVS and behaviour versus layer, one series per (model, epsilon, attack).
public struct LayerCurves: Sendable, Codable, Equatable {
    /// One point of a curve.
    public struct Point: Sendable, Codable, Equatable {
        /// Layer name.
        public var layer: String
        /// The group summary at that layer.
        public var summary: LVSGroupSummary
    }

    /// One curve.
    public struct Series: Sendable, Codable, Equatable {
        /// Model name.
        public var model: String
        /// Perturbation budget.
        public var epsilon: Double
        /// Attack name.
        public var attack: String
        /// Points in layer order.
        public var points: [Point]

        /// A display name `model eps=... attack`.
        public var label: String { "\(model) ε=\(Format.number(epsilon)) \(attack)" }
    }

    /// The curves.
    public var series: [Series]

    /// Groups summaries into curves; points sorted by `LayerOrder`.
    public init(summaries: [LVSGroupSummary]) {
        var order: [String] = []
        var byKey: [String: Series] = [:]
        for s in summaries {
            let id = "\(s.key.model)\u{0}\(s.key.epsilon)\u{0}\(s.key.attack)"
            if byKey[id] == nil {
                order.append(id)
                byKey[id] = Series(model: s.key.model, epsilon: s.key.epsilon, attack: s.key.attack, points: [])
            }
            byKey[id]?.points.append(Point(layer: s.key.layer, summary: s))
        }
        series = order.compactMap { id in
            byKey[id].map { var s = $0; s.points.sort { LayerOrder.key($0.layer) < LayerOrder.key($1.layer) }; return s }
        }
    }

    /// Long-format CSV, one row per point.
    public func csv() -> String {
        let header = ["model", "epsilon", "attack", "layer", "count", "invalid", "lvs_mean", "lvs_median", "lvs_median_ci_low",
                      "lvs_median_ci_high", "mean_drop", "mean_delta_l2", "asr_clean", "asr_perturbed", "lvs_asr"]
        var rows = [header]
        for s in series {
            for p in s.points {
                let m = p.summary
                let vals: [Double?] = [m.mean, m.median, m.medianCI?.lower, m.medianCI?.upper, m.meanDrop, m.meanDeltaL2,
                                       m.asrClean, m.asrPerturbed, m.asrLVS]
                rows.append([s.model, Format.number(s.epsilon), s.attack, p.layer, String(m.count), String(m.invalid)]
                            + vals.map { $0.map(Format.number) ?? "" })
            }
        }
        return DelimitedParser().render(rows)
    }

    /// Markdown, one table per series.
    public func markdown(digits: Int = 3) -> String {
        var out = ""
        for s in series {
            out += "### \(Format.markdownCell(s.label))\n\n| Layer | n | LVS mean | LVS median | 95% CI | mean drop | mean ‖δ‖₂ |\n|---|---:|---:|---:|---|---:|---:|\n"
            for p in s.points {
                let m = p.summary
                func f(_ v: Double?) -> String { v.map { String(format: "%.\(digits)f", $0) } ?? "–" }
                let ci = m.medianCI.map { "[\(f($0.lower)), \(f($0.upper))]" } ?? "–"
                out += "| \(Format.markdownCell(p.layer)) | \(m.count) | \(f(m.mean)) | \(f(m.median)) | \(ci) | \(f(m.meanDrop)) | \(f(m.meanDeltaL2)) |\n"
            }
            out += "\n"
        }
        return out
    }

    /// Pretty, key-sorted JSON.
    public func json() throws -> Data { try Format.json(self) }
}

/// Shared number and text formatting for tables.
public enum Format {
    /// Shortest round-tripping decimal text of a finite number; `nan`/`inf` spelled out.
    public static func number(_ x: Double) -> String {
        guard x.isFinite else { return x.isNaN ? "nan" : (x > 0 ? "inf" : "-inf") }
        if x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
        return "\(x)"
    }

    /// Escapes `|` and newlines for a Markdown table cell.
    public static func markdownCell(_ s: String) -> String {
        s.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
    }

    /// Pretty-printed, key-sorted JSON of a value.
    public static func json<T: Encodable>(_ value: T) throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try enc.encode(value)
    }
}
