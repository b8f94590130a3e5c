import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest
@testable import Study

/// Counts elements by name while checking that a document is well-formed XML.
private final class ElementCounter: NSObject, XMLParserDelegate {
    var counts: [String: Int] = [:]
    /// Text content per element (character callbacks joined until the element ends).
    var texts: [String] = []
    private var buffer = ""
    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
        counts[name, default: 0] += 1
        flush()
    }
    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) { flush() }
    func parser(_ parser: XMLParser, foundCharacters string: String) { buffer += string }
    private func flush() {
        let t = buffer.trimmingCharacters(in: .whitespacesAndNewlines)
        if !t.isEmpty { texts.append(t) }
        buffer = ""
    }

    static func parse(_ svg: String) throws -> ElementCounter {
        let c = ElementCounter()
        let p = XMLParser(data: Data(svg.utf8))
        p.delegate = c
        guard p.parse() else { throw NSError(domain: "xml", code: 1, userInfo: [NSLocalizedDescriptionKey: "\(p.parserError.map { "\($0)" } ?? "?")"]) }
        return c
    }
}

final class ReportTests: XCTestCase {
    func testLineChartSVG() throws {
        let chart = LineChart(title: "Drop <vs> size & more", xTitle: "Mean ‖δ‖₂", yTitle: "Drop", series: [
            LineSeries(name: "layer <mid>", points: [ChartPoint(x: 0.01, y: 0.2), ChartPoint(x: 0.1, y: 0.5, lower: 0.4, upper: 0.6), ChartPoint(x: 1, y: 0.9)]),
            LineSeries(name: "layer last", points: [ChartPoint(x: 0.01, y: 0.1), ChartPoint(x: 0.1, y: nil), ChartPoint(x: 1, y: 0.3)], dashed: true),
        ], xScale: .log10)
        let svg = chart.svg()
        XCTAssertTrue(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        let c = try ElementCounter.parse(svg)
        XCTAssertEqual(c.counts["polyline"], 1)          // the second series is broken by a nil into single points
        XCTAssertEqual(c.counts["circle"], 5)
        let text = c.texts.joined(separator: "|")
        XCTAssertTrue(text.contains("Drop <vs> size & more"))
        XCTAssertTrue(text.contains("Mean ‖δ‖₂"))
        XCTAssertTrue(text.contains("layer <mid>"))
        XCTAssertTrue(text.contains("0.01") && text.contains("0.1") && text.contains("|1|"), text)  // log ticks
        XCTAssertTrue(svg.contains("&lt;mid&gt;"))
        XCTAssertTrue(svg.contains("class=\"error-bar\""))
        XCTAssertFalse(svg.contains("<script"))
        let rows = try DelimitedParser().parse(chart.csv(), file: "c")
        XCTAssertEqual(rows.count, 7)
        XCTAssertEqual(rows[5].fields, ["layer last", "0.1", "", "", ""])
        // Empty charts still render valid SVG.
        XCTAssertNoThrow(try ElementCounter.parse(LineChart(title: "t", xTitle: "x", yTitle: "y", series: []).svg()))
    }

    func testBarChartSVG() throws {
        let chart = BarChart(title: "LVS", xTitle: "Layer", yTitle: "LVS", categories: ["Emb", "Mid", "Last"], series: [
            BarSeries(name: "base", values: [4.9, 3.5, 0], lower: [4, 3, 0], upper: [5.5, 4, 0]),
            BarSeries(name: "dissociated", values: [2, nil, -1]),
        ])
        let svg = chart.svg()
        let c = try ElementCounter.parse(svg)
        XCTAssertEqual(c.counts["rect"], 6)  // background + 5 bars
        XCTAssertEqual(svg.components(separatedBy: "class=\"bar\"").count - 1, 5)
        XCTAssertEqual(svg.components(separatedBy: "class=\"error-bar\"").count - 1, 3)
        XCTAssertTrue(c.texts.contains("n/a"))
        XCTAssertTrue(c.texts.contains("Emb") && c.texts.contains("Last") && c.texts.contains("dissociated"))
        XCTAssertTrue(c.texts.contains("Layer") && c.texts.contains("LVS"))
        XCTAssertTrue(c.texts.contains("-2") || c.texts.contains("-1"), "\(c.texts)")  // axis extends below zero
        let rows = try DelimitedParser().parse(chart.csv(), file: "b")
        XCTAssertEqual(rows.count, 7)
        XCTAssertEqual(rows[1].fields, ["Emb", "base", "4.9", "4", "5.5"])
    }

    func testNiceTicks() {
        XCTAssertEqual(NiceTicks.step(lo: 0, hi: 1, count: 5), 0.2)
        XCTAssertEqual(NiceTicks.step(lo: 0, hi: 230, count: 5), 50)
        let axis = AxisMapper(values: [0.13, 0.87], scale: .linear, pixelLo: 0, pixelHi: 100)
        XCTAssertEqual(axis.ticks().map(\.label), ["0", "0.2", "0.4", "0.6", "0.8", "1.0"])
        XCTAssertEqual(Markup.escape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;")
    }

    func testJudgeDisagreement() {
        let j = [
            Judgement(label: .unsafe, members: [MemberVote(judge: "a", label: .unsafe), MemberVote(judge: "b", label: .unsafe), MemberVote(judge: "c", label: .safe)]),
            Judgement(label: .safe, members: [MemberVote(judge: "a", label: .safe), MemberVote(judge: "b", label: .safe), MemberVote(judge: "c", label: .safe)]),
            Judgement(label: .safe, members: [MemberVote(judge: "a", label: .safe), MemberVote(judge: "b", label: .invalid), MemberVote(judge: "c", label: .safe)]),
        ]
        let d = JudgeDisagreement(name: "base", judgements: j)
        XCTAssertEqual(d.judges, ["a", "b", "c"])
        XCTAssertEqual(d.items, 3)
        XCTAssertEqual(d.disagreements, 1)
        XCTAssertEqual(d.labelCounts["b"], ["unsafe": 1, "safe": 1, "invalid": 1])
        XCTAssertEqual(d.pairs.map(\.compared), [2, 3, 2])       // ab, ac, bc
        XCTAssertEqual(d.pairs.map(\.agreed), [2, 2, 1])
    }

    private func sampleInputs() -> ReportInputs {
        let harmful = (0..<10).map { JudgedResponse(source: "harmbench", type: .harmfulDirect, label: $0 < 8 ? .refusal : .compliance) }
        let benign = (0..<4).map { JudgedResponse(source: "xstest", type: .overRefusal, label: $0 == 0 ? .refusal : .compliance) }
        let lvs = makeSummaries([("base", "embedding", 0.001, 4.9), ("base", "mid", 0.001, 3.5), ("base", "last", 0.001, 0.2),
                                 ("dissociated <x>", "embedding", 0.001, 2.0), ("dissociated <x>", "mid", 0.001, 9.0),
                                 ("base", "mid", 0.005, 1.0), ("base", "3", 0.001, 2.5), ("base", "7", 0.001, 4.5)])
        let judgements = [Judgement(label: .unsafe, members: [MemberVote(judge: "llama-guard", label: .unsafe), MemberVote(judge: "qwen", label: .safe)])]
        return ReportInputs(
            title: "Audit <report> & friends", subtitle: "run 2026-01-01",
            behaviour: [ModelBehaviour(model: "base", rates: BehaviourRates.table(harmful + benign)),
                        ModelBehaviour(model: "dissociated <x>", rates: BehaviourRates.table(harmful))],
            probes: [ProbeSummary(model: "base", auroc: 0.92, gap: 0.6, count: 200), ProbeSummary(model: "dissociated <x>", auroc: 0.74, gap: 0.1, count: 200)],
            fineTuning: [FineTuneCurve(model: "base", points: [FineTunePoint(epoch: 0, compliance: 0.05, refusal: 0.95), FineTunePoint(epoch: 1, compliance: 0.3, refusal: 0.7)]),
                         FineTuneCurve(model: "dissociated <x>", points: [FineTunePoint(epoch: 0, compliance: 0.05, refusal: 0.9), FineTunePoint(epoch: 1, compliance: 0.8, refusal: 0.2)])],
            lvs: lvs, judgeDisagreement: [JudgeDisagreement(name: "base / harmbench", judgements: judgements)],
            stages: [StageRecord(name: "eval-prep", kind: "study.eval-prep", parameters: ["min_length": "10"], artifacts: ["suite": "sha256:abcd"])])
    }

    func testHTMLReportHasEverySection() throws {
        let report = HTMLReport(inputs: sampleInputs())
        let html = report.html()
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"))
        for (id, heading) in HTMLReport.sections {
            XCTAssertTrue(html.contains("<section id=\"\(id)\">"), id)
            XCTAssertTrue(html.contains(Markup.escape(heading)), heading)
        }
        XCTAssertFalse(html.contains("<script"))
        XCTAssertFalse(html.contains("dissociated <x>"))                  // escaped everywhere
        XCTAssertTrue(html.contains("dissociated &lt;x&gt;"))
        XCTAssertTrue(html.contains("<title>Audit &lt;report&gt; &amp; friends</title>"))
        XCTAssertFalse(html.contains("Not part of this study"))
        let ids = report.figures.map(\.id)
        XCTAssertEqual(Set(report.figures.map(\.section)), ["behaviour", "fine-tuning", "perturbation", "lvs-bars"])
        XCTAssertTrue(ids.contains("behaviour-refusal-rates"))
        XCTAssertTrue(ids.contains("probe-auroc-gap"))
        XCTAssertTrue(ids.contains("lvs-bars-eps-0-001"))
        XCTAssertTrue(ids.contains("lvs-by-layer-eps-0-001"))
        XCTAssertEqual(html.components(separatedBy: "<svg ").count - 1, report.figures.count)
        for f in report.figures { XCTAssertNoThrow(try ElementCounter.parse(f.svg), f.id) }
        // Table rows: behaviour (base 4 groups + dissociated 3 groups... table() adds all-harmful/all-benign), probe, LVS.
        XCTAssertTrue(html.contains("<td>80.0% [49.0, 94.3]</td>"), "Wilson CI of 8/10 in percent")
        XCTAssertTrue(html.contains("<td>0.920</td>"))
        XCTAssertTrue(html.contains("<tr><td>base</td><td>4.900</td><td>3.500</td><td>0.200</td></tr>"))
        XCTAssertTrue(html.contains("<td>study.eval-prep</td><td>min_length=10</td><td>suite: sha256:abcd</td>"))
        XCTAssertTrue(html.contains("members disagree on 1"))
    }

    func testEmptyReportShowsNoDataSections() {
        let html = HTMLReport(inputs: ReportInputs(title: "empty")).html()
        XCTAssertEqual(html.components(separatedBy: "Not part of this study").count - 1, HTMLReport.sections.count)
    }

    func testReportWritesFiles() throws {
        let dir = try Fixture.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let report = HTMLReport(inputs: sampleInputs())
        try report.write(to: dir)
        let fm = FileManager.default
        XCTAssertTrue(fm.fileExists(atPath: dir.appendingPathComponent("report.html").path))
        for name in ["lvs_table.csv", "lvs_table.md", "lvs_table.json"] { XCTAssertTrue(fm.fileExists(atPath: dir.appendingPathComponent(name).path), name) }
        for f in report.figures {
            let svg = try String(contentsOf: dir.appendingPathComponent("figures/\(f.id).svg"), encoding: .utf8)
            XCTAssertEqual(svg, f.svg)
            XCTAssertTrue(fm.fileExists(atPath: dir.appendingPathComponent("figures/\(f.id).csv").path))
        }
    }
}
