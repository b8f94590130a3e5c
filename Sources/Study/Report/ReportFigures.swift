// ReportFigures: builds the report's charts from typed inputs; each figure is also exportable.
import Foundation

/// A chart of the report, exportable as a standalone SVG and its data as CSV.
public struct Figure: Sendable, Equatable {
    /// File-name-safe identifier (`<id>.svg`, `<id>.csv`).
    public var id: String
    /// The report section it belongs to.
    public var section: String
    /// Caption shown under the figure.
    public var caption: String
    /// Standalone SVG document.
    public var svg: String
    /// The plotted data.
    public var csv: String
}

/// Builders of every figure of the report.
public enum ReportFigures {
    /// All figures, in section order.
    public static func all(_ r: ReportInputs) -> [Figure] {
        behaviour(r) + fineTuning(r) + perturbation(r) + lvsBars(r)
    }

    /// A file-name-safe slug.
    static func slug(_ s: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-")
        let lowered = s.lowercased().map { allowed.contains($0) ? $0 : "-" }
        return String(lowered).split(separator: "-").joined(separator: "-")
    }

    private static func figure(_ id: String, _ section: String, _ caption: String, line: LineChart) -> Figure {
        Figure(id: slug(id), section: section, caption: caption, svg: line.svg(), csv: line.csv())
    }

    private static func figure(_ id: String, _ section: String, _ caption: String, bar: BarChart) -> Figure {
        Figure(id: slug(id), section: section, caption: caption, svg: bar.svg(), csv: bar.csv())
    }

    /// Refusal rate on harmful prompts and over-refusal on benign prompts per model, with Wilson CIs;
    /// audit-probe AUROC and calibrated gap per model.
    static func behaviour(_ r: ReportInputs) -> [Figure] {
        var figures: [Figure] = []
        if !r.probes.isEmpty {
            let chart = BarChart(title: "Audit probe: ranking vs calibration", xTitle: "Metric", yTitle: "Value",
                                 categories: ["AUROC", "Calibrated gap"],
                                 series: r.probes.map { BarSeries(name: $0.model, values: [$0.auroc, $0.gap]) })
            figures.append(figure("probe-auroc-gap", "behaviour",
                                  "Fixed audit probe on held-out safe/unsafe responses: AUROC (ordinal signal) and calibrated gap (mean sigmoid on unsafe minus safe).",
                                  bar: chart))
        }
        guard !r.behaviour.isEmpty else { return figures }
        let groups = ["all-harmful", "all-benign"]
        let series = r.behaviour.map { m -> BarSeries in
            let props = groups.map { g -> Proportion? in
                let row = m.rates.first { $0.group == g }
                return g == "all-harmful" ? row?.refusal : row?.overRefusal
            }
            return BarSeries(name: m.model, values: props.map { $0?.rate }, lower: props.map { $0?.lower }, upper: props.map { $0?.upper })
        }
        let chart = BarChart(title: "Behavioural refusal rates", xTitle: "Prompt group", yTitle: "Refusal rate",
                             categories: ["harmful (refusal)", "benign (over-refusal)"], series: series)
        return [figure("behaviour-refusal-rates", "behaviour",
                       "Refusal rate on harmful prompts and over-refusal rate on benign / over-refusal prompts; error bars are Wilson 95% intervals.",
                       bar: chart)] + figures
    }

    /// Judged compliance and refusal versus fine-tuning epoch.
    static func fineTuning(_ r: ReportInputs) -> [Figure] {
        guard !r.fineTuning.isEmpty else { return [] }
        var series: [LineSeries] = []
        for (i, c) in r.fineTuning.enumerated() {
            let color = ChartPalette.color(i)
            series.append(LineSeries(name: "\(c.model) compliance", points: c.points.map { ChartPoint(x: $0.epoch, y: $0.compliance) }, color: color))
            series.append(LineSeries(name: "\(c.model) refusal", points: c.points.map { ChartPoint(x: $0.epoch, y: $0.refusal) }, dashed: true, color: color))
        }
        let chart = LineChart(title: "Harmful fine-tuning: judged behaviour", xTitle: "Fine-tuning epoch", yTitle: "Rate", series: series)
        return [figure("fine-tuning-compliance-refusal", "fine-tuning",
                       "Judged compliance (solid) and refusal (dashed) on held-out harmful prompts after each fine-tuning epoch.", line: chart)]
    }

    /// Harmlessness drop and ASR versus perturbation size, one series per layer; LVS versus block index.
    static func perturbation(_ r: ReportInputs) -> [Figure] {
        var figures: [Figure] = []
        var pairs: [(String, String)] = []
        for s in r.lvs where !pairs.contains(where: { $0 == (s.key.model, s.key.attack) }) { pairs.append((s.key.model, s.key.attack)) }
        for (model, attack) in pairs {
            let mine = r.lvs.filter { $0.key.model == model && $0.key.attack == attack && $0.count > 0 }
            let layers = LayerOrder.sorted(Array(Set(mine.map(\.key.layer))))
            let xs = mine.compactMap(\.meanDeltaL2)
            let logX = !xs.isEmpty && xs.allSatisfy { $0 > 0 } && (xs.max() ?? 1) / (xs.min() ?? 1) >= 10
            func series(_ value: (LVSGroupSummary) -> Double?) -> [LineSeries] {
                layers.map { layer in
                    LineSeries(name: "layer \(layer)", points: mine.filter { $0.key.layer == layer }.compactMap { s in
                        s.meanDeltaL2.map { ChartPoint(x: $0, y: value(s)) }
                    })
                }
            }
            let drop = LineChart(title: "Harmlessness drop vs perturbation: \(model) (\(attack))", xTitle: "Mean ‖δ‖₂",
                                 yTitle: "Mean S(y) − S(y′)", series: series(\.meanDrop), xScale: logX ? .log10 : .linear)
            figures.append(figure("drop-\(model)-\(attack)", "perturbation",
                                  "Mean harmlessness-score drop against the mean L2 norm of the perturbation, one line per layer (points are the epsilon budgets).",
                                  line: drop))
            if mine.contains(where: { $0.asrPerturbed != nil }) {
                let asr = LineChart(title: "ASR vs perturbation: \(model) (\(attack))", xTitle: "Mean ‖δ‖₂", yTitle: "Attack success rate",
                                    series: series(\.asrPerturbed), xScale: logX ? .log10 : .linear)
                figures.append(figure("asr-\(model)-\(attack)", "perturbation",
                                      "Attack success rate of perturbed generations against the mean L2 norm of the perturbation, one line per layer.",
                                      line: asr))
            }
        }
        // LVS along depth for numeric layer sweeps.
        let numeric = r.lvs.filter { Int($0.key.layer) != nil && $0.key.attack == r.lvsAttack }
        for eps in Array(Set(numeric.map(\.key.epsilon))).sorted() {
            var models: [String] = []
            for s in numeric where s.key.epsilon == eps && !models.contains(s.key.model) { models.append(s.key.model) }
            let series = models.map { m in
                LineSeries(name: m, points: numeric.filter { $0.key.model == m && $0.key.epsilon == eps }
                    .map { s in ChartPoint(x: Double(Int(s.key.layer) ?? 0), y: r.lvsStatistic.value(s),
                                           lower: r.lvsStatistic == .median ? s.medianCI?.lower : nil,
                                           upper: r.lvsStatistic == .median ? s.medianCI?.upper : nil) })
            }
            let chart = LineChart(title: "LVS by layer (ε = \(Format.number(eps)), \(r.lvsAttack))", xTitle: "Decoder block",
                                  yTitle: "LVS (\(r.lvsStatistic.rawValue))", series: series)
            figures.append(figure("lvs-by-layer-eps-\(Format.number(eps))", "perturbation",
                                  "Dataset LVS (\(r.lvsStatistic.rawValue)) per decoder block; η = \(Format.number(r.lvsEta)).", line: chart))
        }
        return figures
    }

    /// LVS bars per epsilon: Emb / Mid / Last for every model.
    static func lvsBars(_ r: ReportInputs) -> [Figure] {
        let table = LVSTable(summaries: r.lvs, attack: r.lvsAttack, statistic: r.lvsStatistic)
        var index: [LVSGroupKey: LVSGroupSummary] = [:]
        for s in r.lvs { index[s.key] = s }
        var figures: [Figure] = []
        for eps in Array(Set(table.rows.map(\.epsilon))).sorted() {
            let rows = table.rows.filter { $0.epsilon == eps }
            let series = rows.map { row -> BarSeries in
                let sums = table.layers.map { index[LVSGroupKey(model: row.model, layer: $0, epsilon: eps, attack: r.lvsAttack)] }
                let ci = r.lvsStatistic == .median
                return BarSeries(name: row.model, values: row.values, lower: ci ? sums.map { $0?.medianCI?.lower } : nil,
                                 upper: ci ? sums.map { $0?.medianCI?.upper } : nil)
            }
            let chart = BarChart(title: "LVS by depth (ε = \(Format.number(eps)), \(r.lvsAttack))", xTitle: "Layer",
                                 yTitle: "LVS (\(r.lvsStatistic.rawValue))", categories: table.columns, series: series)
            figures.append(figure("lvs-bars-eps-\(Format.number(eps))", "lvs-bars",
                                  "Dataset LVS (\(r.lvsStatistic.rawValue); η = \(Format.number(r.lvsEta)))\(r.lvsStatistic == .median ? " with bootstrap 95% CIs of the median" : "") at the embedding, middle and last layer.",
                                  bar: chart))
        }
        return figures
    }
}
