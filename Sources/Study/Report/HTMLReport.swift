// HTMLReport: assembles one self-contained HTML file (inline SVG, inline CSS, no scripts).
import Foundation

/// The study report: sections in a fixed order, each present even without data.
public struct HTMLReport: Sendable {
    /// Section ids and headings, in order.
    public static let sections: [(id: String, heading: String)] = [
        ("behaviour", "Behavioural refusal rates and audit probe"),
        ("fine-tuning", "Compliance and refusal under harmful fine-tuning"),
        ("perturbation", "Harmlessness drop and ASR under latent perturbation"),
        ("lvs-bars", "Latent Vulnerability Score by depth"),
        ("lvs-table", "LVS table"),
        ("judges", "Judge disagreement"),
        ("stages", "Stage parameters and artifact keys"),
    ]

    /// The inputs.
    public var inputs: ReportInputs
    /// The figures built from them.
    public let figures: [Figure]

    /// A report of `inputs`.
    public init(inputs: ReportInputs) {
        self.inputs = inputs
        figures = ReportFigures.all(inputs)
    }

    /// The LVS table shown in the report.
    public var lvsTable: LVSTable { LVSTable(summaries: inputs.lvs, attack: inputs.lvsAttack, statistic: inputs.lvsStatistic) }

    /// The whole report as one HTML document.
    public func html() -> String {
        var h = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(esc(inputs.title))</title>
        <style>
        body { font-family: Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; line-height: 1.45; padding: 0 1em; }
        h1 { font-size: 1.7em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
        table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
        th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
        th:first-child, td:first-child { text-align: left; } th { background: #f3f3f3; }
        figure { margin: 1.2em 0; } figcaption { font-size: 0.9em; color: #555; max-width: 760px; }
        .nodata { color: #777; font-style: italic; } nav a { margin-right: 1em; } code { font-size: 0.9em; }
        </style>
        </head>
        <body>
        <h1>\(esc(inputs.title))</h1>

        """
        if !inputs.subtitle.isEmpty { h += "<p class=\"subtitle\">\(esc(inputs.subtitle))</p>\n" }
        h += "<nav>" + Self.sections.map { "<a href=\"#\($0.id)\">\(esc($0.heading))</a>" }.joined() + "</nav>\n"
        for (id, heading) in Self.sections {
            h += "<section id=\"\(id)\">\n<h2>\(esc(heading))</h2>\n"
            h += body(of: id)
            for f in figures where f.section == id {
                h += "<figure id=\"fig-\(f.id)\">\n\(f.svg)<figcaption>\(esc(f.caption)) Data: <code>\(esc(f.id)).csv</code></figcaption>\n</figure>\n"
            }
            h += "</section>\n"
        }
        return h + "</body>\n</html>\n"
    }

    /// Writes `report.html`, each figure as `figures/<id>.svg` and `.csv`, and the LVS table as
    /// `lvs_table.csv`, `.md` and `.json` into `directory`.
    public func write(to directory: URL) throws {
        let fm = FileManager.default
        let figDir = directory.appendingPathComponent("figures")
        do { try fm.createDirectory(at: figDir, withIntermediateDirectories: true) } catch {
            throw StudyError.writeFailed(path: figDir.path, reason: error.localizedDescription)
        }
        func put(_ data: Data, _ url: URL) throws {
            do { try data.write(to: url, options: .atomic) } catch { throw StudyError.writeFailed(path: url.path, reason: error.localizedDescription) }
        }
        try put(Data(html().utf8), directory.appendingPathComponent("report.html"))
        for f in figures {
            try put(Data(f.svg.utf8), figDir.appendingPathComponent("\(f.id).svg"))
            try put(Data(f.csv.utf8), figDir.appendingPathComponent("\(f.id).csv"))
        }
        let t = lvsTable
        try put(Data(t.csv().utf8), directory.appendingPathComponent("lvs_table.csv"))
        try put(Data(t.markdown().utf8), directory.appendingPathComponent("lvs_table.md"))
        try put(try t.json(), directory.appendingPathComponent("lvs_table.json"))
    }

    // MARK: - Section bodies

    private func esc(_ s: String) -> String { Markup.escape(s) }

    private func num(_ v: Double?, _ digits: Int = 3) -> String {
        v.map { String(format: "%.\(digits)f", $0) } ?? "–"
    }

    private func pct(_ p: Proportion) -> String {
        guard let r = p.rate, let lo = p.lower, let hi = p.upper else { return "–" }
        return String(format: "%.1f%% [%.1f, %.1f]", r * 100, lo * 100, hi * 100)
    }

    private func table(_ header: [String], _ rows: [[String]]) -> String {
        var s = "<table>\n<thead><tr>" + header.map { "<th>\(esc($0))</th>" }.joined() + "</tr></thead>\n<tbody>\n"
        for r in rows { s += "<tr>" + r.map { "<td>\(esc($0))</td>" }.joined() + "</tr>\n" }
        return s + "</tbody>\n</table>\n"
    }

    private let noData = "<p class=\"nodata\">Not part of this study (no input for this section in this run).</p>\n"

    private func body(of id: String) -> String {
        switch id {
        case "behaviour": return behaviourBody()
        case "fine-tuning":
            guard !inputs.fineTuning.isEmpty else { return noData }
            let rows = inputs.fineTuning.flatMap { c in c.points.map { [c.model, Format.number($0.epoch), num($0.compliance), num($0.refusal), num($0.empty)] } }
            return table(["Model", "Epoch", "Compliance", "Refusal", "Empty"], rows)
        case "perturbation":
            guard !inputs.lvs.isEmpty else { return noData }
            let rows = inputs.lvs.map { s in
                [s.key.model, s.key.layer, Format.number(s.key.epsilon), s.key.attack, String(s.count), num(s.meanDrop),
                 num(s.meanDeltaL2, 4), num(s.asrClean), num(s.asrPerturbed), num(s.asrLVS)]
            }
            return table(["Model", "Layer", "ε", "Attack", "n", "Mean drop", "Mean ‖δ‖₂", "ASR clean", "ASR perturbed", "LVS (ASR)"], rows)
        case "lvs-bars":
            return inputs.lvs.isEmpty ? noData : "<p>LVS = [S(y) − S(y′)]₊ / (log(1 + ‖δ‖₂) + η), η = \(esc(Format.number(inputs.lvsEta))); statistic: \(esc(inputs.lvsStatistic.rawValue)).</p>\n"
        case "lvs-table": return lvsTableBody()
        case "judges": return judgesBody()
        case "stages":
            guard !inputs.stages.isEmpty else { return noData }
            let rows = inputs.stages.map { s in
                [s.name, s.kind, s.parameters.keys.sorted().map { "\($0)=\(s.parameters[$0] ?? "")" }.joined(separator: "; "),
                 s.artifacts.keys.sorted().map { "\($0): \(s.artifacts[$0] ?? "")" }.joined(separator: "; ")]
            }
            return table(["Stage", "Kind", "Parameters", "Artifacts"], rows)
        default: return ""
        }
    }

    private func behaviourBody() -> String {
        guard !inputs.behaviour.isEmpty || !inputs.probes.isEmpty else { return noData }
        var s = ""
        if !inputs.behaviour.isEmpty {
            let rows = inputs.behaviour.flatMap { m in
                m.rates.map { r in [m.model, r.group, String(r.count), pct(r.refusal), pct(r.compliance), pct(r.empty), pct(r.overRefusal)] }
            }
            s += table(["Model", "Group", "n", "Refusal (95% CI)", "Compliance", "Empty", "Over-refusal"], rows)
        }
        if !inputs.probes.isEmpty {
            s += "<h3>Audit probe</h3>\n"
            s += table(["Model", "n", "AUROC", "Calibrated gap"], inputs.probes.map { [$0.model, String($0.count), num($0.auroc), num($0.gap)] })
        }
        return s
    }

    private func lvsTableBody() -> String {
        let t = lvsTable
        guard !t.rows.isEmpty else { return noData }
        var s = "<p>Rows: models; columns: layers; \(esc(t.statistic.rawValue)) LVS under attack <code>\(esc(t.attack))</code>. Also written as <code>lvs_table.csv</code>, <code>.md</code>, <code>.json</code>.</p>\n"
        for eps in Array(Set(t.rows.map(\.epsilon))).sorted() {
            s += "<h3>ε = \(esc(Format.number(eps)))</h3>\n"
            s += table(["Model"] + t.columns, t.rows.filter { $0.epsilon == eps }.map { r in [r.model] + r.values.map { num($0) } })
        }
        return s
    }

    private func judgesBody() -> String {
        guard !inputs.judgeDisagreement.isEmpty else { return noData }
        var s = ""
        for d in inputs.judgeDisagreement {
            let rate = d.items > 0 ? String(format: "%.1f%%", 100 * Double(d.disagreements) / Double(d.items)) : "–"
            s += "<h3>\(esc(d.name))</h3>\n<p>\(d.items) items; members disagree on \(d.disagreements) (\(rate)).</p>\n"
            let labels = Array(Set(d.labelCounts.values.flatMap(\.keys))).sorted()
            s += table(["Judge"] + labels, d.judges.map { j in [j] + labels.map { String(d.labelCounts[j]?[$0] ?? 0) } })
            if !d.pairs.isEmpty {
                s += table(["Judge A", "Judge B", "Compared", "Agreement"],
                           d.pairs.map { [$0.a, $0.b, String($0.compared), $0.rate.map { String(format: "%.1f%%", $0 * 100) } ?? "–"] })
            }
        }
        return s
    }
}
