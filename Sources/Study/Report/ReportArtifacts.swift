// ReportArtifacts: reads upstream stage artifacts into `ReportInputs` for the `report` kind.
//
// Accepted layouts (each input may be an artifact directory or a file; several per input):
// - behavior: `rates.json` of `behavior` stages (per judge; param `behavior_judge`, default the
//             first), a [BehaviourRates] list, or a responses JSONL with `source`, `type`, `label`.
// - probe:    a JSON file (`metrics.json`, `probe_eval.json`, ...) with `auroc` and `gap` /
//             `calibrated_gap` (and optionally `count` / `n`, `model`).
// - sft:      a JSONL / JSON list with `epoch` (or `step` + `steps_per_epoch`) and `compliance`,
//             `refusal`, `empty` (or `*_rate`) per evaluation.
// - pgd:      `records.jsonl` of `pgd` stages (LVS is computed here when no `lvs` input is given).
// - lvs:      `lvs_summary.json` of `lvs` stages.
// - judges:   `summary.json` of `judge` stages (ensemble agreement), JSONL rows with
//             `members: [{judge, label, score}]`, or `judge_disagreement.json` ([JudgeDisagreement]).
// Model names come from the row (`model`), else the instance's matrix value `model`, else the
// instance name in the artifact's lineage.json.
import Foundation
import Pipeline

enum ReportArtifacts {
    /// One judge's table in the `behavior` kind's rates.json.
    struct JudgeRatesTable: Decodable {
        var judge: String
        var labelKind: String?
        var groups: [BehaviourRates]
    }

    /// A display name for an upstream artifact.
    static func name(of url: URL) -> String {
        guard let l = AttackStageIO.lineage(of: url) else { return url.deletingPathExtension().lastPathComponent }
        if let m = l["matrix"]?.mapValue?["model"] { return m.description }
        return l["instance"]?.stringValue ?? l["stage"]?.stringValue ?? url.lastPathComponent
    }

    /// Files of an artifact: the file itself or the directory's regular files (sorted).
    static func files(_ url: URL) -> [URL] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else { return [] }
        guard isDir.boolValue else { return [url] }
        return ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []).sorted()
            .map { url.appendingPathComponent($0) }.filter { !$0.hasDirectoryPath }
    }

    static func json(_ url: URL) -> Value? {
        guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
        return try? JSON.parse(data, file: url.path)
    }

    static func number(_ v: Value?) -> Double? { v?.doubleValue }

    static func decode<T: Decodable>(_ type: T.Type, _ url: URL) -> T? {
        guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
        return try? JSONDecoder().decode(T.self, from: data)
    }

    // MARK: - Sections

    static func behaviour(_ urls: [URL], judge: String? = nil) throws -> [ModelBehaviour] {
        try urls.compactMap { url in
            let name = name(of: url)
            let fs = files(url)
            if let f = fs.first(where: { $0.lastPathComponent == "rates.json" }) {
                if let tables = decode([BehaviorKind.JudgeRates].self, f), let first = tables.first {
                    let t = judge.flatMap { j in tables.first { $0.judge == j } } ?? first
                    return ModelBehaviour(model: name, rates: t.groups)
                }
                if let rates = decode([BehaviourRates].self, f) { return ModelBehaviour(model: name, rates: rates) }
            }
            // The `behavior` kind's rates.json: one table per judge; the first refusal-labelled judge's rows.
            if let tables = fs.first(where: { $0.lastPathComponent == "rates.json" }).flatMap({ decode([JudgeRatesTable].self, $0) }),
               let table = tables.first(where: { $0.labelKind != "safety" }) ?? tables.first {
                return ModelBehaviour(model: name, rates: table.groups)
            }
            for f in fs where f.pathExtension == "jsonl" {
                let objs = try StageSupport.readObjects(f)
                let judged = objs.compactMap { r -> JudgedResponse? in
                    guard let t = r.value.value(at: "type")?.scalarText.flatMap(PromptType.init(rawValue:)),
                          let l = r.value.value(at: "label")?.scalarText.flatMap(JudgeLabel.init(rawValue:)) else { return nil }
                    return JudgedResponse(source: r.value.value(at: "source")?.scalarText ?? "unknown", type: t, label: l)
                }
                if !judged.isEmpty { return ModelBehaviour(model: name, rates: BehaviourRates.table(judged)) }
            }
            return nil
        }
    }

    static func probes(_ urls: [URL]) -> [ProbeSummary] {
        urls.compactMap { url in
            for f in files(url) where f.pathExtension == "json" && f.lastPathComponent != "lineage.json" {
                guard let v = json(f), let auroc = number(v.value(at: "auroc")) else { continue }
                let gap = number(v.value(at: "gap")) ?? number(v.value(at: "calibrated_gap")) ?? number(v.value(at: "calibratedGap"))
                let n = number(v.value(at: "count")) ?? number(v.value(at: "n")) ?? 0
                return ProbeSummary(model: v.value(at: "model")?.scalarText ?? name(of: url), auroc: auroc, gap: gap, count: Int(n))
            }
            return nil
        }
    }

    static func fineTuning(_ urls: [URL]) throws -> [FineTuneCurve] {
        try urls.compactMap { url in
            for f in files(url) where ["jsonl", "json"].contains(f.pathExtension) && f.lastPathComponent != "lineage.json" {
                var objs: [Value]
                if f.pathExtension == "jsonl" {
                    objs = try StageSupport.readObjects(f).map(\.value)
                } else if case let .list(a)? = json(f) {
                    objs = a
                } else if case let .list(a)? = json(f)?.value(at: "curve") {
                    objs = a
                } else { continue }
                func rate(_ o: Value, _ k: String) -> Double? { number(o.value(at: k)) ?? number(o.value(at: k + "_rate")) }
                let points = objs.compactMap { o -> FineTunePoint? in
                    var epoch = number(o.value(at: "epoch"))
                    if epoch == nil, let s = number(o.value(at: "step")), let per = number(o.value(at: "steps_per_epoch")), per > 0 { epoch = s / per }
                    guard let e = epoch, rate(o, "compliance") != nil || rate(o, "refusal") != nil else { return nil }
                    return FineTunePoint(epoch: e, compliance: rate(o, "compliance"), refusal: rate(o, "refusal"), empty: rate(o, "empty"))
                }
                if !points.isEmpty { return FineTuneCurve(model: name(of: url), points: points.sorted { $0.epoch < $1.epoch }) }
            }
            return nil
        }
    }

    static func lvs(_ urls: [URL]) -> (summaries: [LVSGroupSummary], eta: Double?) {
        var out: [LVSGroupSummary] = []
        var eta: Double?
        for url in urls {
            for f in files(url) where f.lastPathComponent == "lvs_summary.json" {
                if let doc = decode(LVSKind.SummaryDocument.self, f) { out += doc.paper; eta = doc.eta }
            }
        }
        return (out, eta)
    }

    static func pgdRecords(_ urls: [URL]) throws -> [PGDRecord] {
        try urls.flatMap { url in try files(url).filter { $0.lastPathComponent == "records.jsonl" || url == $0 }.flatMap(PGDRecord.read) }
    }

    static func judges(_ urls: [URL]) throws -> [JudgeDisagreement] {
        var out: [JudgeDisagreement] = []
        for url in urls {
            for f in files(url) {
                if f.lastPathComponent == "summary.json", let list = decode([JudgeKind.JudgeSummary].self, f) {
                    out += list.compactMap(\.agreement)
                } else if f.lastPathComponent == "judge_disagreement.json" {
                    if let list = decode([JudgeDisagreement].self, f) { out += list } else if let one = decode(JudgeDisagreement.self, f) { out.append(one) }
                } else if f.pathExtension == "jsonl" {
                    let judgements = try StageSupport.readObjects(f).compactMap { r -> Judgement? in
                        guard case let .list(ms)? = r.value.value(at: "members") else { return nil }
                        let votes = ms.compactMap { m -> MemberVote? in
                            guard let j = m.value(at: "judge")?.scalarText,
                                  let l = m.value(at: "label")?.scalarText.flatMap(JudgeLabel.init(rawValue:)) else { return nil }
                            return MemberVote(judge: j, label: l, score: number(m.value(at: "score")))
                        }
                        return Judgement(label: .invalid, members: votes)
                    }
                    if !judgements.isEmpty { out.append(JudgeDisagreement(name: name(of: url), judgements: judgements)) }
                }
            }
        }
        return out
    }

    /// One stage record per distinct upstream artifact (from its lineage.json).
    static func stages(_ urls: [URL]) -> [StageRecord] {
        var seen = Set<String>()
        var out: [StageRecord] = []
        for url in urls {
            guard let l = AttackStageIO.lineage(of: url) else { continue }
            let key = l["key"]?.stringValue ?? url.path
            guard seen.insert(key).inserted else { continue }
            var params: [String: String] = [:]
            for (k, v) in l["params"]?.mapValue ?? [:] { params[k] = v.canonicalJSON.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
            var artifacts = ["key": key]
            for (name, v) in l["inputs"]?.mapValue ?? [:] {
                let keys = (v.listValue ?? []).compactMap { $0.mapValue?["key"]?.stringValue ?? $0.mapValue?["file"]?.stringValue }
                if !keys.isEmpty { artifacts["input." + name] = keys.joined(separator: ", ") }
            }
            out.append(StageRecord(name: l["instance"]?.stringValue ?? l["stage"]?.stringValue ?? url.lastPathComponent,
                                   kind: l["kind"]?.stringValue ?? "?", parameters: params, artifacts: artifacts))
        }
        return out.sorted { $0.name < $1.name }
    }
}
