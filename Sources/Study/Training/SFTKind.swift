// `sft`: supervised fine-tuning with evaluation curves (paper Sections 4-5, Figure 3; also the
// safety alignment that produces the study's "Safe" base).
import Foundation
import Models
import Numerics
import Pipeline

/// The `sft` kind: supervised fine-tuning with evaluation curves (paper Sections 4-5, Figure 3).
public struct SFTKind: StageKind {
    public init() {}
    public var name: String { "sft" }
    public var version: String { "3" }  // 2: one-pass cross-entropy backward, LoRA terms in the linear op (rounding);
                                        // 3: LM head and loss in chunks of rows, no stored logits (rounding)
    public static let kindDescription = """
        Fine-tunes a model on (prompt, response) pairs, LoRA (default) or full, with evaluation curves (paper \
        Sections 4-5, Figure 3). Training uses the chat template and a response-only loss; the model is \
        evaluated at step 0, every `eval_every` steps and every epoch on held-out harmful prompts (greedy, \
        judged). The study also uses it for the safety alignment behind its "Safe" base. Writes `model/` (HF \
        directory, LoRA merged), `adapter/` (PEFT, LoRA only), `curve.jsonl`, `curve.csv`, `responses.jsonl` \
        (every evaluated response with its labels), `log.jsonl` (per optimiser step), `summary.json` and \
        `metrics.json`.
        """

    public var paramsSchema: ParamsSchema {
        ParamsSchema([
            ParamSpec("model", .string, doc: "model path (HF directory or .gguf); default: input `model`"),
            ParamSpec("lora", .bool, default: .bool(true), doc: "LoRA adapters (false: full fine-tuning)"),
            ParamSpec("lora_r", .int, default: .int(16)),
            ParamSpec("lora_alpha", .number, default: .double(32)),
            ParamSpec("lora_dropout", .number, default: .double(0.05)),
            ParamSpec("lora_targets", .list(.string), default: .list(LoRAConfig().targetModules.map { .string($0) })),
            ParamSpec("learning_rate", .number, default: .double(1e-4)),
            ParamSpec("schedule", .string, default: .string("constant"), choices: SFTSchedule.allCases.map(\.rawValue)),
            ParamSpec("warmup_ratio", .number, default: .double(0)),
            ParamSpec("weight_decay", .number, default: .double(0)),
            ParamSpec("batch_size", .int, default: .int(8)),
            ParamSpec("micro_batch", .int, default: .int(8), doc: "examples per forward/backward (memory bound)"),
            ParamSpec("epochs", .int, default: .int(1)),
            ParamSpec("max_tokens", .int, default: .int(512)),
            ParamSpec("max_grad_norm", .number, default: .double(1.0), doc: "0 disables clipping"),
            ParamSpec("max_examples", .int, default: .int(0), doc: "use at most this many training rows (0 = all)"),
            ParamSpec("chat_template", .bool, default: .bool(true)),
            ParamSpec("eval_every", .int, default: .int(5), doc: "evaluate every N optimiser steps (0 = epochs only)"),
            ParamSpec("eval_types", .list(.string), default: .list([.string("harmful-direct"), .string("jailbreak")])),
            ParamSpec("max_eval_prompts", .int, default: .int(0), doc: "0 = all"),
            ParamSpec("eval_max_new_tokens", .int, default: .int(128)),
            ParamSpec("eval_batch", .int, default: .int(8)),
            ParamSpec("judges", .list(.map), default: .list([.map(["name": .string("lexical"), "kind": .string("lexical")])]),
                      doc: "judges as in the `judge` kind (lexical, guard, external, ensemble)"),
            ParamSpec("checkpointing", .bool, default: .bool(true), doc: "recompute blocks in the backward (less memory)"),
            ParamSpec("keep_blocks", .int, default: .int(0),
                      doc: "with checkpointing, the last N blocks keep their activations instead (faster, more memory)"),
            ParamSpec("replay_blocks", .int, default: .int(0),
                      doc: "with checkpointing, the last N recomputed blocks store their linear layers' outputs and recompute without matrix products (identical results; about 9 row-widths per block for Llama-style blocks)"),
            ParamSpec("save_dtype", .string, default: .string("f32"), choices: ["f32", "bf16", "f16"]),
        ])
    }

    public var inputs: InputsDeclaration {
        .named([
            InputSpec("model", required: false, doc: "upstream model artifact (HF directory); else param `model`"),
            InputSpec("data", doc: "response rows JSONL {id, prompt, response}, such as `refusal-filter` or `synthetic-refusals` output"),
            InputSpec("eval_prompts", required: false, doc: "held-out prompt set {id, prompt, source, type}; only `eval_types` are kept"),
        ])
    }

    public var outputs: OutputsDeclaration {
        .fixed(["model/config.json", "model/model.safetensors", "curve.jsonl", "curve.csv", "responses.jsonl",
                "log.jsonl", "summary.json"])
    }

    /// The training config of a stage's params (the trainer checks it with `validate()`).
    static func config(_ p: StageParams, seed: Int) throws -> SFTConfig {
        var cfg = SFTConfig()
        cfg.seed = UInt64(truncatingIfNeeded: seed)
        cfg.lora = try StageSupport.loraConfig(p, seed: cfg.seed)
        cfg.learningRate = Float(try p.double("learning_rate"))
        let schedule = try p.string("schedule")
        guard let parsed = SFTSchedule(rawValue: schedule) else {
            throw StudyError.invalidConfiguration("params.schedule: unknown schedule '\(schedule)'; use "
                                                  + SFTSchedule.allCases.map(\.rawValue).joined(separator: ", "))
        }
        cfg.schedule = parsed
        cfg.warmupRatio = try p.double("warmup_ratio")
        cfg.weightDecay = Float(try p.double("weight_decay"))
        cfg.batchSize = try p.int("batch_size")
        cfg.microBatch = min(try p.int("micro_batch"), cfg.batchSize)
        cfg.epochs = try p.int("epochs")
        cfg.maxTokens = try p.int("max_tokens")
        cfg.maxGradNorm = Float(try p.double("max_grad_norm"))
        cfg.checkpointing = try p.bool("checkpointing")
        (cfg.keptBlocks, cfg.replayedBlocks) = try StageSupport.checkpointedBlocks(p)
        return cfg
    }

    /// The training config and a model, before any stage runs.
    public func check(_ p: StageParams, inputNames: [String]) throws {
        try StageCheck.training(p, inputNames: inputNames, kind: name) { try Self.config(p, seed: 0) }
    }

    public func run(_ context: StageContext) throws {
        let p = context.params
        let cfg = try Self.config(p, seed: context.seed)
        let stage = try StageSupport.loadModel(context)
        let model = stage.model
        let encoder = ChatExampleEncoder(tokenizer: try stage.requireTokenizer(), maxTokens: cfg.maxTokens,
                                         useChatTemplate: try p.bool("chat_template"))
        let dataURL = try StageSupport.inputFile(context, "data", preferred: ["kept.jsonl", "responses.jsonl", "refusals.jsonl"])
        var data = try ResponseRow.read(dataURL)
        if try p.int("max_examples") > 0 { data = Array(data.prefix(try p.int("max_examples"))) }
        let examples = try data.map { try encoder.encode(prompt: $0.prompt, response: $0.response) }
        guard examples.contains(where: { $0.responseTokens > 0 }) else {
            throw StudyError.noUsableRecords(file: dataURL.path, reason: "no example has response tokens within max_tokens \(cfg.maxTokens)")
        }
        var prompts: [PromptRow] = []
        if context.hasInput("eval_prompts") {
            let types = Set(try p.strings("eval_types"))
            let url = try StageSupport.inputFile(context, "eval_prompts", preferred: ["eval.jsonl", "prompts.jsonl"])
            prompts = try PromptRow.read(url, defaultType: .harmfulDirect).filter { types.contains($0.type.rawValue) }
            if try p.int("max_eval_prompts") > 0 { prompts = Array(prompts.prefix(try p.int("max_eval_prompts"))) }
        }
        var gen = ResponseGenerationOptions()
        gen.maxNewTokens = try p.int("eval_max_new_tokens")
        gen.batchSize = try p.int("eval_batch")
        gen.useChatTemplate = encoder.useChatTemplate
        gen.maxPromptTokens = cfg.maxTokens
        let evaluator = SFTEvaluator(prompts: prompts, judges: try JudgeSetup.judges(context, try ParamMap.list(p, "judges")),
                                     generator: ResponseGenerator(model: stage, options: gen))
        let trainer = try SFTTrainer(model: model, encoder: encoder, config: cfg)
        let steps = trainer.stepsPerEpoch(examples.count) * cfg.epochs
        context.log("sft: \(examples.count) examples (\(examples.filter(\.truncated).count) truncated), \(steps) steps, "
                    + (cfg.lora == nil ? "full fine-tuning" : "LoRA r \(cfg.lora?.rank ?? 0)") + ", \(prompts.count) eval prompts")

        let curveJSONL = try JSONLinesLog(context.output("curve.jsonl"))
        let responsesFile = try JSONLinesLog(context.output("responses.jsonl"))
        let logFile = try JSONLinesLog(context.output("log.jsonl"))
        var csv = CurvePoint.csvHeader + "\n"
        var curve: [CurvePoint] = []
        let progress = context.progress("sft", total: steps)
        try trainer.train(examples, evalEvery: try p.int("eval_every"), evaluate: { point in
            guard !prompts.isEmpty else { return }
            let (points, rows) = try evaluator.evaluate(at: point)
            for c in points {
                try curveJSONL.append(c.json)
                csv += c.csvRow + "\n"
                context.log("eval step \(point.step) [\(c.judge)]: compliance \(c.compliance.rate ?? 0), refusal \(c.refusal.rate ?? 0), empty \(c.empty.rate ?? 0)")
            }
            curve += points
            for r in rows { try responsesFile.append(r) }
        }, onStep: { log in
            try logFile.append(log.json)
            progress.advance()
        })
        progress.finish()
        do { try Data(csv.utf8).write(to: context.output("curve.csv")) } catch {
            throw StudyError.writeFailed(path: context.output("curve.csv").path, reason: "\(error)")
        }
        if cfg.lora != nil {
            // No base path: a path into this store (or this machine) would make the output's
            // content hash depend on where the store lives. The merged model is in model/.
            try model.saveLoRA(to: context.output("adapter/adapter_config.json").deletingLastPathComponent())
        }
        let dtypeName = try p.string("save_dtype")
        let dtype: SafeTensorsDType = dtypeName == "bf16" ? .bf16 : (dtypeName == "f16" ? .f16 : .f32)
        try stage.saveHF(model, to: context.output("model/config.json").deletingLastPathComponent(), dtype: dtype)
        let summary: [String: Any] = [
            "steps": steps, "examples": examples.count, "truncated": examples.filter(\.truncated).count,
            "mode": cfg.lora == nil ? "full" : "lora",
            "eval_prompts": prompts.count, "evaluations": curve.map(\.json),
        ]
        try JSONLinesLog.writeObject(summary, to: context.output("summary.json"))
        var metrics: [String: Value] = ["steps": .int(steps), "examples": .int(examples.count)]
        if let last = curve.last {
            metrics["final_compliance"] = last.compliance.rate.map { .double($0) } ?? .null
            metrics["final_refusal"] = last.refusal.rate.map { .double($0) } ?? .null
            metrics["final_empty"] = last.empty.rate.map { .double($0) } ?? .null
        }
        try context.writeMetrics(metrics)
    }
}
