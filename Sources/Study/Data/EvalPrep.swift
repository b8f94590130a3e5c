// EvalPrep: builds the deduplicated evaluation suite and the anchor-prompt pool (paper A.2, A.4).
import Foundation

/// One evaluation source as configured: its name, how its prompts are typed, whether it is split.
public struct EvalSourceSpec: Sendable, Codable, Equatable {
    /// Source name (tags every prompt; e.g. `harmbench`).
    public var name: String
    /// Forces the prompt type of every record; nil keeps the schema's per-record type.
    public var type: PromptType?
    /// Keep only records with this label (e.g. BeaverTails `safe` for the benign anchor).
    public var labelFilter: SafetyLabel?
    /// Whether the source also feeds the anchor set: its prompts are hash-split, the train side
    /// goes to the anchor pool and only the eval side to the evaluation suite.
    public var splitForAnchor: Bool

    /// A source spec.
    public init(name: String, type: PromptType? = nil, labelFilter: SafetyLabel? = nil, splitForAnchor: Bool = false) {
        self.name = name
        self.type = type
        self.labelFilter = labelFilter
        self.splitForAnchor = splitForAnchor
    }
}

/// Eval-prep settings.
public struct EvalPrepConfig: Sendable, Codable, Equatable {
    /// Prompts with fewer normalised characters are dropped (paper: 10).
    public var minLength: Int
    /// The anchor/eval split (paper: 90/10 by hash).
    public var split: HashSplit

    /// The paper's defaults.
    public init(minLength: Int = 10, split: HashSplit = HashSplit()) {
        self.minLength = minLength
        self.split = split
    }
}

/// One prompt of the prepared suite.
public struct EvalPrompt: Sendable, Codable, Hashable {
    /// The prompt as loaded (trimmed, not normalised).
    public var prompt: String
    /// The dedup key.
    public var key: String
    /// The source name.
    public var source: String
    /// The prompt's role.
    public var type: PromptType
    /// The split side for split sources; nil otherwise.
    public var split: SplitSide?
    /// Where it was read from.
    public var location: SourceLocation
}

/// Per-source counts after each eval-prep step.
public struct SourceCounts: Sendable, Codable, Equatable {
    /// Source name.
    public var source: String
    /// Priority rank (0 = highest).
    public var priority: Int
    /// Records given.
    public var loaded: Int = 0
    /// After the label filter.
    public var afterLabelFilter: Int = 0
    /// After deduplication (within the source and against higher-priority sources).
    public var afterDedup: Int = 0
    /// After dropping short prompts.
    public var afterLengthFilter: Int = 0
    /// Of those, sent to the anchor pool (train side of split sources).
    public var anchorTrain: Int = 0
    /// Of those, in the evaluation suite.
    public var evaluation: Int = 0
    /// Evaluation prompts per type (raw value -> count).
    public var evaluationByType: [String: Int] = [:]
}

/// What eval prep did, with counts per source (Codable, for the run's artifact).
public struct EvalManifest: Sendable, Codable, Equatable {
    /// Settings used.
    public var config: EvalPrepConfig
    /// Sources in priority order.
    public var sources: [SourceCounts]
    /// Size of the evaluation suite.
    public var evaluationTotal: Int
    /// Size of the anchor pool.
    public var anchorTotal: Int

    /// Pretty-printed, key-sorted JSON.
    public func jsonData() throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try enc.encode(self)
    }
}

/// The output of eval prep.
public struct PreparedEval: Sendable, Codable, Equatable {
    /// Held-out evaluation prompts, in priority then file order.
    public var evaluation: [EvalPrompt]
    /// Anchor candidates (train side of split sources).
    public var anchorPool: [EvalPrompt]
    /// Counts per step.
    public var manifest: EvalManifest
}

/// Concatenates sources in priority order, dedups, length-filters and splits.
public enum EvalPrep {
    /// Prepares the suite. `sources` are in priority order: the first wins duplicate keys.
    /// Steps: label filter, dedup by `PromptKey.normalize` (first occurrence in priority order
    /// wins), drop prompts shorter than `minLength`, hash split for `splitForAnchor` sources.
    /// - Throws: `invalidConfiguration` for duplicate source names or untyped records.
    public static func prepare(sources: [(spec: EvalSourceSpec, records: [PromptRecord])],
                               config: EvalPrepConfig = EvalPrepConfig()) throws -> PreparedEval {
        guard (0...1).contains(config.split.trainFraction) else {
            throw StudyError.invalidConfiguration("split train fraction \(config.split.trainFraction) is outside 0...1")
        }
        var names = Set<String>()
        var seen = Set<String>()
        var evaluation: [EvalPrompt] = []
        var anchor: [EvalPrompt] = []
        var counts: [SourceCounts] = []
        for (rank, source) in sources.enumerated() {
            let spec = source.spec
            guard names.insert(spec.name).inserted else {
                throw StudyError.invalidConfiguration("source '\(spec.name)' is listed twice")
            }
            var c = SourceCounts(source: spec.name, priority: rank)
            c.loaded = source.records.count
            let labelled = source.records.filter { spec.labelFilter == nil || $0.label == spec.labelFilter }
            c.afterLabelFilter = labelled.count
            for record in labelled {
                let key = PromptKey.normalize(record.prompt)
                guard seen.insert(key).inserted else { continue }
                c.afterDedup += 1
                guard PromptKey.length(record.prompt) >= config.minLength else { continue }
                c.afterLengthFilter += 1
                guard let type = spec.type ?? record.type else {
                    throw StudyError.invalidConfiguration("source '\(spec.name)': record at \(record.location) has no prompt type; set `type` for the source")
                }
                var item = EvalPrompt(prompt: record.prompt, key: key, source: spec.name, type: type, split: nil,
                                      location: record.location)
                if spec.splitForAnchor {
                    let side = config.split.side(of: record.prompt)
                    item.split = side
                    if side == .train {
                        anchor.append(item)
                        c.anchorTrain += 1
                        continue
                    }
                }
                evaluation.append(item)
                c.evaluation += 1
                c.evaluationByType[type.rawValue, default: 0] += 1
            }
            counts.append(c)
        }
        let manifest = EvalManifest(config: config, sources: counts, evaluationTotal: evaluation.count,
                                    anchorTotal: anchor.count)
        return PreparedEval(evaluation: evaluation, anchorPool: anchor, manifest: manifest)
    }
}

/// A configured evaluation source: where to read it, with which schema, and how to tag it.
public struct EvalSource: Sendable, Codable, Equatable {
    /// Name, type override, label filter and split flag.
    public var spec: EvalSourceSpec
    /// Path of the data file (any supported format, optionally gzip-compressed).
    public var path: String
    /// Layout of the file.
    public var schema: DatasetSchema
    /// Reader options (format override, JSON list field).
    public var format: DataFormat?
    /// JSON list field.
    public var listField: String?

    /// A source.
    public init(spec: EvalSourceSpec, path: String, schema: DatasetSchema, format: DataFormat? = nil, listField: String? = nil) {
        self.spec = spec
        self.path = path
        self.schema = schema
        self.format = format
        self.listField = listField
    }
}

extension EvalPrep {
    /// Loads every source (in priority order) and prepares the suite.
    /// - Throws: the first loading or schema error (`policy` decides whether bad records fail the run).
    public static func loadAndPrepare(_ sources: [EvalSource], config: EvalPrepConfig = EvalPrepConfig(),
                                      policy: InvalidRecordPolicy = .fail) throws -> PreparedEval {
        let loaded = try sources.map { s in
            (spec: s.spec, records: try DatasetLoader.loadPrompts(path: s.path, schema: s.schema,
                                                                 options: DataFileOptions(format: s.format, listField: s.listField),
                                                                 policy: policy).records)
        }
        return try prepare(sources: loaded, config: config)
    }
}
