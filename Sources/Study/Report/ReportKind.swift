// `report` stage kind: one self-contained HTML study report plus each figure as SVG and CSV.
import Foundation
import Pipeline

/// The `report` kind: one self-contained HTML study report plus each figure as SVG and CSV.
public struct ReportKind: StageKind {
    public init() {}
    public var name: String { "report" }
    public var version: String { "1" }

    public static let inputNames = ["behavior", "probe", "sft", "pgd", "lvs", "judges", "extra"]

    /// What each input holds.
    static let inputDocs = [
        "behavior": "`behavior` artifacts (rates.json)", "probe": "`probe-eval` or `probe` artifacts (JSON files with an `auroc`)",
        "sft": "`sft` artifacts (evaluation curves)", "pgd": "`pgd` artifacts (records.jsonl), for LVS computed here",
        "lvs": "`lvs` artifacts (lvs_summary.json)", "judges": "`judge` artifacts (summary.json)",
        "extra": "artifacts listed only in the stage table",
    ]

    public static let kindDescription = """
        Builds one self-contained HTML study report from whatever upstream artifacts are given. Sections without \
        an input say "Not part of this study". Writes `report.html`, `figures/<id>.svg` and `.csv`, \
        `summary.txt`, `lvs_table.{csv,md,json}` and `report_inputs.json` (the typed inputs the report was built \
        from).
        """

    public var paramsSchema: ParamsSchema {
        ParamsSchema([
            ParamSpec("title", .string, default: .string("Behavioural safety evaluation vs latent vulnerability")),
            ParamSpec("subtitle", .string, default: .string("")),
            ParamSpec("statistic", .string, default: .string("mean"), choices: ["mean", "median"],
                      doc: "LVS aggregate in bars and table (paper: mean; release: median)"),
            ParamSpec("attack", .string, default: .string("targeted"), doc: "attack shown in LVS bars and table"),
            ParamSpec("score", .string, doc: "scorer for LVS computed from pgd records (default: first common score)"),
            ParamSpec("eta", .number, default: .double(LVSOptions.paperEta)),
            ParamSpec("behavior_judge", .string, doc: "judge whose rates the behaviour section shows (default: the first in rates.json)"),
        ])
    }

    public var inputs: InputsDeclaration {
        .named(Self.inputNames.map { InputSpec($0, required: false, multiple: true, doc: Self.inputDocs[$0] ?? "") })
    }

    public var outputs: OutputsDeclaration { .fixed(["report.html", "summary.txt", "lvs_table.csv", "lvs_table.md", "lvs_table.json", "report_inputs.json"]) }

    /// The typed report inputs of a stage context.
    static func inputs(_ context: StageContext) throws -> ReportInputs {
        let p = context.params
        func urls(_ n: String) throws -> [URL] { context.hasInput(n) ? try context.inputs(n) : [] }
        guard let statistic = LVSStatistic(rawValue: try p.string("statistic", default: "mean")) else {
            throw StudyError.invalidConfiguration("params.statistic: use mean or median")
        }
        let eta = try p.double("eta", default: LVSOptions.paperEta)
        var (lvs, lvsEta) = ReportArtifacts.lvs(try urls("lvs"))
        if lvs.isEmpty {
            let records = try ReportArtifacts.pgdRecords(try urls("pgd"))
            if !records.isEmpty {
                let common = PGDRecord.commonScores(records)
                let score = p.has("score") ? try p.string("score") : (common.first ?? "")
                guard common.contains(score) else {
                    throw StudyError.invalidConfiguration("params.score: '\(score)' is not a score of every pgd record; available: \(common.joined(separator: ", "))")
                }
                let opts = LVSOptions(eta: eta, seed: UInt64(bitPattern: Int64(context.seed)))
                lvs = try LVSKind.compute(records, score: score, norm: .delta, paper: opts, release: opts).paper
                lvsEta = eta
            }
        }
        let all = try Self.inputNames.flatMap { try urls($0) }
        return ReportInputs(title: try p.string("title", default: "Behavioural safety evaluation vs latent vulnerability"),
                            subtitle: try p.string("subtitle", default: ""),
                            behaviour: try ReportArtifacts.behaviour(try urls("behavior"), judge: p.has("behavior_judge") ? try p.string("behavior_judge") : nil),
                            probes: ReportArtifacts.probes(try urls("probe")),
                            fineTuning: try ReportArtifacts.fineTuning(try urls("sft")),
                            lvs: lvs, lvsEta: lvsEta ?? eta, lvsStatistic: statistic,
                            lvsAttack: try p.string("attack", default: "targeted"),
                            judgeDisagreement: try ReportArtifacts.judges(try urls("judges")),
                            stages: ReportArtifacts.stages(all))
    }

    public func run(_ context: StageContext) throws {
        let inputs = try Self.inputs(context)
        let report = HTMLReport(inputs: inputs)
        try report.write(to: context.outputDirectory)
        try AttackStageIO.write(StudySummary(inputs: inputs).text, to: context.output("summary.txt"))
        try AttackStageIO.write(try Format.json(inputs), to: context.output("report_inputs.json"))
        context.log("report: \(report.figures.count) figures, \(inputs.lvs.count) LVS groups, \(inputs.stages.count) stages")
        try context.writeMetrics(["figures": .int(report.figures.count), "lvs_groups": .int(inputs.lvs.count),
                                  "models_behaviour": .int(inputs.behaviour.count), "stages": .int(inputs.stages.count)])
    }
}
