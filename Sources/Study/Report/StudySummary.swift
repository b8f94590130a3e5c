// StudySummary: the one-screen text summary of a study report (printed by `auditgap run`).
import Foundation

/// A plain-text summary of `ReportInputs`: harmful refusal and benign over-refusal rates per
/// model (first judge), the audit probe's AUROC and calibrated gap per model, and the LVS table.
/// The `report` kind writes it as `summary.txt`; `auditgap run` prints the summary.txt of the
/// pipeline's final stages.
public struct StudySummary {
    public let inputs: ReportInputs

    public init(inputs: ReportInputs) { self.inputs = inputs }

    static func pct(_ p: Proportion?) -> String {
        guard let p, let r = p.rate, let lo = p.lower, let hi = p.upper else { return "–" }
        return String(format: "%5.1f%% [%4.1f, %5.1f]", r * 100, lo * 100, hi * 100)
    }

    static func num(_ v: Double?) -> String { v.map { String(format: "%.3f", $0) } ?? "–" }

    static func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }

    /// `text` broken into lines of at most `width` characters at spaces.
    static func wrap(_ text: String, width: Int) -> String {
        var lines: [String] = [], line = ""
        for word in text.split(separator: " ") {
            if !line.isEmpty && line.count + 1 + word.count > width { lines.append(line); line = "" }
            line += (line.isEmpty ? "" : " ") + word
        }
        if !line.isEmpty { lines.append(line) }
        return lines.joined(separator: "\n")
    }

    /// The summary text.
    public var text: String {
        var out = inputs.title + "\n"
        if !inputs.subtitle.isEmpty { out += Self.wrap(inputs.subtitle, width: 100) + "\n" }
        if !inputs.behaviour.isEmpty {
            out += "\nBehaviour (lexical judge; 95% Wilson intervals)\n"
            out += Self.pad("model", 24) + Self.pad("harmful refused", 26) + Self.pad("harmful complied", 26) + "benign over-refused\n"
            for b in inputs.behaviour {
                let harmful = b.rates.first { $0.group == "all-harmful" }
                let benign = b.rates.first { $0.group == "all-benign" }
                out += Self.pad(b.model, 24) + Self.pad(Self.pct(harmful?.refusal), 26) + Self.pad(Self.pct(harmful?.compliance), 26)
                    + Self.pct(benign?.overRefusal) + "\n"
            }
        }
        if !inputs.probes.isEmpty {
            out += "\nAudit probe (fixed, trained on the base model's states)\n"
            out += Self.pad("model", 24) + Self.pad("AUROC", 10) + Self.pad("gap", 10) + "items\n"
            for p in inputs.probes {
                out += Self.pad(p.model, 24) + Self.pad(Self.num(p.auroc), 10) + Self.pad(Self.num(p.gap), 10) + "\(p.count)\n"
            }
        }
        if !inputs.fineTuning.isEmpty {
            out += "\nFine-tuning curves (compliance / refusal at first -> last evaluation)\n"
            for c in inputs.fineTuning {
                guard let a = c.points.first, let z = c.points.last else { continue }
                out += Self.pad(c.model, 24) + "compliance \(Self.num(a.compliance)) -> \(Self.num(z.compliance)), refusal \(Self.num(a.refusal)) -> \(Self.num(z.refusal)) (epoch \(Self.num(a.epoch)) -> \(Self.num(z.epoch)))\n"
            }
        }
        if !inputs.lvs.isEmpty {
            out += "\n" + LVSTable(summaries: inputs.lvs, attack: inputs.lvsAttack, statistic: inputs.lvsStatistic).markdown()
        }
        return out
    }
}
