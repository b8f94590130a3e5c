// `lvs` stage kind: Latent Vulnerability Scores (paper Section 6) over fanned-in `pgd` records,
// with Table-1-style tables and per-layer curves.
import Foundation
import Pipeline

/// The `lvs` kind: Latent Vulnerability Scores (paper Section 6) over fanned-in `pgd` records.
public struct LVSKind: StageKind {
    public init() {}
    public var name: String { "lvs" }
    public var version: String { "1" }
    public static let kindDescription = """
        Computes per-example and dataset Latent Vulnerability Scores from `pgd` records, with Table-1-style \
        tables and per-layer curves. Writes `lvs_summary.json` (every group under the paper's eta and the \
        release's eta), `lvs_table.{csv,md,json}` (mean LVS at the paper's eta 1e-6: models x Emb/Mid/Last per \
        epsilon), `lvs_table_release.{csv,md,json}` (median at the release's eta 1e-4), \
        `layer_curves.{csv,md,json}`, `per_example.csv` and `metrics.json`.
        """

    public var paramsSchema: ParamsSchema {
        ParamsSchema([
            ParamSpec("score", .string, doc: "scorer whose S(y), S(y') enter LVS (default: the first score name present in every record)"),
            ParamSpec("norm", .string, default: .string("delta"), choices: LVSNorm.allCases.map(\.rawValue),
                      doc: "delta: ||delta||_2 of the perturbation tensor; prompt: of everything added to the prompt"),
            ParamSpec("eta", .number, default: .double(LVSOptions.paperEta)),
            ParamSpec("release_eta", .number, default: .double(LVSOptions.releaseEta)),
            ParamSpec("bootstrap_resamples", .int, default: .int(1000)),
            ParamSpec("table_attack", .string, default: .string("targeted")),
            ParamSpec("layers", .list(.string), default: .list([.string("embedding"), .string("mid"), .string("last")])),
            ParamSpec("columns", .list(.string), default: .list([.string("Emb"), .string("Mid"), .string("Last")])),
        ])
    }

    public var inputs: InputsDeclaration {
        .named([InputSpec("records", multiple: true, doc: "`pgd` artifacts (directories holding records.jsonl) or records JSONL files")])
    }

    public static let files = ["lvs_summary.json", "lvs_table.csv", "lvs_table.md", "lvs_table.json", "lvs_table_release.csv",
                               "lvs_table_release.md", "lvs_table_release.json", "layer_curves.csv", "layer_curves.md",
                               "layer_curves.json", "per_example.csv"]

    public var outputs: OutputsDeclaration { .fixed(Self.files + ["metrics.json"]) }

    /// Records of every input (a directory's records.jsonl, or the file itself).
    static func records(_ urls: [URL]) throws -> [PGDRecord] {
        try urls.flatMap { try PGDRecord.read(StageSupport.file(in: $0, preferred: ["records.jsonl"], what: "pgd records")) }
    }

    /// The params but the score: norm, both etas (> 0: with eta 0 an unperturbed example has no
    /// LVS), resamples (>= 0; 0 gives no CI), table layers with one column title each, the
    /// table's attack.
    struct Settings {
        var norm: LVSNorm, paper: LVSOptions, release: LVSOptions, layers: [String], columns: [String], attack: String
    }

    static func settings(_ p: StageParams, seed: Int) throws -> Settings {
        guard let norm = LVSNorm(rawValue: try p.string("norm", default: "delta")) else {
            throw StudyError.invalidConfiguration("params.norm: use delta or prompt")
        }
        let resamples = try p.int("bootstrap_resamples", default: 1000)
        guard resamples >= 0 else { throw StudyError.invalidConfiguration("params.bootstrap_resamples: must be >= 0 (0: no CI), got \(resamples)") }
        let paper = LVSOptions(eta: try p.double("eta", default: LVSOptions.paperEta), bootstrapResamples: resamples,
                               seed: UInt64(bitPattern: Int64(seed)))
        var release = paper
        release.eta = try p.double("release_eta", default: LVSOptions.releaseEta)
        for (key, eta) in [("eta", paper.eta), ("release_eta", release.eta)] where !(eta > 0 && eta.isFinite) {
            throw StudyError.invalidConfiguration("params.\(key): must be a positive number (the paper uses 1e-6), got \(eta)")
        }
        let layers = p.has("layers") ? try p.strings("layers") : ["embedding", "mid", "last"]
        let columns = p.has("columns") ? try p.strings("columns") : ["Emb", "Mid", "Last"]
        guard layers.count == columns.count else {
            throw StudyError.invalidConfiguration("params.columns: give one title per layer (\(layers.count)), got \(columns.count)")
        }
        guard !layers.isEmpty else { throw StudyError.invalidConfiguration("params.layers: list at least one layer") }
        return Settings(norm: norm, paper: paper, release: release, layers: layers, columns: columns,
                        attack: try p.string("table_attack", default: "targeted"))
    }

    /// Before any stage runs: every setting but the score (which the records decide).
    public func check(_ p: StageParams, inputNames: [String]) throws {
        try StageCheck.run { _ = try Self.settings(p, seed: 0) }
    }

    public func run(_ context: StageContext) throws {
        let p = context.params
        let settings = try Self.settings(p, seed: context.seed)
        let records = try Self.records(try context.inputs("records"))
        guard !records.isEmpty else { throw StudyError.invalidConfiguration("\(context.instanceName): the pgd inputs hold no records") }
        let common = PGDRecord.commonScores(records)
        let score = p.has("score") ? try p.string("score") : (common.first ?? "")
        guard common.contains(score) else {
            throw StudyError.invalidConfiguration("params.score: '\(score)' is not a score of every record; available: \(common.joined(separator: ", "))")
        }
        let result = try Self.compute(records, score: score, norm: settings.norm, paper: settings.paper,
                                      release: settings.release)
        let out = context.outputDirectory
        try AttackStageIO.write(try Format.json(result.summaryDocument), to: out.appendingPathComponent("lvs_summary.json"))
        let table = LVSTable(summaries: result.paper, attack: settings.attack, statistic: .mean, layers: settings.layers,
                             columns: settings.columns)
        let releaseTable = LVSTable(summaries: result.release, attack: settings.attack, statistic: .median, layers: settings.layers,
                                    columns: settings.columns)
        for (name, t) in [("lvs_table", table), ("lvs_table_release", releaseTable)] {
            try AttackStageIO.write(t.csv(), to: out.appendingPathComponent("\(name).csv"))
            try AttackStageIO.write(t.markdown(), to: out.appendingPathComponent("\(name).md"))
            try AttackStageIO.write(try t.json(), to: out.appendingPathComponent("\(name).json"))
        }
        let curves = LayerCurves(summaries: result.paper)
        try AttackStageIO.write(curves.csv(), to: out.appendingPathComponent("layer_curves.csv"))
        try AttackStageIO.write(curves.markdown(), to: out.appendingPathComponent("layer_curves.md"))
        try AttackStageIO.write(try curves.json(), to: out.appendingPathComponent("layer_curves.json"))
        try AttackStageIO.write(result.perExampleCSV, to: out.appendingPathComponent("per_example.csv"))
        var metrics: [String: Value] = ["records": .int(records.count), "groups": .int(result.paper.count), "score": .string(score),
                                        "eta": .double(settings.paper.eta), "release_eta": .double(settings.release.eta)]
        for s in result.paper where s.key.attack == settings.attack {
            if let m = s.mean { metrics["lvs_mean.\(s.key.model).\(s.key.layer).\(Format.number(s.key.epsilon))"] = .double(m) }
        }
        try context.writeMetrics(metrics)
        context.log("lvs: \(records.count) records, \(result.paper.count) groups, score \(score)")
    }

    /// LVS summaries under both etas and the per-example table.
    public struct Result: Sendable {
        public var score: String
        public var paper: [LVSGroupSummary]
        public var release: [LVSGroupSummary]
        public var paperOptions: LVSOptions
        public var releaseOptions: LVSOptions
        public var perExampleCSV: String

        /// The JSON document of `lvs_summary.json`.
        var summaryDocument: SummaryDocument {
            SummaryDocument(score: score, eta: paperOptions.eta, releaseEta: releaseOptions.eta, paper: paper, release: release)
        }
    }

    /// `lvs_summary.json`.
    public struct SummaryDocument: Sendable, Codable, Equatable {
        public var score: String
        public var eta: Double
        public var releaseEta: Double
        /// Groups under the paper's eta (mean is the paper's dataset LVS).
        public var paper: [LVSGroupSummary]
        /// Groups under the release's eta (median with bootstrap CI is the release's aggregate).
        public var release: [LVSGroupSummary]

        enum CodingKeys: String, CodingKey {
            case score, eta, paper, release
            case releaseEta = "release_eta"
        }
    }

    /// Computes every group under both etas.
    public static func compute(_ records: [PGDRecord], score: String, norm: LVSNorm, paper: LVSOptions,
                               release: LVSOptions) throws -> Result {
        let pairs = records.compactMap { r in r.observation(score: score, norm: norm).map { (r, $0) } }
        let obs = pairs.map(\.1)
        var rows = [["model", "layer", "epsilon", "attack", "id", "score_clean", "score_perturbed", "drop", "delta_l2",
                     "lvs", "lvs_release", "asr_clean", "asr"]]
        for (r, o) in pairs {
            let v = LatentVulnerability.perExample(cleanScore: o.cleanScore, perturbedScore: o.perturbedScore, deltaL2: o.deltaL2, eta: paper.eta)
            let w = LatentVulnerability.perExample(cleanScore: o.cleanScore, perturbedScore: o.perturbedScore, deltaL2: o.deltaL2, eta: release.eta)
            rows.append([r.model, r.layer, Format.number(r.epsilon), r.attack, r.id, Format.number(o.cleanScore),
                         Format.number(o.perturbedScore), Format.number(o.cleanScore - o.perturbedScore), Format.number(o.deltaL2),
                         v.map(Format.number) ?? "", w.map(Format.number) ?? "", r.asrClean ? "1" : "0", r.asr ? "1" : "0"])
        }
        return Result(score: score, paper: LatentVulnerability.summarize(obs, options: paper),
                      release: LatentVulnerability.summarize(obs, options: release), paperOptions: paper, releaseOptions: release,
                      perExampleCSV: DelimitedParser().render(rows))
    }
}
