// ReportInputs: the typed data an HTML report is assembled from.
import Foundation

/// Audit-probe metrics of one model (paper Section 3 / Figure 7).
public struct ProbeSummary: Sendable, Codable, Equatable {
    /// Model name.
    public var model: String
    /// AUROC on held-out safe/unsafe responses.
    public var auroc: Double?
    /// Calibrated gap (mean sigmoid unsafe - mean sigmoid safe).
    public var gap: Double?
    /// Items evaluated.
    public var count: Int

    /// A summary.
    public init(model: String, auroc: Double?, gap: Double?, count: Int) {
        self.model = model
        self.auroc = auroc
        self.gap = gap
        self.count = count
    }
}

/// Behavioural rates of one model.
public struct ModelBehaviour: Sendable, Codable, Equatable {
    /// Model name.
    public var model: String
    /// Rates per source and the `all-harmful` / `all-benign` groups.
    public var rates: [BehaviourRates]

    /// Rates of a model.
    public init(model: String, rates: [BehaviourRates]) {
        self.model = model
        self.rates = rates
    }
}

/// Judged behaviour at one point of harmful fine-tuning.
public struct FineTunePoint: Sendable, Codable, Equatable {
    /// Epoch (fractional for evaluations every N steps).
    public var epoch: Double
    /// Compliance rate.
    public var compliance: Double?
    /// Refusal rate.
    public var refusal: Double?
    /// Empty-response rate.
    public var empty: Double?

    /// A point.
    public init(epoch: Double, compliance: Double?, refusal: Double?, empty: Double? = nil) {
        self.epoch = epoch
        self.compliance = compliance
        self.refusal = refusal
        self.empty = empty
    }
}

/// A model's fine-tuning trajectory.
public struct FineTuneCurve: Sendable, Codable, Equatable {
    /// Model name.
    public var model: String
    /// Points by epoch.
    public var points: [FineTunePoint]

    /// A curve.
    public init(model: String, points: [FineTunePoint]) {
        self.model = model
        self.points = points
    }
}

/// One pipeline stage instance as recorded by the run.
public struct StageRecord: Sendable, Codable, Equatable {
    /// Stage name.
    public var name: String
    /// Stage kind.
    public var kind: String
    /// Parameters as text.
    public var parameters: [String: String]
    /// Output artifact names and their store keys.
    public var artifacts: [String: String]

    /// A record.
    public init(name: String, kind: String, parameters: [String: String] = [:], artifacts: [String: String] = [:]) {
        self.name = name
        self.kind = kind
        self.parameters = parameters
        self.artifacts = artifacts
    }
}

/// Everything a study report shows; empty collections render as "no data" sections.
public struct ReportInputs: Sendable, Codable, Equatable {
    /// Report title.
    public var title: String
    /// Free text under the title (run id, date); supplied by the caller so output is reproducible.
    public var subtitle: String
    /// Behavioural rates per model.
    public var behaviour: [ModelBehaviour]
    /// Audit-probe metrics per model.
    public var probes: [ProbeSummary]
    /// Fine-tuning trajectories.
    public var fineTuning: [FineTuneCurve]
    /// LVS group summaries (all models, layers, epsilons, attacks).
    public var lvs: [LVSGroupSummary]
    /// The eta the LVS values were computed with (shown in captions).
    public var lvsEta: Double
    /// Statistic used for the LVS bars and table.
    public var lvsStatistic: LVSStatistic
    /// Attack used for the LVS bars and table.
    public var lvsAttack: String
    /// Judge agreement tables.
    public var judgeDisagreement: [JudgeDisagreement]
    /// Pipeline stages with parameters and artifact keys.
    public var stages: [StageRecord]

    /// Inputs; everything but the title is optional.
    public init(title: String, subtitle: String = "", behaviour: [ModelBehaviour] = [], probes: [ProbeSummary] = [],
                fineTuning: [FineTuneCurve] = [], lvs: [LVSGroupSummary] = [], lvsEta: Double = LVSOptions.paperEta,
                lvsStatistic: LVSStatistic = .mean, lvsAttack: String = "pgd",
                judgeDisagreement: [JudgeDisagreement] = [], stages: [StageRecord] = []) {
        self.title = title
        self.subtitle = subtitle
        self.behaviour = behaviour
        self.probes = probes
        self.fineTuning = fineTuning
        self.lvs = lvs
        self.lvsEta = lvsEta
        self.lvsStatistic = lvsStatistic
        self.lvsAttack = lvsAttack
        self.judgeDisagreement = judgeDisagreement
        self.stages = stages
    }
}
