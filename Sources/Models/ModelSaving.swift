// ModelSaving: writes LoRA adapters in PEFT's format and full models as Hugging Face
// directories that transformers / PEFT load unchanged.
//
// PEFT layout: adapter_config.json + adapter_model.safetensors with keys
// `base_model.model.<module>.lora_A.weight` ([r, In]) and `.lora_B.weight` ([Out, r]).
// HF layout: config.json (copied from the source checkpoint when known, else generated from
// ModelConfig), model.safetensors (F32 by default; LoRA merged in), generation and tokenizer
// files copied from the source directory when present.
import Foundation
import Numerics

/// Name mapping and file helpers for saving.
public enum ModelSaving {
    /// PEFT key prefix in front of the base model's own parameter paths.
    public static let peftPrefix = "base_model.model."

    /// `base_model.model.X.lora_A.weight` (also with `.default`) -> `X.lora_A.weight`.
    public static func internalLoRAName(peftName: String) -> String? {
        guard peftName.hasPrefix(peftPrefix) else { return nil }
        let rest = String(peftName.dropFirst(peftPrefix.count)).replacingOccurrences(of: ".default.weight", with: ".weight")
        return rest.contains(".lora_A.") || rest.contains(".lora_B.") ? rest : nil
    }

    /// Tokenizer and generation files copied next to a saved model.
    public static let companionFiles = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                        "vocab.json", "merges.txt", "tokenizer.model", "generation_config.json",
                                        "chat_template.jinja", "added_tokens.json"]

    static func writeJSON(_ object: Any, to url: URL) throws {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: url, options: .atomic)
    }
}

extension TransformerModel {
    /// Writes the adapters as a PEFT directory (`adapter_config.json`, `adapter_model.safetensors`).
    public func saveLoRA(to directory: URL, baseModelNameOrPath: String? = nil) throws {
        guard let cfg = loraConfig, !adapters.isEmpty else { throw ModelError.invalidInput("saveLoRA: the model has no LoRA adapters") }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var tensors: [String: Tensor] = [:]
        for (name, v) in loraParameters { tensors[ModelSaving.peftPrefix + name] = v.value }
        try SafeTensors.write(tensors, to: directory.appendingPathComponent("adapter_model.safetensors"),
                              metadata: ["format": "pt"])
        let config: [String: Any] = [
            "peft_type": "LORA", "task_type": self.config.head == .causalLM ? "CAUSAL_LM" : "SEQ_CLS",
            "r": cfg.rank, "lora_alpha": cfg.alpha, "lora_dropout": cfg.dropout,
            "target_modules": cfg.targetModules, "bias": "none", "fan_in_fan_out": false,
            "use_rslora": cfg.useRSLoRA, "use_dora": false, "init_lora_weights": true, "inference_mode": true,
            "base_model_name_or_path": baseModelNameOrPath ?? NSNull(), "modules_to_save": NSNull(),
            "layers_to_transform": NSNull(), "layers_pattern": NSNull(), "rank_pattern": [String: Any](),
            "alpha_pattern": [String: Any](), "revision": NSNull(),
        ]
        try ModelSaving.writeJSON(config, to: directory.appendingPathComponent("adapter_config.json"))
    }

    /// Current weights in Hugging Face names and layout, LoRA adapters merged in.
    public func hfWeights() -> [String: Tensor] {
        var w = weights
        for (m, ad) in adapters {
            guard var merged = w[m + ".weight"] else { continue }
            let outDim = merged.shape[0], inDim = merged.shape[1], r = ad.a.shape[0]
            ad.b.value.withUnsafeBufferPointer { pb in
                ad.a.value.withUnsafeBufferPointer { pa in
                    merged.withUnsafeMutableBufferPointer { pw in
                        sgemm(transA: false, transB: false, m: outDim, n: inDim, k: r, alpha: ad.scale,
                              a: pb.baseAddress!, lda: r, b: pa.baseAddress!, ldb: inDim, beta: 1,
                              c: pw.baseAddress!, ldc: inDim)
                    }
                }
            }
            w[m + ".weight"] = merged
        }
        if config.architecture == .gpt2 { w = GPT2.hfWeights(w, config: config) }
        return w
    }

    /// Writes a Hugging Face model directory: config.json, model.safetensors and, from
    /// `sourceDirectory`, the tokenizer / generation files.
    public func saveHF(to directory: URL, sourceDirectory: URL? = nil, dtype: SafeTensorsDType = .f32) throws {
        let fm = FileManager.default
        try fm.createDirectory(at: directory, withIntermediateDirectories: true)
        try SafeTensors.write(hfWeights(), to: directory.appendingPathComponent("model.safetensors"), dtype: dtype,
                              metadata: ["format": "pt"])
        let dtypeName = dtype == .f32 ? "float32" : dtype == .bf16 ? "bfloat16" : "float16"
        var configObject: [String: Any]
        if let src = sourceDirectory,
           let data = fm.contents(atPath: src.appendingPathComponent("config.json").path),
           let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
            configObject = json
        } else {
            configObject = hfConfigJSON()
        }
        configObject["torch_dtype"] = nil
        configObject["dtype"] = dtypeName
        try ModelSaving.writeJSON(configObject, to: directory.appendingPathComponent("config.json"))
        if let src = sourceDirectory {
            for file in ModelSaving.companionFiles {
                let from = src.appendingPathComponent(file), to = directory.appendingPathComponent(file)
                guard fm.fileExists(atPath: from.path), !fm.fileExists(atPath: to.path) else { continue }
                try fm.copyItem(at: from, to: to)
            }
        }
    }

    /// A transformers config.json for this model generated from `ModelConfig`.
    public func hfConfigJSON() -> [String: Any] {
        let c = config
        var j: [String: Any] = ["vocab_size": c.vocabSize, "tie_word_embeddings": spec.lmHead == spec.embed]
        if let p = c.padTokenId { j["pad_token_id"] = p }
        if let b = c.bosTokenId { j["bos_token_id"] = b }
        if let e = c.eosTokenIds.first { j["eos_token_id"] = c.eosTokenIds.count == 1 ? e as Any : c.eosTokenIds as Any }
        let cls = c.head == .sequenceClassification
        if cls { j["num_labels"] = c.numLabels }
        switch c.architecture {
        case .gpt2:
            j["model_type"] = "gpt2"
            j["architectures"] = [cls ? "GPT2ForSequenceClassification" : "GPT2LMHeadModel"]
            j["n_embd"] = c.hiddenSize; j["n_layer"] = c.numLayers; j["n_head"] = c.numHeads
            j["n_positions"] = c.maxPositions; j["n_inner"] = c.intermediateSize
            j["layer_norm_epsilon"] = c.normEps; j["activation_function"] = c.hiddenAct
            return j
        case .llama, .qwen2, .gemma2:
            let names = ["llama": "Llama", "qwen2": "Qwen2", "gemma2": "Gemma2"]
            let prefix = names[c.architecture.rawValue] ?? "Llama"
            j["model_type"] = c.architecture.rawValue
            j["architectures"] = [prefix + (cls ? "ForSequenceClassification" : "ForCausalLM")]
            j["hidden_size"] = c.hiddenSize; j["intermediate_size"] = c.intermediateSize
            j["num_hidden_layers"] = c.numLayers; j["num_attention_heads"] = c.numHeads
            j["num_key_value_heads"] = c.numKVHeads; j["head_dim"] = c.headDim
            j["max_position_embeddings"] = c.maxPositions; j["rms_norm_eps"] = c.normEps
            j["rope_theta"] = c.ropeTheta
            j[c.architecture == .gemma2 ? "hidden_activation" : "hidden_act"] = c.hiddenAct
            switch c.ropeScaling {
            case .none: break
            case .linear(let f): j["rope_scaling"] = ["rope_type": "linear", "factor": f]
            case .llama3(let f, let lo, let hi, let orig):
                j["rope_scaling"] = ["rope_type": "llama3", "factor": f, "low_freq_factor": lo, "high_freq_factor": hi,
                                     "original_max_position_embeddings": orig]
            }
            if c.architecture == .qwen2 { j["use_sliding_window"] = false }
            if c.architecture == .llama { j["attention_bias"] = c.attentionBias }
            if c.architecture == .gemma2 {
                j["query_pre_attn_scalar"] = c.queryPreAttnScalar ?? Double(c.headDim)
                j["attn_logit_softcapping"] = c.attnLogitSoftcap ?? NSNull()
                j["final_logit_softcapping"] = c.finalLogitSoftcap ?? NSNull()
                j["sliding_window"] = c.slidingWindow ?? 4096
                j["layer_types"] = spec.blocks.map { $0.window == nil ? "full_attention" : "sliding_attention" }
            }
            return j
        }
    }
}
