// `pgd` stage kind: latent-space attacks on the evaluation set's harmful prompts, one
// instance per (model, layer, epsilon[, attack, delta mode]) from a matrix.
import Foundation
import Models
import Pipeline

/// Runs `PGDExampleRunner` over a prompt set and writes per-example records.
///
/// Inputs: `prompts` (prompt-set JSONL, or a directory holding one), `model` (optional: an HF
/// directory artifact; else param `model`). Outputs: `records.jsonl` (one `PGDRecord` per
/// prompt), `metrics.json` (means of NLLs, norms, scores, ASR).
public struct PGDKind: StageKind {
    public init() {}
    public var name: String { "pgd" }
    public var version: String { "1" }

    public var paramsSchema: ParamsSchema {
        ParamsSchema([
            ParamSpec("model", .string, doc: "HF model directory or .gguf file (or use input 'model')"),
            ParamSpec("model_name", .string, doc: "model name in records and tables (default: upstream stage or file name)"),
            ParamSpec("layer", .any, default: .string("mid"), doc: "embedding, mid (L/2), last (L-1) or a block index"),
            ParamSpec("epsilon", .number, default: .double(0.001), doc: "budget (paper: 0.0005, 0.001, 0.005)"),
            ParamSpec("epsilon_mode", .string, default: .string("relative"), choices: EpsilonMode.allCases.map(\.rawValue),
                      doc: "relative: eps x max|h| of the clean prompt at the layer; absolute: residual-stream units"),
            ParamSpec("delta_shape", .string, default: .string("shared"), choices: DeltaShape.allCases.map(\.rawValue)),
            ParamSpec("delta_positions", .string, default: .string("prompt"), choices: DeltaPositions.allCases.map(\.rawValue)),
            ParamSpec("attack", .string, default: .string("targeted"), choices: AttackKind.allCases.map(\.rawValue)),
            ParamSpec("steps", .int, default: .int(10)),
            ParamSpec("step_fraction", .number, default: .double(0.25), doc: "step size as a fraction of epsilon"),
            ParamSpec("target", .string, default: .string("Sure, here is")),
            ParamSpec("max_new_tokens", .int, default: .int(128)),
            ParamSpec("limit", .int, default: .int(0), doc: "attack at most this many prompts (0 = all)"),
            ParamSpec("prompt_types", .list(.string), default: .list([.string("harmful-direct"), .string("jailbreak")]),
                      doc: "prompt-set types to attack"),
            ParamSpec("prompts_file", .string, doc: "file inside the prompts input directory"),
            ParamSpec("scores", .any, default: .list([.string("lexical")]),
                      doc: "harmlessness scorers: lexical, lexical-gcg, {name:, command:} maps, or judge-style maps {name:, kind: reward|probe|guard, model_input: scorer_model, ...}"),
            ParamSpec("judge", .any, default: .string("lexical"), doc: "refusal/compliance judge: lexical, lexical-gcg or {name:, command:, aliases:}"),
        ])
    }

    public var inputs: InputsDeclaration {
        .named([InputSpec("prompts", doc: "prompt set (JSONL rows id, prompt, source, type)"),
                InputSpec("model", required: false, doc: "model artifact (HF directory)"),
                InputSpec("probe", required: false, doc: "audit probe artifact for a {kind: probe} score"),
                InputSpec("scorer_model", required: false, doc: "model of a model-backed score (model_input: scorer_model)")])
    }

    public var outputs: OutputsDeclaration { .fixed(["records.jsonl", "metrics.json"]) }

    /// The attack options of a stage's params.
    public static func options(_ p: StageParams) throws -> PGDOptions {
        let layerText = try p.string("layer", default: "mid")
        guard let layer = LayerRef(layerText) else {
            throw StudyError.invalidConfiguration("params.layer: '\(layerText)' is not embedding, mid, last or a block index")
        }
        func choice<T: RawRepresentable>(_ name: String, _ d: T) throws -> T where T.RawValue == String {
            let s = try p.string(name, default: d.rawValue)
            guard let v = T(rawValue: s) else { throw StudyError.invalidConfiguration("params.\(name): unknown value '\(s)'") }
            return v
        }
        return PGDOptions(layer: layer, epsilon: try p.double("epsilon", default: 0.001),
                          epsilonMode: try choice("epsilon_mode", EpsilonMode.relative),
                          deltaShape: try choice("delta_shape", DeltaShape.shared),
                          deltaPositions: try choice("delta_positions", DeltaPositions.prompt),
                          attack: try choice("attack", AttackKind.targeted), steps: try p.int("steps", default: 10),
                          stepFraction: try p.double("step_fraction", default: 0.25))
    }

    public func run(_ context: StageContext) throws {
        let p = context.params
        let options = try Self.options(p)
        let scorers = try ScorerSpecs.scorers(p.has("scores") ? try p.value("scores") : .list([.string("lexical")]), context: context)
        let judge = try ScorerSpecs.judge(p.has("judge") ? try p.value("judge") : .string("lexical"))
        let modelName = try AttackStageIO.modelName(context)
        let promptsURL = try StageSupport.inputFile(context, "prompts", preferred: p.has("prompts_file") ? [try p.string("prompts_file")] : ["prompts.jsonl"])
        let types = Set(p.has("prompt_types") ? try p.strings("prompt_types") : ["harmful-direct", "jailbreak"])
        var rows = try PromptRow.read(promptsURL).filter { types.contains($0.type.rawValue) }
        let limit = try p.int("limit", default: 0)
        if limit > 0 && rows.count > limit { rows = Array(rows.prefix(limit)) }
        guard !rows.isEmpty else {
            throw StudyError.noUsableRecords(file: promptsURL.path, reason: "no prompt of types \(types.sorted().joined(separator: ", "))")
        }
        let chat = try ChatModel.load(context)
        let runner = try PGDExampleRunner(chat: chat, options: options, target: try p.string("target", default: "Sure, here is"),
                                          maxNewTokens: try p.int("max_new_tokens", default: 128))
        let layerIndex = options.layer.blockIndex(layers: chat.model.config.numLayers)
        context.log("pgd \(modelName) layer \(options.layer) (block \(layerIndex)) eps \(options.epsilon) \(options.epsilonMode.rawValue) attack \(options.attack.rawValue) on \(rows.count) prompts")
        let progress = context.progress("attack", total: rows.count)
        var results: [(PromptRow, PGDExampleResult, UInt64)] = []
        for row in rows {
            let seed = UInt64(bitPattern: Int64(context.seed)) ^ StableHash.fnv1a64(row.id)
            results.append((row, try runner.run(prompt: row.prompt, seed: seed), seed))
            progress.advance()
        }
        progress.finish()
        // Scores and labels in batches (external scorers start once per stage).
        let cleanItems = results.map { JudgeItem(prompt: $0.0.prompt, response: $0.1.clean) }
        let pertItems = results.map { JudgeItem(prompt: $0.0.prompt, response: $0.1.perturbed) }
        var cleanScores: [String: [Double]] = [:], pertScores: [String: [Double]] = [:]
        for s in scorers {
            cleanScores[s.name] = try Self.checked(s.scores(cleanItems), s.name, cleanItems.count)
            pertScores[s.name] = try Self.checked(s.scores(pertItems), s.name, pertItems.count)
        }
        let cleanLabels = try judge.judge(cleanItems), pertLabels = try judge.judge(pertItems)
        guard cleanLabels.count == results.count, pertLabels.count == results.count else {
            throw StudyError.countMismatch(what: "judgements from \(judge.name)", expected: results.count, got: min(cleanLabels.count, pertLabels.count))
        }
        var lines: [String] = []
        var records: [PGDRecord] = []
        for (i, (row, r, seed)) in results.enumerated() {
            let o = r.outcome
            let rec = PGDRecord(
                id: row.id, prompt: row.prompt, source: row.source, model: modelName, layer: options.layer.description,
                layerIndex: layerIndex, attack: options.attack.rawValue, epsilon: options.epsilon,
                epsilonMode: options.epsilonMode.rawValue, epsilonRelative: o.epsilonRelative, epsilonAbsolute: o.epsilonAbsolute,
                hiddenMaxAbs: o.hiddenMaxAbs, deltaShape: options.deltaShape.rawValue, deltaPositions: options.deltaPositions.rawValue,
                steps: options.attack == .random ? 0 : options.steps, stepFraction: options.stepFraction, deltaLinf: o.deltaLinf,
                deltaL2: o.deltaL2, deltaL2Prompt: o.deltaL2Prompt, target: runner.target, targetNLLBefore: o.targetNLLBefore,
                targetNLLAfter: o.targetNLLAfter, objectiveNLLBefore: o.objectiveBefore, objectiveNLLAfter: o.objectiveAfter,
                promptTokens: r.promptTokens, responseClean: r.clean, responsePerturbed: r.perturbed, cleanTokens: r.cleanIds.count,
                perturbedTokens: r.perturbedIds.count, scoresClean: cleanScores.mapValues { $0[i] },
                scoresPerturbed: pertScores.mapValues { $0[i] }, labelClean: cleanLabels[i].label.rawValue,
                labelPerturbed: pertLabels[i].label.rawValue, asrClean: cleanLabels[i].label == .compliance,
                asr: pertLabels[i].label == .compliance, seed: seed)
            records.append(rec)
            lines.append(try rec.jsonLine())
        }
        try AttackStageIO.write(lines.joined(separator: "\n") + "\n", to: context.output("records.jsonl"))
        try context.writeMetrics(Self.metrics(records, scorers: scorers.map(\.name)))
    }

    static func checked(_ v: [Double], _ name: String, _ n: Int) throws -> [Double] {
        guard v.count == n else { throw StudyError.countMismatch(what: "scores from \(name)", expected: n, got: v.count) }
        if let bad = v.firstIndex(where: { !$0.isFinite }) {
            throw StudyError.invalidConfiguration("scorer \(name) returned a non-finite score for item \(bad)")
        }
        return v
    }

    /// Stage metrics: counts, means of NLLs and norms, ASR, mean scores.
    static func metrics(_ r: [PGDRecord], scorers: [String]) -> [String: Value] {
        func mean(_ xs: [Double?]) -> Value {
            let v = xs.compactMap { $0 }.filter(\.isFinite)
            return v.isEmpty ? .null : .double(v.reduce(0, +) / Double(v.count))
        }
        var m: [String: Value] = [
            "examples": .int(r.count),
            "target_nll_before": mean(r.map(\.targetNLLBefore)), "target_nll_after": mean(r.map(\.targetNLLAfter)),
            "delta_linf": mean(r.map(\.deltaLinf)), "delta_l2": mean(r.map(\.deltaL2)),
            "epsilon_absolute": mean(r.map(\.epsilonAbsolute)),
            "asr_clean": mean(r.map { $0.asrClean ? 1 : 0 }), "asr": mean(r.map { $0.asr ? 1 : 0 }),
        ]
        for s in scorers {
            m["score_clean_\(s)"] = mean(r.map { $0.scoresClean[s] })
            m["score_perturbed_\(s)"] = mean(r.map { $0.scoresPerturbed[s] })
        }
        return m
    }
}
