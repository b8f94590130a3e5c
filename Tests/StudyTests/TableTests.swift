import Foundation
import XCTest
@testable import Study

/// Builds LVS group summaries whose mean is `value` (one observation with log1p(norm) = 1).
func makeSummaries(_ spec: [(model: String, layer: String, eps: Double, value: Double)], attack: String = "pgd") -> [LVSGroupSummary] {
    let d = exp(1.0) - 1
    let obs = spec.map { LVSObservation(key: LVSGroupKey(model: $0.model, layer: $0.layer, epsilon: $0.eps, attack: attack),
                                        cleanScore: $0.value * (1 + 1e-6), perturbedScore: 0, deltaL2: d) }
    return LatentVulnerability.summarize(obs, options: LVSOptions(bootstrapResamples: 50))
}

final class TableTests: XCTestCase {
    func testTable1Layout() throws {
        let s = makeSummaries([("base", "embedding", 0.001, 4.914), ("base", "mid", 0.001, 3.483), ("base", "last", 0.001, 0),
                               ("dolphin", "embedding", 0.001, 17.875), ("dolphin", "last", 0.001, 201.19),
                               ("base", "mid", 0.005, 1.5)])
            + LatentVulnerability.summarize([], expected: [LVSGroupKey(model: "dolphin", layer: "mid", epsilon: 0.001, attack: "pgd")])
            + makeSummaries([("base", "mid", 0.001, 99)], attack: "random")
        let t = LVSTable(summaries: s)
        XCTAssertEqual(t.rows.count, 4)  // 2 epsilons x 2 models
        XCTAssertEqual(t.rows[0].model, "base")
        XCTAssertEqual(t.rows[0].values[0]!, 4.914, accuracy: 1e-9)
        XCTAssertNil(t.rows[1].values[1])          // dolphin mid: empty group
        XCTAssertEqual(t.rows[1].counts, [1, 0, 1])
        XCTAssertEqual(t.rows[2].epsilon, 0.005)
        let csv = try DelimitedParser().parse(t.csv(), file: "t.csv")
        XCTAssertEqual(csv[0].fields, ["model", "epsilon", "Emb", "Mid", "Last", "n_Emb", "n_Mid", "n_Last"])
        XCTAssertEqual(csv[2].fields[0...4].map { $0 }, ["dolphin", "0.001", "17.875", "", "201.19"])
        let md = t.markdown()
        XCTAssertTrue(md.contains("### epsilon = 0.001"))
        XCTAssertTrue(md.contains("| base | 4.914 | 3.483 | 0.000 |"), md)
        XCTAssertTrue(md.contains("| dolphin | 17.875 | – | 201.190 |"), md)
        let json = String(decoding: try t.json(), as: UTF8.self)
        XCTAssertTrue(json.contains("null"))
        XCTAssertEqual(try JSONDecoder().decode(LVSTable.self, from: t.json()), t)
    }

    func testLayerCurves() throws {
        let s = makeSummaries([("base", "2", 0.001, 2), ("base", "embedding", 0.001, 1), ("base", "10", 0.001, 3),
                               ("diss", "0", 0.001, 5)])
        let c = LayerCurves(summaries: s)
        XCTAssertEqual(c.series.count, 2)
        XCTAssertEqual(c.series[0].points.map(\.layer), ["embedding", "2", "10"])
        let rows = try DelimitedParser().parse(c.csv(), file: "c")
        XCTAssertEqual(rows.count, 5)
        XCTAssertEqual(rows[1].fields[3], "embedding")
        XCTAssertTrue(c.markdown().contains("### base ε=0.001 pgd"))
        XCTAssertEqual(LayerOrder.sorted(["last", "mid", "3", "embedding", "12", "x"]), ["embedding", "3", "12", "mid", "last", "x"])
    }
}
