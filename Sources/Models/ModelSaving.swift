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

    static func writeJSON(_ object: HFJSON, to url: URL) throws {
        try Data((object.serialized(indent: 0) + "\n").utf8).write(to: url, options: .atomic)
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
        let alpha: HFJSON = cfg.alpha == cfg.alpha.rounded() ? .int(Int(cfg.alpha)) : .double(cfg.alpha)
        let config: HFJSON = .object([
            "peft_type": .string("LORA"), "task_type": .string(self.config.head == .causalLM ? "CAUSAL_LM" : "SEQ_CLS"),
            "r": .int(cfg.rank), "lora_alpha": alpha, "lora_dropout": .double(cfg.dropout),
            "target_modules": .array(cfg.targetModules.map { .string($0) }), "bias": .string("none"),
            "fan_in_fan_out": .bool(false), "use_rslora": .bool(cfg.useRSLoRA), "use_dora": .bool(false),
            "init_lora_weights": .bool(true), "inference_mode": .bool(true),
            "base_model_name_or_path": baseModelNameOrPath.map { .string($0) } ?? .null, "modules_to_save": .null,
            "layers_to_transform": .null, "layers_pattern": .null, "rank_pattern": .object([:]),
            "alpha_pattern": .object([:]), "revision": .null,
        ])
        try ModelSaving.writeJSON(config, to: directory.appendingPathComponent("adapter_config.json"))
    }

    /// Current weights in Hugging Face names and layout, LoRA adapters merged in.
    public func hfWeights() -> [String: Tensor] {
        var w = weights
        for (m, ad) in adapters {
            if let base = w[m + ".weight"] { w[m + ".weight"] = ad.merged(into: base) }
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
        let configURL = directory.appendingPathComponent("config.json")
        if let src = sourceDirectory,
           let data = fm.contents(atPath: src.appendingPathComponent("config.json").path),
           var text = String(data: data, encoding: .utf8) {
            // Copied verbatim (transformers reads its own file back unchanged) except the dtype.
            for key in ["torch_dtype", "dtype"] {
                for old in ["float32", "bfloat16", "float16"] {
                    text = text.replacingOccurrences(of: "\"\(key)\": \"\(old)\"", with: "\"\(key)\": \"\(dtypeName)\"")
                }
            }
            try Data(text.utf8).write(to: configURL, options: .atomic)
        } else {
            var generated = hfConfigJSON()
            generated["dtype"] = .string(dtypeName)
            try ModelSaving.writeJSON(.object(generated), to: configURL)
        }
        if let src = sourceDirectory {
            for file in ModelSaving.companionFiles {
                let from = src.appendingPathComponent(file), to = directory.appendingPathComponent(file)
                guard fm.fileExists(atPath: from.path), !fm.fileExists(atPath: to.path) else { continue }
                try fm.copyItem(at: from, to: to)
            }
        }
    }

    /// A transformers config.json for this model generated from `ModelConfig`.
    public func hfConfigJSON() -> [String: HFJSON] {
        let c = config
        var j: [String: HFJSON] = ["vocab_size": .int(c.vocabSize), "tie_word_embeddings": .bool(spec.lmHead == spec.embed)]
        if let p = c.padTokenId { j["pad_token_id"] = .int(p) }
        if let b = c.bosTokenId { j["bos_token_id"] = .int(b) }
        if !c.eosTokenIds.isEmpty {
            j["eos_token_id"] = c.eosTokenIds.count == 1 ? .int(c.eosTokenIds[0]) : .array(c.eosTokenIds.map { .int($0) })
        }
        let cls = c.head == .sequenceClassification
        if cls { j["num_labels"] = .int(c.numLabels) }
        switch c.architecture {
        case .gpt2:
            j["model_type"] = .string("gpt2")
            j["architectures"] = .array([.string(cls ? "GPT2ForSequenceClassification" : "GPT2LMHeadModel")])
            j["n_embd"] = .int(c.hiddenSize); j["n_layer"] = .int(c.numLayers); j["n_head"] = .int(c.numHeads)
            j["n_positions"] = .int(c.maxPositions); j["n_inner"] = .int(c.intermediateSize)
            j["layer_norm_epsilon"] = .double(c.normEps); j["activation_function"] = .string(c.hiddenAct)
            return j
        case .llama, .qwen2, .gemma2:
            let names = ["llama": "Llama", "qwen2": "Qwen2", "gemma2": "Gemma2"]
            let prefix = names[c.architecture.rawValue] ?? "Llama"
            j["model_type"] = .string(c.architecture.rawValue)
            j["architectures"] = .array([.string(prefix + (cls ? "ForSequenceClassification" : "ForCausalLM"))])
            j["hidden_size"] = .int(c.hiddenSize); j["intermediate_size"] = .int(c.intermediateSize)
            j["num_hidden_layers"] = .int(c.numLayers); j["num_attention_heads"] = .int(c.numHeads)
            j["num_key_value_heads"] = .int(c.numKVHeads); j["head_dim"] = .int(c.headDim)
            j["max_position_embeddings"] = .int(c.maxPositions); j["rms_norm_eps"] = .double(c.normEps)
            j[c.architecture == .gemma2 ? "hidden_activation" : "hidden_act"] = .string(c.hiddenAct)
            var rope: [String: HFJSON] = ["rope_theta": .double(c.ropeTheta), "rope_type": .string("default")]
            switch c.ropeScaling {
            case .none: break
            case .linear(let f): rope["rope_type"] = .string("linear"); rope["factor"] = .double(f)
            case .llama3(let f, let lo, let hi, let orig):
                rope["rope_type"] = .string("llama3"); rope["factor"] = .double(f)
                rope["low_freq_factor"] = .double(lo); rope["high_freq_factor"] = .double(hi)
                rope["original_max_position_embeddings"] = .int(orig)
            }
            j["rope_parameters"] = .object(rope)
            if c.architecture == .qwen2 { j["use_sliding_window"] = .bool(false) }
            if c.architecture == .llama { j["attention_bias"] = .bool(c.attentionBias) }
            if c.architecture == .gemma2 {
                j["query_pre_attn_scalar"] = .int(Int(c.queryPreAttnScalar ?? Double(c.headDim)))
                j["attn_logit_softcapping"] = c.attnLogitSoftcap.map { .double($0) } ?? .null
                j["final_logit_softcapping"] = c.finalLogitSoftcap.map { .double($0) } ?? .null
                j["sliding_window"] = .int(c.slidingWindow ?? 4096)
                j["layer_types"] = .array(spec.blocks.map { .string($0.window == nil ? "full_attention" : "sliding_attention") })
            }
            return j
        }
    }
}

/// A JSON value that keeps integers and floating-point numbers apart (transformers' config
/// validation rejects `30` where it expects a float).
public indirect enum HFJSON: Sendable, Equatable {
    case null, bool(Bool), int(Int), double(Double), string(String), array([HFJSON]), object([String: HFJSON])

    /// Pretty JSON text with sorted keys.
    public func serialized(indent: Int) -> String {
        let pad = String(repeating: "  ", count: indent + 1), end = String(repeating: "  ", count: indent)
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d):
            if d.isFinite && d == d.rounded() && abs(d) < 1e15 { return String(format: "%.1f", d) }
            return d.isFinite ? "\(d)" : "null"
        case .string(let s): return HFJSON.quote(s)
        case .array(let a):
            if a.isEmpty { return "[]" }
            return "[\n" + a.map { pad + $0.serialized(indent: indent + 1) }.joined(separator: ",\n") + "\n" + end + "]"
        case .object(let o):
            if o.isEmpty { return "{}" }
            return "{\n" + o.keys.sorted().map { pad + HFJSON.quote($0) + ": " + o[$0]!.serialized(indent: indent + 1) }
                .joined(separator: ",\n") + "\n" + end + "}"
        }
    }

    static func quote(_ s: String) -> String { SafeTensors.jsonString(s) }
}
