// HFConfig: Hugging Face `config.json` / `generation_config.json` parsing into ModelConfig.
//
// Reads transformers 4.x style (`rope_theta`, `rope_scaling` with `rope_type`/`type`) and 5.x
// style (`rope_parameters`, `layer_types`) for Llama, Qwen2, Gemma-2 and GPT-2, with the
// defaults of the transformers config classes where a key is absent.
import Foundation

/// A parsed Hugging Face model config.
public struct HFConfig: Sendable, Equatable {
    /// The hyper-parameters.
    public var config: ModelConfig
    /// `architectures[0]` (e.g. "LlamaForCausalLM"), or the model type when absent.
    public var architectureName: String
    /// Sequence classification labels ordered by id (`id2label`); empty when absent.
    public var labels: [String]

    /// Parses a `config.json` document; `file` names it in errors.
    public static func parse(_ data: Data, file: String) throws -> HFConfig {
        let j = try JSONFields(data: data, file: file)
        let archList = try j.array("architectures")?.compactMap { $0 as? String } ?? []
        let modelType = try j.string("model_type")
        let archName = archList.first ?? modelType ?? ""
        let arch: Architecture
        switch (archName.components(separatedBy: "For").first ?? archName, modelType) {
        case ("Llama", _), ("LlamaModel", _), (_, "llama"): arch = .llama
        case ("Qwen2", _), ("Qwen2Model", _), (_, "qwen2"): arch = .qwen2
        case ("Gemma2", _), ("Gemma2Model", _), (_, "gemma2"): arch = .gemma2
        case ("GPT2LMHeadModel", _), ("GPT2", _), ("GPT2Model", _), (_, "gpt2"): arch = .gpt2
        default: throw ModelError.unsupportedArchitecture(file: file, name: archName.isEmpty ? "(no architectures or model_type)" : archName)
        }
        var c: ModelConfig
        if arch == .gpt2 {
            let d = try j.int("n_embd") ?? 768
            c = ModelConfig(architecture: .gpt2, vocabSize: try j.int("vocab_size") ?? 50257, hiddenSize: d,
                            intermediateSize: try j.int("n_inner") ?? 4 * d, numLayers: try j.int("n_layer") ?? 12,
                            numHeads: try j.int("n_head") ?? 12, numKVHeads: try j.int("n_head") ?? 12)
            c.maxPositions = try j.int("n_positions") ?? 1024
            c.normEps = try j.double("layer_norm_epsilon") ?? 1e-5
            c.hiddenAct = try j.string("activation_function") ?? "gelu_new"
            c.tieWordEmbeddings = try j.bool("tie_word_embeddings") ?? true
            c.bosTokenId = try j.int("bos_token_id") ?? 50256
        } else {
            let heads = try j.requireInt("num_attention_heads")
            let hidden = try j.requireInt("hidden_size")
            c = ModelConfig(architecture: arch, vocabSize: try j.requireInt("vocab_size"), hiddenSize: hidden,
                            intermediateSize: try j.requireInt("intermediate_size"),
                            numLayers: try j.requireInt("num_hidden_layers"), numHeads: heads,
                            numKVHeads: try j.int("num_key_value_heads") ?? heads,
                            headDim: try j.int("head_dim") ?? (arch == .gemma2 ? 256 : nil))
            c.maxPositions = try j.int("max_position_embeddings") ?? (arch == .qwen2 ? 32768 : arch == .gemma2 ? 8192 : 2048)
            c.normEps = try j.double("rms_norm_eps") ?? 1e-6
            c.tieWordEmbeddings = try j.bool("tie_word_embeddings") ?? (arch == .gemma2)
            c.attentionBias = try j.bool("attention_bias") ?? (arch == .qwen2)
            c.bosTokenId = try j.int("bos_token_id")
            try parseRope(j, into: &c)
            if arch == .gemma2 {
                c.hiddenAct = try j.string("hidden_activation") ?? j.string("hidden_act") ?? "gelu_pytorch_tanh"
                c.queryPreAttnScalar = try j.double("query_pre_attn_scalar") ?? 256
                c.attnLogitSoftcap = try j.isNull("attn_logit_softcapping") ? nil : (j.double("attn_logit_softcapping") ?? 50)
                c.finalLogitSoftcap = try j.isNull("final_logit_softcapping") ? nil : (j.double("final_logit_softcapping") ?? 30)
                c.slidingWindow = try j.int("sliding_window") ?? 4096
                c.slidingLayers = (0..<c.numLayers).map { $0 % 2 == 0 }
            } else {
                c.hiddenAct = try j.string("hidden_act") ?? "silu"
                if arch == .qwen2, try j.bool("use_sliding_window") == true, let window = try j.int("sliding_window") {
                    let first = try j.int("max_window_layers") ?? c.numLayers
                    c.slidingWindow = window
                    c.slidingLayers = (0..<c.numLayers).map { $0 >= first }
                }
            }
            if let types = try j.array("layer_types") {
                guard types.count == c.numLayers else {
                    throw ModelError.badConfig(file: file, key: "layer_types", expected: "\(c.numLayers) entries (num_hidden_layers), got \(types.count)")
                }
                c.slidingLayers = try types.enumerated().map { i, t in
                    switch t as? String {
                    case "sliding_attention": return true
                    case "full_attention": return false
                    default: throw ModelError.badConfig(file: file, key: "layer_types[\(i)]", expected: "\"sliding_attention\" or \"full_attention\", got \(t)")
                    }
                }
                if c.slidingLayers?.contains(true) == true, c.slidingWindow == nil {
                    c.slidingWindow = try j.int("sliding_window")
                }
            }
        }
        guard c.hiddenSize > 0, c.numHeads > 0, c.numLayers > 0, c.numKVHeads > 0, c.numHeads % c.numKVHeads == 0 else {
            throw ModelError.badConfig(file: file, key: "num_attention_heads", expected: "positive sizes with num_attention_heads a multiple of num_key_value_heads")
        }
        c.padTokenId = try j.int("pad_token_id")
        c.eosTokenIds = try j.intList("eos_token_id") ?? (arch == .gpt2 ? [50256] : [])
        if archName.hasSuffix("ForSequenceClassification") { c.head = .sequenceClassification }
        var labels: [String] = []
        if let id2label = try j.object("id2label") {
            let pairs = id2label.compactMap { k, v -> (Int, String)? in
                guard let i = Int(k) else { return nil }
                return (i, v as? String ?? "\(v)")
            }.sorted { $0.0 < $1.0 }
            labels = pairs.map(\.1)
        }
        c.numLabels = try j.int("num_labels") ?? (labels.isEmpty ? 2 : labels.count)
        return HFConfig(config: c, architectureName: archName, labels: labels)
    }

    /// RoPE base and scaling from `rope_parameters` (5.x) or `rope_theta` / `rope_scaling` (4.x).
    private static func parseRope(_ j: JSONFields, into c: inout ModelConfig) throws {
        var params: JSONFields?
        var key = "rope_scaling"
        if var p = try j.child("rope_parameters") {
            key = "rope_parameters"
            // Per-layer-type parameters ({"full_attention": {...}, ...}): use the full-attention entry.
            if try p.string("rope_type") == nil, try p.double("rope_theta") == nil, let full = try p.child("full_attention") {
                p = full
                key = "rope_parameters.full_attention"
            }
            params = p
        } else {
            params = try j.child("rope_scaling")
        }
        c.ropeTheta = try params?.double("rope_theta") ?? j.double("rope_theta") ?? 10_000
        guard let p = params else { c.ropeScaling = .none; return }
        let type = try p.string("rope_type") ?? p.string("type") ?? "default"
        switch type {
        case "default": c.ropeScaling = .none
        case "linear": c.ropeScaling = .linear(factor: try p.requireDouble("factor", prefix: key))
        case "llama3":
            c.ropeScaling = .llama3(factor: try p.requireDouble("factor", prefix: key),
                                    lowFreqFactor: try p.double("low_freq_factor") ?? 1,
                                    highFreqFactor: try p.double("high_freq_factor") ?? 4,
                                    originalMaxPositions: try p.int("original_max_position_embeddings") ?? 8192)
        default:
            throw ModelError.badConfig(file: j.file, key: "\(key).rope_type", expected: "\"default\", \"linear\" or \"llama3\", got \"\(type)\"")
        }
    }

    /// Reads and parses `config.json` at `url`.
    public static func load(_ url: URL) throws -> HFConfig {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw ModelError.fileNotFound(path: url.path, what: "config.json")
        }
        return try parse(data, file: url.path)
    }

    /// Generation defaults from `generation_config.json`: eos ids (int or list), bos, pad.
    public static func applyGenerationConfig(_ data: Data, file: String, to c: inout ModelConfig) throws {
        let j = try JSONFields(data: data, file: file)
        if let eos = try j.intList("eos_token_id"), !eos.isEmpty { c.eosTokenIds = eos }
        if let bos = try j.int("bos_token_id") { c.bosTokenId = bos }
        if c.padTokenId == nil, let pad = try j.int("pad_token_id") { c.padTokenId = pad }
    }
}

/// Typed, error-reporting access to the keys of one JSON object.
struct JSONFields {
    let dict: [String: Any]
    let file: String
    let prefix: String

    init(data: Data, file: String) throws {
        let any: Any
        do { any = try JSONSerialization.jsonObject(with: data) } catch {
            throw ModelError.badConfig(file: file, key: "(document)", expected: "valid JSON (\(error.localizedDescription))")
        }
        guard let d = any as? [String: Any] else {
            throw ModelError.badConfig(file: file, key: "(document)", expected: "a JSON object")
        }
        self.init(dict: d, file: file, prefix: "")
    }

    init(dict: [String: Any], file: String, prefix: String) {
        self.dict = dict
        self.file = file
        self.prefix = prefix
    }

    private func fail(_ key: String, _ expected: String) -> ModelError {
        .badConfig(file: file, key: prefix + key, expected: "\(expected), got \(dict[key].map { "\($0)" } ?? "nothing")")
    }

    /// Present and null (JSON null, NSNull).
    func isNull(_ key: String) -> Bool { dict[key] is NSNull }

    func value(_ key: String) -> Any? {
        guard let v = dict[key], !(v is NSNull) else { return nil }
        return v
    }

    func int(_ key: String) throws -> Int? {
        guard let v = value(key) else { return nil }
        if let i = v as? Int { return i }
        if let d = v as? Double, d.rounded() == d { return Int(d) }
        throw fail(key, "an integer")
    }

    func requireInt(_ key: String) throws -> Int {
        guard let v = try int(key) else { throw fail(key, "an integer") }
        return v
    }

    func double(_ key: String) throws -> Double? {
        guard let v = value(key) else { return nil }
        if let d = v as? Double { return d }
        if let i = v as? Int { return Double(i) }
        throw fail(key, "a number")
    }

    func requireDouble(_ key: String, prefix: String) throws -> Double {
        guard let v = try double(key) else { throw ModelError.badConfig(file: file, key: "\(prefix).\(key)", expected: "a number") }
        return v
    }

    func bool(_ key: String) throws -> Bool? {
        guard let v = value(key) else { return nil }
        if let b = v as? Bool { return b }
        throw fail(key, "true or false")
    }

    func string(_ key: String) throws -> String? {
        guard let v = value(key) else { return nil }
        if let s = v as? String { return s }
        throw fail(key, "a string")
    }

    func array(_ key: String) throws -> [Any]? {
        guard let v = value(key) else { return nil }
        if let a = v as? [Any] { return a }
        throw fail(key, "an array")
    }

    func object(_ key: String) throws -> [String: Any]? {
        guard let v = value(key) else { return nil }
        if let o = v as? [String: Any] { return o }
        throw fail(key, "an object")
    }

    func child(_ key: String) throws -> JSONFields? {
        guard let o = try object(key) else { return nil }
        return JSONFields(dict: o, file: file, prefix: prefix + key + ".")
    }

    /// An integer or a list of integers (e.g. `eos_token_id`).
    func intList(_ key: String) throws -> [Int]? {
        guard let v = value(key) else { return nil }
        if let i = try? int(key) { return [i] }
        guard let a = v as? [Any] else { throw fail(key, "an integer or a list of integers") }
        return try a.map {
            if let i = $0 as? Int { return i }
            throw fail(key, "a list of integers")
        }
    }
}
