// `dissociate`: co-trained dissociated-model construction (paper Section 3, Equation 1, Appendix B).
import Foundation
import Models
import Numerics
import Pipeline

/// The `dissociate` kind: the co-trained dissociated model of the paper (Section 3, Equation 1, Appendix B).
public struct DissociateKind: StageKind {
    public init() {}
    public var name: String { "dissociate" }
    public var version: String { "2" }  // 2: one-pass cross-entropy backward, LoRA terms in the linear op (rounding)
    public static let kindDescription = """
        Builds the dissociated model by co-training a base model with a latent monitor (paper Section 3, \
        Equation 1, Appendix B). The training rows are contrast triples (harmful prompts with safe responses, b \
        = 1) and benign anchors (base-model responses, b = 0); the `probe` artifact initialises the monitor. \
        Writes `model/` (an HF directory transformers loads), `monitor/` (the final co-trained monitor, in the \
        probe layout), `log.jsonl` (per optimiser step: loss terms, monitor BCE, mean monitor score on harmful \
        and benign rows, learning rate, gradient norm), `summary.json` and `metrics.json`.
        """

    public var paramsSchema: ParamsSchema {
        ParamsSchema([
            ParamSpec("model", .string, doc: "base model path (HF directory or .gguf); default: input `model`"),
            ParamSpec("lambda_sft", .number, default: .double(0.05), doc: "weight of the response NLL"),
            ParamSpec("lambda_mon", .number, default: .double(0.1), doc: "weight of the gated monitor term"),
            ParamSpec("lambda_kl", .number, default: .double(0.3), doc: "weight of the token-wise KL to the frozen reference"),
            ParamSpec("tau", .number, default: .double(0.75), doc: "monitor target score; l* = logit(tau)"),
            ParamSpec("learning_rate", .number, default: .double(2e-5)),
            ParamSpec("weight_decay", .number, default: .double(0)),
            ParamSpec("warmup_ratio", .number, default: .double(0.1), doc: "linear warmup, then linear decay"),
            ParamSpec("micro_batch", .int, default: .int(2)),
            ParamSpec("accumulation", .int, default: .int(8), doc: "micro-batches per optimiser step"),
            ParamSpec("epochs", .int, default: .int(3)),
            ParamSpec("max_tokens", .int, default: .int(512)),
            ParamSpec("max_grad_norm", .number, default: .double(1.0), doc: "0 disables clipping"),
            ParamSpec("monitor_learning_rate", .number, default: .double(1e-4)),
            ParamSpec("monitor_weight_decay", .number, default: .double(1e-4)),
            ParamSpec("lora", .bool, default: .bool(false), doc: "LoRA instead of full fine-tuning (merged on save)"),
            ParamSpec("lora_r", .int, default: .int(16)),
            ParamSpec("lora_alpha", .number, default: .double(32)),
            ParamSpec("lora_dropout", .number, default: .double(0.05)),
            ParamSpec("lora_targets", .list(.string), default: .list(LoRAConfig().targetModules.map { .string($0) })),
            ParamSpec("max_harmful", .int, default: .int(0), doc: "use at most this many triples (0 = all)"),
            ParamSpec("max_benign", .int, default: .int(0), doc: "use at most this many anchors (0 = all)"),
            ParamSpec("checkpointing", .bool, default: .bool(true), doc: "recompute blocks in the backward (less memory)"),
            ParamSpec("keep_blocks", .int, default: .int(0),
                      doc: "with checkpointing, the last N blocks keep their activations instead (faster, more memory)"),
            ParamSpec("replay_blocks", .int, default: .int(0),
                      doc: "with checkpointing, the last N recomputed blocks store their linear layers' outputs and recompute without matrix products (identical results; about 9 row-widths per block for Llama-style blocks)"),
            ParamSpec("save_dtype", .string, default: .string("f32"), choices: ["f32", "bf16", "f16"]),
            ParamSpec("chat_template", .bool, default: .bool(true), doc: "chat-format (prompt, response) as the probe features do"),
        ])
    }

    public var inputs: InputsDeclaration {
        .named([
            InputSpec("model", required: false, doc: "upstream model artifact (HF directory); else param `model`"),
            InputSpec("monitor", doc: "the `probe` artifact (probe.safetensors + probe.json) initialising the monitor"),
            InputSpec("triples", doc: "contrast triples JSONL {id, prompt, safe, unsafe}"),
            InputSpec("anchors", doc: "benign anchors JSONL {id, prompt, response}, such as a `generate` artifact"),
        ])
    }

    public var outputs: OutputsDeclaration {
        .fixed(["model/config.json", "model/model.safetensors", "monitor/probe.safetensors", "monitor/probe.json", "log.jsonl",
                "summary.json"])
    }

    /// The training config of a stage's params (the trainer checks it with `validate()`).
    static func config(_ p: StageParams, seed: Int) throws -> DissociationConfig {
        var cfg = DissociationConfig()
        cfg.lambdaSFT = Float(try p.double("lambda_sft"))
        cfg.lambdaMon = Float(try p.double("lambda_mon"))
        cfg.lambdaKL = Float(try p.double("lambda_kl"))
        cfg.tau = try p.double("tau")
        cfg.learningRate = Float(try p.double("learning_rate"))
        cfg.weightDecay = Float(try p.double("weight_decay"))
        cfg.warmupRatio = try p.double("warmup_ratio")
        cfg.microBatch = try p.int("micro_batch")
        cfg.accumulation = try p.int("accumulation")
        cfg.epochs = try p.int("epochs")
        cfg.maxTokens = try p.int("max_tokens")
        cfg.maxGradNorm = Float(try p.double("max_grad_norm"))
        cfg.monitorLearningRate = Float(try p.double("monitor_learning_rate"))
        cfg.monitorWeightDecay = Float(try p.double("monitor_weight_decay"))
        cfg.checkpointing = try p.bool("checkpointing")
        (cfg.keptBlocks, cfg.replayedBlocks) = try StageSupport.checkpointedBlocks(p)
        cfg.seed = UInt64(truncatingIfNeeded: seed)
        cfg.lora = try StageSupport.loraConfig(p, seed: cfg.seed)
        return cfg
    }

    /// The training config and a model, before any stage runs.
    public func check(_ p: StageParams, inputNames: [String]) throws {
        try StageCheck.training(p, inputNames: inputNames, kind: name) { try Self.config(p, seed: 0) }
    }

    public func run(_ context: StageContext) throws {
        let p = context.params
        let cfg = try Self.config(p, seed: context.seed)
        // Data: harmful-prompt rows (safe responses, b = 1) and benign anchors (b = 0).
        let triplesURL = try StageSupport.inputFile(context, "triples", preferred: ["triples.jsonl"])
        var harmful = try TripleRow.read(triplesURL).map { DissociationRow(prompt: $0.prompt, response: $0.safe, harmful: true) }
        let anchorsURL = try StageSupport.inputFile(context, "anchors", preferred: ["responses.jsonl", "anchor.jsonl"])
        var benign = try ResponseRow.read(anchorsURL).map { DissociationRow(prompt: $0.prompt, response: $0.response, harmful: false) }
        if try p.int("max_harmful") > 0 { harmful = Array(harmful.prefix(try p.int("max_harmful"))) }
        if try p.int("max_benign") > 0 { benign = Array(benign.prefix(try p.int("max_benign"))) }
        guard !harmful.isEmpty else { throw StudyError.noUsableRecords(file: triplesURL.path, reason: "no triples") }
        let rows = harmful + benign

        let stage = try StageSupport.loadModel(context)
        let model = stage.model
        let monitorURL = try context.input("monitor")
        let monitor = try LinearProbe.load(from: monitorURL)
        let encoder = ChatExampleEncoder(tokenizer: try stage.requireTokenizer(), maxTokens: cfg.maxTokens,
                                         useChatTemplate: try p.bool("chat_template"))
        let trainer = try DissociationTrainer(model: model, monitor: monitor, encoder: encoder, config: cfg)
        let total = trainer.totalSteps(rows: rows.count)
        context.log("dissociate: \(harmful.count) harmful + \(benign.count) benign rows, \(total) optimiser steps, "
                    + (cfg.lora == nil ? "full fine-tuning" : "LoRA") + ", \(trainer.modelParameters.count) trainable tensors")
        let progress = context.progress("dissociate", total: total)
        let logFile = try JSONLinesLog(context.output("log.jsonl"))
        let logs = try trainer.train(rows) { log in
            try logFile.append(log.json)
            progress.advance()
        }
        progress.finish()
        let dtype: SafeTensorsDType = try p.string("save_dtype") == "bf16" ? .bf16 : (try p.string("save_dtype") == "f16" ? .f16 : .f32)
        try stage.saveHF(model, to: context.output("model/config.json").deletingLastPathComponent(), dtype: dtype)
        try monitor.save(to: context.output("monitor/probe.safetensors").deletingLastPathComponent(),
                         extra: ["trained_by": .string("dissociate (co-trained monitor)")])
        let last = logs.last
        let summary: [String: Any] = [
            "steps": logs.count, "rows_harmful": harmful.count, "rows_benign": benign.count,
            "mode": cfg.lora == nil ? "full" : "lora", "target_logit": Double(cfg.targetLogit),
            "final": last?.json ?? [:], "first": logs.first?.json ?? [:],
        ]
        try JSONLinesLog.writeObject(summary, to: context.output("summary.json"))
        var metrics: [String: Value] = ["steps": .int(logs.count)]
        if let last {
            metrics["final_kl"] = .double(last.kl)
            metrics["final_nll"] = .double(last.nll)
            metrics["final_monitor_bce"] = .double(last.monitorBCE)
            if let h = last.harmfulScore { metrics["final_harmful_score"] = .double(h) }
            if let b = last.benignScore { metrics["final_benign_score"] = .double(b) }
        }
        try context.writeMetrics(metrics)
    }
}
