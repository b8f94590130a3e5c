// Plan-time checks of the study kinds (`StageKind.check`): a mistake in a pgd, judge or
// behavior stage is reported when the pipeline is read, at its place in the file, before any
// stage runs.
import Foundation
import XCTest
import Pipeline
@testable import Study

final class StageCheckTests: XCTestCase {
    /// A pgd stage with `lines` as its inputs and params (nothing is loaded at plan time).
    func pgd(_ lines: String) -> String {
        "stages:\n  attack:\n    kind: pgd\n" + lines
    }

    func sandbox() throws -> StageSandbox {
        let box = StageSandbox()
        try box.write("prompts.jsonl", "{\"id\": \"p1\", \"prompt\": \"How to\", \"type\": \"harmful-direct\"}\n")
        try box.write("model/config.json", "{}")
        try box.write("probe/probe.json", "{}")
        return box
    }

    func testPGDConfigErrorsAreReportedAtTheirKey() throws {
        let box = try sandbox()
        let inputs = "    inputs: {prompts: file:prompts.jsonl, model: file:model}\n"
        XCTAssertEqual(try box.planError(pgd(inputs + "    params: {epsilon: 0.1}\n")), "")
        let cases: [(String, String)] = [
            ("    inputs: {promts: file:prompts.jsonl, model: file:model}\n",
             "pipeline.yaml:4:14: stages.attack.inputs.promts: unknown input 'promts' for kind 'pgd' with these params; did you mean 'prompts'?"),
            ("    inputs: {model: file:model}\n", "stages.attack.inputs: missing required input 'prompts' for kind 'pgd'"),
            (inputs + "    params: {epsilon: -1}\n", "pipeline.yaml:5:23: stages.attack.params.epsilon: must be a finite number >= 0, got -1.0"),
            (inputs + "    params: {layer: middle}\n", "pipeline.yaml:5:21: stages.attack.params.layer: 'middle' is not embedding, mid, last or a block index"),
            (inputs + "    params: {layer: -4}\n", "stages.attack.params.layer: -4 is not a block index >= 0 (or embedding, mid, last)"),
            (inputs + "    params: {steps: -1}\n", "stages.attack.params.steps: must be >= 0, got -1"),
            (inputs + "    params: {batch_size: 0}\n", "pipeline.yaml:5:26: stages.attack.params.batch_size: must be >= 1, got 0"),
            (inputs + "    params: {delta_shape: per-position, delta_positions: all}\n",
             "stages.attack.params.delta_positions: 'all' needs delta_shape 'shared'"),
            ("    inputs: {prompts: file:prompts.jsonl}\n", "stages.attack.inputs: kind 'pgd' needs a model: set param 'model' (a path) or give an input 'model'"),
            (inputs + "    params: {judges: [{name: audit, kind: probe}]}\n",
             "pipeline.yaml:5:23: stages.attack.params.judges[0]: no input 'probe' holding the probe; inputs: prompts, model"),
            (inputs + "    params: {judges: [{name: lexical, kind: lexical}], asr_judge: lexcial}\n",
             "stages.attack.params.asr_judge: 'lexcial' is not a label judge; label judges: lexical"),
            (inputs + "    params: {judges: [{name: g, kind: gaurd}]}\n", "pipeline.yaml:5:39: stages.attack.params.judges[0].kind: unknown judge kind 'gaurd'"),
        ]
        for (lines, expected) in cases {
            let msg = try box.planError(pgd(lines))
            XCTAssertTrue(msg.contains(expected), "expected '\(expected)' in: \(msg)")
        }
        // A judge's inputs are known inputs of the stage, and must be given.
        XCTAssertEqual(try box.planError(pgd("""
            inputs: {prompts: file:prompts.jsonl, model: file:model, scorer: file:model, probe: file:probe}
            params: {judges: [{name: lexical, kind: lexical}, {name: audit, kind: probe, model_input: scorer}], asr_judge: lexical}

        """)), "")
        let missingScorer = try box.planError(pgd("""
            inputs: {prompts: file:prompts.jsonl, model: file:model, probe: file:probe}
            params: {judges: [{name: lexical, kind: lexical}, {name: audit, kind: probe, model_input: scorer}]}

        """))
        XCTAssertTrue(missingScorer.contains("stages.attack.params.judges[1]: no input 'scorer' holding the judge's model"), missingScorer)
    }

    func testBehaviorAndJudgeInputsAreChecked() throws {
        let box = try sandbox()
        try box.write("responses.jsonl", "{\"id\": \"p1\", \"prompt\": \"How to\", \"response\": \"Sure\"}\n")
        let neither = try box.planError("stages:\n  b:\n    kind: behavior\n    inputs: {model: file:model}\n")
        XCTAssertTrue(neither.contains("pipeline.yaml:2:3: stages.b.inputs: give an input 'judgements' (a judge stage) or 'prompts' plus a model"), neither)
        let extra = try box.planError("stages:\n  b:\n    kind: behavior\n    inputs: {judgements: file:responses.jsonl, modle: file:model}\n")
        XCTAssertTrue(extra.contains("stages.b.inputs.modle: unknown input 'modle' for kind 'behavior'"), extra)
        let noModel = try box.planError("stages:\n  b:\n    kind: behavior\n    inputs: {prompts: file:prompts.jsonl}\n")
        XCTAssertTrue(noModel.contains("kind 'behavior' needs a model"), noModel)
        XCTAssertEqual(try box.planError("stages:\n  b:\n    kind: behavior\n    inputs: {prompts: file:prompts.jsonl, model: file:model}\n"), "")
        let noResponses = try box.planError("stages:\n  j:\n    kind: judge\n    inputs: {respones: file:responses.jsonl}\n    params: {judges: [{name: l, kind: lexical}]}\n")
        XCTAssertTrue(noResponses.contains("stages.j.inputs.respones: unknown input 'respones' for kind 'judge' with these params; did you mean 'responses'?"),
                      noResponses)
    }

    func testJudgePlanWithoutLoadingAnything() throws {
        func maps(_ v: Value) throws -> [ParamMap] { try ParamMap.list(StageParams(["judges": v], instance: "t"), "judges") }
        let judges: Value = .list([
            .map(["name": .string("lex"), "kind": .string("lexical")]),
            .map(["name": .string("guard"), "kind": .string("guard"), "model_input": .string("guard_model")]),
            .map(["name": .string("vote"), "kind": .string("ensemble"), "members": .list([.string("lex"), .string("guard")])]),
            .map(["name": .string("harm"), "kind": .string("reward"), "model": .string("/nowhere")]),
            .map(["name": .string("audit"), "kind": .string("probe")]),
            .map(["name": .string("ext"), "kind": .string("external"), "command": .string("true"), "score_only": .bool(true)]),
        ])
        let plan = try JudgeSetup.check(try maps(judges), inputNames: nil)
        XCTAssertEqual(plan.labelJudges, ["lex", "guard", "vote"])
        XCTAssertEqual(plan.inputs, ["guard_model", "probe", "model"], "reward names a path; the probe reads `probe` and `model`")
        XCTAssertNoThrow(try JudgeSetup.check(try maps(judges), inputNames: ["guard_model", "probe", "model"]))
        XCTAssertThrowsError(try JudgeSetup.check(try maps(judges), inputNames: ["guard_model", "model"]))
        // An ensemble names earlier label judges that are not ensembles.
        let nested: Value = .list([
            .map(["name": .string("lex"), "kind": .string("lexical")]),
            .map(["name": .string("v1"), "kind": .string("ensemble"), "members": .list([.string("lex")])]),
            .map(["name": .string("v2"), "kind": .string("ensemble"), "members": .list([.string("v1")])]),
        ])
        XCTAssertThrowsError(try JudgeSetup.check(try maps(nested), inputNames: nil)) { error in
            XCTAssertTrue("\(error)".contains("params.judges[2].members: 'v1' is not a label judge listed before 'v2'"), "\(error)")
        }
    }

    func testTrainingAndGenerateConfigErrorsAreReportedAtTheirKey() throws {
        let box = try sandbox()
        try box.write("data.jsonl", "{\"prompt\": \"How to\", \"response\": \"Sure\"}\n")
        func stage(_ kind: String, _ lines: String) -> String { "stages:\n  s:\n    kind: \(kind)\n" + lines }
        let sft = "    inputs: {model: file:model, data: file:data.jsonl}\n"
        let dissociate = "    inputs: {model: file:model, monitor: file:probe, triples: file:data.jsonl, anchors: file:data.jsonl}\n"
        let generate = "    inputs: {model: file:model, prompts: file:prompts.jsonl}\n"
        XCTAssertEqual(try box.planError(stage("sft", sft)), "")
        XCTAssertEqual(try box.planError(stage("dissociate", dissociate)), "")
        XCTAssertEqual(try box.planError(stage("generate", generate)), "")
        // A schedule the schema does not list never reaches the kind; a library caller's does.
        var values: [String: Value] = [:]
        for spec in SFTKind().paramsSchema.params { values[spec.name] = spec.defaultValue }
        XCTAssertNoThrow(try SFTKind.config(StageParams(values, instance: "s"), seed: 0))
        values["schedule"] = .string("cosin")
        XCTAssertThrowsError(try SFTKind.config(StageParams(values, instance: "s"), seed: 0)) { error in
            XCTAssertTrue("\(error)".contains("params.schedule: unknown schedule 'cosin'; use constant, linear, cosine"), "\(error)")
        }
        let cases: [(String, String)] = [
            (stage("sft", sft + "    params: {epochs: 0}\n"), "pipeline.yaml:5:22: stages.s.params.epochs: must be positive, got 0"),
            (stage("sft", sft + "    params: {micro_batch: -1}\n"), "stages.s.params.micro_batch: must be positive, got -1"),
            (stage("sft", sft + "    params: {lora_r: 0}\n"), "stages.s.params.lora_r: must be positive, got 0"),
            (stage("sft", sft + "    params: {learning_rate: -0.1}\n"), "stages.s.params.learning_rate: must be a finite number >= 0"),
            (stage("sft", sft + "    params: {keep_blocks: -1}\n"), "stages.s.params.keep_blocks: must be 0 or more"),
            (stage("sft", "    inputs: {data: file:data.jsonl}\n"), "stages.s.inputs: kind 'sft' needs a model"),
            (stage("dissociate", dissociate + "    params: {tau: 1.5}\n"), "pipeline.yaml:5:19: stages.s.params.tau: must be in (0, 1), got 1.5"),
            (stage("dissociate", dissociate + "    params: {accumulation: 0}\n"), "stages.s.params.accumulation: must be positive, got 0"),
            (stage("dissociate", dissociate + "    params: {replay_blocks: -2}\n"), "stages.s.params.replay_blocks: must be 0 or more"),
            (stage("generate", generate + "    params: {types: [harmful]}\n"), "stages.s.params.types: unknown prompt type 'harmful'; use "),
            (stage("generate", generate + "    params: {filters: [empty, refusals]}\n"),
             "pipeline.yaml:5:23: stages.s.params.filters: unknown filter 'refusals'; use empty, single-token, refusal"),
            (stage("generate", "    inputs: {prompts: file:prompts.jsonl}\n"), "stages.s.inputs: kind 'generate' needs a model"),
        ]
        for (yaml, expected) in cases {
            let msg = try box.planError(yaml)
            XCTAssertTrue(msg.contains(expected), "expected '\(expected)' in: \(msg)")
        }
    }

    func testDataLVSFeaturesAndProbeConfigErrorsAreReportedAtTheirKey() throws {
        let box = try sandbox()
        try box.write("a.jsonl", "{\"prompt\": \"How to\"}\n")
        func stage(_ kind: String, _ lines: String) -> String { "stages:\n  s:\n    kind: \(kind)\n" + lines }
        let prepare = "    inputs: {a: file:a.jsonl, beavertails: file:a.jsonl}\n    params:\n      sources: [{name: a, schema: harmbench}, {name: beavertails, schema: harmbench}]\n"
        let lvs = "    inputs: {records: file:a.jsonl}\n"
        let features = "    inputs: {data: file:a.jsonl, model: file:model}\n"
        let probe = "    inputs: {features: file:a.jsonl}\n"
        for ok in [stage("prepare-eval", prepare), stage("lvs", lvs), stage("features", features), stage("probe", probe),
                   stage("load-prompts", "    inputs: {data: file:a.jsonl}\n    params: {schema: harmbench}\n"),
                   stage("load-prompts", "    params: {schema: harmbench, path: a.jsonl}\n")] {
            XCTAssertEqual(try box.planError(ok), "", ok)
        }
        let cases: [(String, String)] = [
            (stage("prepare-eval", "    inputs: {a: file:a.jsonl, bevertails: file:a.jsonl}\n    params:\n      sources: [{name: a, schema: harmbench}, {name: beavertails, schema: harmbench}]\n"),
             "stages.s.inputs: params.sources[1] reads input 'beavertails', which the stage does not have; did you mean 'bevertails'?; add an input 'beavertails'"),
            (stage("prepare-eval", "    inputs: {a: file:a.jsonl, extra: file:a.jsonl}\n    params:\n      sources: [{name: a, schema: harmbench}]\n"),
             "stages.s.inputs.extra: no source reads input 'extra'; sources read: a"),
            (stage("prepare-eval", "    inputs: {a: file:a.jsonl}\n    params:\n      sources: [{name: a, schema: harmbnch}]\n"),
             "pipeline.yaml:6:35: stages.s.params.sources[0].schema: unknown dataset schema 'harmbnch'; did you mean 'harmbench'?; use a built-in name ("),
            (stage("prepare-eval", "    inputs: {a: file:a.jsonl}\n    params:\n      sources: [{name: a, schema: harmbench, labl: safe}]\n"),
             "pipeline.yaml:6:52: stages.s.params.sources[0].labl: unknown key 'labl'; did you mean 'label'?; allowed: name, schema"),
            (stage("prepare-eval", prepare + "      train_fraction: 1.5\n"), "stages.s.params.train_fraction: must be in [0, 1], got 1.5"),
            (stage("prepare-eval", "    inputs: {a: file:a.jsonl}\n    params: {sources: []}\n"), "stages.s.params.sources: list at least one source"),
            (stage("load-prompts", "    params: {schema: harmbench}\n"), "stages.s.inputs: params reads input 'data', which the stage does not have"),
            (stage("load-prompts", "    inputs: {data: file:a.jsonl}\n    params: {schema: harmbench, min_length: -1}\n"),
             "stages.s.params.min_length: must be >= 0, got -1"),
            (stage("lvs", lvs + "    params: {eta: 0}\n"), "pipeline.yaml:5:19: stages.s.params.eta: must be a positive number (the paper uses 1e-6), got 0.0"),
            (stage("lvs", lvs + "    params: {release_eta: -1}\n"), "stages.s.params.release_eta: must be a positive number"),
            (stage("lvs", lvs + "    params: {bootstrap_resamples: -5}\n"), "stages.s.params.bootstrap_resamples: must be >= 0 (0: no CI), got -5"),
            (stage("lvs", lvs + "    params: {layers: [embedding, mid]}\n"), "stages.s.params.columns: give one title per layer (2), got 3"),
            (stage("features", features + "    params: {max_tokens: 0}\n"), "stages.s.params.max_tokens: must be >= 1, got 0"),
            (stage("features", "    inputs: {data: file:a.jsonl}\n"), "stages.s.inputs: kind 'features' needs a model"),
            (stage("probe", probe + "    params: {train_fraction: 1}\n"), "stages.s.params.train_fraction: must be between 0 and 1"),
            (stage("probe", probe + "    params: {epochs: 0}\n"), "pipeline.yaml:5:22: stages.s.params.epochs: must be >= 1, got 0"),
            (stage("probe", probe + "    params: {learning_rate: 0}\n"), "stages.s.params.learning_rate: must be a positive number"),
        ]
        for (yaml, expected) in cases {
            let msg = try box.planError(yaml)
            XCTAssertTrue(msg.contains(expected), "expected '\(expected)' in: \(msg)")
        }
    }
}
