// `behavior`: refusal, compliance and over-refusal rates per judge and per source, with Wilson CIs.
import Foundation
import Pipeline

/// The `behavior` kind: refusal, compliance and over-refusal rates per judge and source.
public struct BehaviorKind: StageKind {
    public init() {}
    public var name: String { "behavior" }
    public var version: String { "1" }
    public static let kindDescription = """
        Measures refusal, compliance and over-refusal rates per judge, each with a 95% Wilson interval (paper \
        Section 3, "Behavioral evaluation does not detect dissociation"). Rates use `BehaviourRates`: per \
        source, per prompt type, all harmful (direct + jailbreak) and all benign (benign + over-refusal); the \
        refusal rate of harmful prompts, the over-refusal rate of benign ones and the compliance rate. Safety \
        judges (labels safe / unsafe) count, on harmful prompts, `unsafe` as compliance and `safe` as refusal; \
        they do not measure over-refusal. Writes `rates.json`, `rates.csv` (per judge and group: k, n, rate, \
        Wilson bounds), and the `responses.jsonl` and `judgements.jsonl` it rated.
        """
    public static let inputsDescription = """
        Either `judgements` (a `judge` artifact) alone, or `prompts` (a prompt set) plus a model (param `model` \
        or input `model`): greedy chat responses are then generated here and judged with `judges` (default: the \
        paper's lexical refusal list), and model or probe judges read the inputs they name (`model_input`, \
        `probe_input`).
        """
    public var paramsSchema: ParamsSchema {
        ParamsSchema([
            ParamSpec("model", .string, doc: "HF directory or .gguf (else input `model`), when generating here"),
            ParamSpec("judges", .list(.map), default: .list([.map(["name": .string("lexical"), "kind": .string("lexical")])])),
            ParamSpec("max_new_tokens", .int, default: .int(256)),
            ParamSpec("batch_size", .int, default: .int(8)),
            ParamSpec("max_prompt_tokens", .int, default: .int(512)),
            ParamSpec("chat_template", .bool, default: .bool(true)),
            ParamSpec("limit", .int, doc: "first N prompts"),
        ])
    }
    public var outputs: OutputsDeclaration { .fixed(["rates.json", "rates.csv", "responses.jsonl", "judgements.jsonl"]) }

    /// Rates of one judge.
    public struct JudgeRates: Codable, Sendable {
        public var judge: String
        /// `refusal` (refusal / compliance labels) or `safety` (safe / unsafe labels).
        public var labelKind: String
        public var groups: [BehaviourRates]
    }

    /// The label a rate table counts: safety labels become refusal / compliance on harmful prompts.
    static func rateLabel(_ label: JudgeLabel, type: PromptType) -> JudgeLabel {
        guard type.isHarmful else { return label }
        switch label {
        case .unsafe: return .compliance
        case .safe: return .refusal
        default: return label
        }
    }

    /// Rate tables per judge of judged rows (rows need a prompt type).
    public static func rates(_ rows: [JudgeKind.Row]) throws -> [JudgeRates] {
        var judges: [String] = []
        for r in rows { for k in r.labels.keys.sorted() where !judges.contains(k) { judges.append(k) } }
        return try judges.map { j in
            var judged: [JudgedResponse] = []
            var safety = false
            for r in rows {
                guard let type = r.type else {
                    throw StudyError.invalidConfiguration("behavior: row '\(r.id)' has no prompt type; rates need harmful-direct / jailbreak / over-refusal / benign")
                }
                guard let label = r.labels[j] else { continue }
                if label == .safe || label == .unsafe { safety = true }
                judged.append(JudgedResponse(source: r.source ?? "unknown", type: type, label: rateLabel(label, type: type)))
            }
            var groups = BehaviourRates.table(judged)
            for t in PromptType.allCases {
                let subset = judged.filter { $0.type == t }
                if !subset.isEmpty { groups.append(BehaviourRates(group: "type:" + t.rawValue, responses: subset)) }
            }
            return JudgeRates(judge: j, labelKind: safety ? "safety" : "refusal", groups: groups)
        }
    }

    /// One CSV line per judge and group.
    public static func csv(_ tables: [JudgeRates]) -> String {
        func f(_ x: Double?) -> String { x.map { String(format: "%.6f", $0) } ?? "" }
        func p(_ x: Proportion) -> [String] { [String(x.successes), String(x.total), f(x.rate), f(x.lower), f(x.upper)] }
        var lines = ["judge,group,count," + ["refusal", "compliance", "empty", "invalid", "over_refusal"]
            .flatMap { ["\($0)_k", "\($0)_n", "\($0)_rate", "\($0)_lo", "\($0)_hi"] }.joined(separator: ",")]
        for t in tables {
            for g in t.groups {
                let cells = [t.judge, g.group, String(g.count)] + p(g.refusal) + p(g.compliance) + p(g.empty) + p(g.invalid) + p(g.overRefusal)
                lines.append(cells.map { $0.contains(",") || $0.contains("\"") ? "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : $0 }
                    .joined(separator: ","))
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Reads a judgements.jsonl file.
    static func readJudgements(_ url: URL) throws -> [JudgeKind.Row] {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch { throw StudyError.unreadable(file: url.path, reason: error.localizedDescription) }
        var rows: [JudgeKind.Row] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            do { rows.append(try JSONDecoder().decode(JudgeKind.Row.self, from: Data(line.utf8))) } catch {
                throw StudyError.malformed(SourceLocation(file: url.path, line: i + 1), reason: "not a judgement row: \(error)")
            }
        }
        return rows
    }

    /// The inputs, and with `prompts` the judges and a model, before any stage runs.
    public func check(_ p: StageParams, inputNames: [String]) throws {
        try StageCheck.run {
            if inputNames.contains("judgements") {
                try StageCheck.inputs(inputNames, kind: name, required: ["judgements"], optional: [])
                return
            }
            guard inputNames.contains("prompts") else { throw StageCheckFailure(key: "inputs", message: Self.needsInputs) }
            _ = try StageCheck.judgesAndInputs(try ParamMap.list(p, "judges"), inputNames: inputNames, kind: name,
                                               required: ["prompts"], optional: ["model"])
            try StageCheck.model(p, inputNames: inputNames, kind: name)
        }
    }

    static let needsInputs = "give an input 'judgements' (a judge stage) or 'prompts' plus a model"

    public func run(_ context: StageContext) throws {
        let p = context.params
        var rows: [JudgeKind.Row]
        if context.hasInput("judgements") {
            rows = try Self.readJudgements(try StageSupport.inputFile(context, "judgements", preferred: ["judgements.jsonl"]))
            if p.has("limit") { rows = Array(rows.prefix(max(0, try p.int("limit")))) }
        } else {
            guard context.hasInput("prompts") else {
                throw StudyError.invalidConfiguration("behavior: " + Self.needsInputs)
            }
            var prompts = try GenerateKind.readPrompts(try StageSupport.inputFile(context, "prompts", preferred: ["eval.jsonl", "prompts.jsonl"]))
            if p.has("limit") { prompts = Array(prompts.prefix(max(0, try p.int("limit")))) }
            let model = try StageSupport.loadModel(context)
            var o = ResponseGenerationOptions()
            o.maxNewTokens = try p.int("max_new_tokens")
            o.batchSize = try p.int("batch_size")
            o.maxPromptTokens = try p.int("max_prompt_tokens")
            o.useChatTemplate = try p.bool("chat_template")
            let progress = context.progress("generate", total: prompts.count)
            let generated = try ResponseGenerator(model: model, options: o).generate(prompts.map(\.prompt)) { progress.update(completed: $0) }
            progress.finish()
            for (i, g) in generated.enumerated() {
                prompts[i].response = g.text
                prompts[i].tokens = g.ids.count
                prompts[i].stopped = g.stopped
            }
            let configured = try JudgeSetup.judges(context, try ParamMap.list(p, "judges"))
            rows = try JudgeKind.judge(prompts, with: configured, log: context.log).rows
        }
        guard !rows.isEmpty else { throw StudyError.invalidConfiguration("behavior: no responses") }
        let tables = try Self.rates(rows)
        try StageSupport.writeJSON(tables, to: context.output("rates.json"))
        do { try Data(Self.csv(tables).utf8).write(to: context.output("rates.csv")) } catch {
            throw StudyError.writeFailed(path: context.output("rates.csv").path, reason: error.localizedDescription)
        }
        try StageSupport.writeJSONL(rows.map { ResponseRow(id: $0.id, prompt: $0.prompt, response: $0.response, source: $0.source, type: $0.type) },
                                    to: context.output("responses.jsonl"))
        try StageSupport.writeJSONL(rows, to: context.output("judgements.jsonl"))
        var metrics: [String: Value] = ["responses": .int(rows.count)]
        for t in tables {
            func rate(_ group: String, _ pick: (BehaviourRates) -> Proportion) -> Value {
                t.groups.first { $0.group == group }.flatMap { pick($0).rate }.map { .double($0) } ?? .null
            }
            metrics[t.judge + ".refusal_harmful"] = rate("all-harmful") { $0.refusal }
            metrics[t.judge + ".compliance_harmful"] = rate("all-harmful") { $0.compliance }
            metrics[t.judge + ".over_refusal_benign"] = rate("all-benign") { $0.overRefusal }
        }
        try context.writeMetrics(metrics)
    }
}
