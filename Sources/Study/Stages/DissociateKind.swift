// `dissociate`: co-trained dissociated-model construction (paper Section 3, Equation 1, Appendix B).
import Foundation
import Models
import Numerics
import Pipeline

/// Builds the dissociated model from a base model, contrast triples (harmful prompts with safe
/// responses, b = 1), benign anchors (base-model responses, b = 0) and the `probe` artifact that
/// initialises the monitor.
///
/// Inputs: `model` (HF directory; or param `model`), `monitor` (probe safetensors or the probe
/// artifact directory), `triples` (JSONL `{"id","prompt","safe","unsafe"}`), `anchors` (JSONL
/// `{"id","prompt","response"}`). Outputs: `model/` (HF directory, transformers-loadable),
/// `monitor.safetensors` (the final co-trained monitor), `log.jsonl` (per optimiser step: loss
/// terms, monitor BCE, mean monitor score on harmful and benign rows, lr, grad norm),
/// `summary.json`, `metrics.json`.
public struct DissociateKind: StageKind {
    public init() {}
    public var name: String { "dissociate" }
    public var version: String { "1" }

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
            ParamSpec("save_dtype", .string, default: .string("f32"), choices: ["f32", "bf16", "f16"]),
        ])
    }

    public var inputs: InputsDeclaration {
        .named([
            InputSpec("model", required: false, doc: "upstream model artifact (HF directory)"),
            InputSpec("monitor", doc: "the `probe` artifact initialising the monitor"),
            InputSpec("triples", doc: "contrast triples JSONL"),
            InputSpec("anchors", doc: "benign anchors JSONL"),
        ])
    }

    public var outputs: OutputsDeclaration {
        .fixed(["model/config.json", "model/model.safetensors", "monitor.safetensors", "log.jsonl", "summary.json"])
    }

    /// The probe safetensors inside an artifact directory (`probe.safetensors`, else the only `.safetensors`).
    static func probeFile(_ url: URL) throws -> URL {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw StudyError.unreadable(file: url.path, reason: "monitor input does not exist")
        }
        guard isDir.boolValue else { return url }
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []).filter { $0.hasSuffix(".safetensors") }
        if names.contains("probe.safetensors") { return url.appendingPathComponent("probe.safetensors") }
        guard names.count == 1 else {
            throw StudyError.unreadable(file: url.path, reason: "expected probe.safetensors or exactly one .safetensors file, found \(names.sorted())")
        }
        return url.appendingPathComponent(names[0])
    }

    public func run(_ context: StageContext) throws {
        let p = context.params
        var cfg = DissociationConfig()
        cfg.lambdaSFT = Float(try p.double("lambda_sft"))
        cfg.lambdaMon = Float(try p.double("lambda_mon"))
        cfg.lambdaKL = Float(try p.double("lambda_kl"))
        cfg.tau = try p.double("tau")
        guard cfg.tau > 0 && cfg.tau < 1 else { throw StudyError.invalidConfiguration("tau must be in (0, 1), got \(cfg.tau)") }
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
        cfg.seed = UInt64(truncatingIfNeeded: context.seed)
        if try p.bool("lora") {
            cfg.lora = LoRAConfig(rank: try p.int("lora_r"), alpha: try p.double("lora_alpha"),
                                  dropout: try p.double("lora_dropout"), targetModules: try p.strings("lora_targets"),
                                  seed: cfg.seed)
        }
        // Data: harmful-prompt rows (safe responses, b = 1) and benign anchors (b = 0).
        var harmful = try TrainingIO.readJSONL(try context.input("triples")).map {
            DissociationRow(prompt: try TrainingIO.string($0, "prompt"), response: try TrainingIO.string($0, "safe"), harmful: true)
        }
        var benign = try TrainingIO.readJSONL(try context.input("anchors")).map {
            DissociationRow(prompt: try TrainingIO.string($0, "prompt"), response: try TrainingIO.string($0, "response"), harmful: false)
        }
        if try p.int("max_harmful") > 0 { harmful = Array(harmful.prefix(try p.int("max_harmful"))) }
        if try p.int("max_benign") > 0 { benign = Array(benign.prefix(try p.int("max_benign"))) }
        guard !harmful.isEmpty else { throw StudyError.noUsableRecords(file: try context.input("triples").path, reason: "no triples") }
        let rows = harmful + benign

        let modelURL = try TrainingIO.modelPath(context)
        let (model, tokenizer, ckpt) = try TrainingIO.loadModel(at: modelURL)
        let monitorURL = try Self.probeFile(try context.input("monitor"))
        let monitor = try MonitorProbe.load(monitorURL)
        let encoder = ChatExampleEncoder(tokenizer: tokenizer, maxTokens: cfg.maxTokens)
        let trainer = try DissociationTrainer(model: model, monitor: monitor, encoder: encoder, config: cfg)
        let total = trainer.totalSteps(rows: rows.count)
        context.log("dissociate: \(harmful.count) harmful + \(benign.count) benign rows, \(total) optimiser steps, "
                    + (cfg.lora == nil ? "full fine-tuning" : "LoRA") + ", \(trainer.modelParameters.count) trainable tensors")
        let progress = context.progress("dissociate", total: total)
        let logHandle = try TrainingIO.createFile(context.output("log.jsonl"))
        defer { try? logHandle.close() }
        let start = Date()
        let logs = try trainer.train(rows) { log in
            try TrainingIO.append(log.json, to: logHandle)
            progress.advance()
        }
        progress.finish()
        let dtype: SafeTensorsDType = try p.string("save_dtype") == "bf16" ? .bf16 : (try p.string("save_dtype") == "f16" ? .f16 : .f32)
        try TrainingIO.saveHF(model, checkpoint: ckpt, to: context.output("model/config.json").deletingLastPathComponent(),
                               dtype: dtype)
        try monitor.save(context.output("monitor.safetensors"))
        let last = logs.last
        let summary: [String: Any] = [
            "steps": logs.count, "rows_harmful": harmful.count, "rows_benign": benign.count,
            "seconds": Date().timeIntervalSince(start), "mode": cfg.lora == nil ? "full" : "lora",
            "target_logit": Double(cfg.targetLogit), "monitor_init": monitorURL.path, "base_model": modelURL.path,
            "final": last?.json ?? [:], "first": logs.first?.json ?? [:],
        ]
        try TrainingIO.writeJSON(summary, to: context.output("summary.json"))
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
