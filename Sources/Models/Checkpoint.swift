// Checkpoint: a model's config plus its weights (Float32) under Hugging Face parameter paths.
//
// Sources: a Hugging Face directory (config.json, generation_config.json, model.safetensors or
// a sharded model.safetensors.index.json, tokenizer files) or a `.gguf` file (see
// GGUFCheckpoint.swift). Weights keep the layout transformers uses for the same path:
// Llama/Qwen2/Gemma-2 linear weights are [out, in]; GPT-2 Conv1D weights (`c_attn`, `c_proj`,
// `c_fc`) are [in, out]. Tied models (`config.tieWordEmbeddings`) have no `lm_head.weight`;
// use the embedding. GPT-2 names always carry the `transformer.` prefix.
import Dispatch
import Foundation
import Numerics

/// Where a checkpoint's weights came from.
public enum CheckpointFormat: String, Sendable, Codable {
    case safetensors, gguf
}

/// Tokenizer inputs found next to a checkpoint (parsed by the Tokenizers module).
public struct TokenizerFiles: Sendable, Equatable {
    /// `tokenizer.json` (Hugging Face tokenizers format).
    public var tokenizerJSON: URL?
    /// `tokenizer_config.json` (special tokens, chat template, add_bos_token...).
    public var tokenizerConfigJSON: URL?
    /// `special_tokens_map.json`.
    public var specialTokensMapJSON: URL?
    /// GPT-2 style `vocab.json` + `merges.txt`.
    public var vocabJSON: URL?
    public var mergesTXT: URL?
    /// `chat_template.jinja` (transformers 5.x saves the template there).
    public var chatTemplateFile: URL?
    /// GGUF `tokenizer.*` metadata (model, pre, tokens, merges, token_type, scores, ids...).
    public var ggufMetadata: [String: GGUFValue] = [:]
    /// The chat template text, from `tokenizer_config.json`, `chat_template.jinja` or GGUF.
    public var chatTemplate: String?

    public init() {}

    /// Whether any tokenizer description is available.
    public var isPresent: Bool {
        tokenizerJSON != nil || vocabJSON != nil || ggufMetadata["tokenizer.ggml.tokens"] != nil
    }
}

/// A loaded checkpoint: config, Float32 weights by Hugging Face path, tokenizer inputs.
public struct Checkpoint: Sendable {
    /// The directory or `.gguf` file it was loaded from.
    public var source: URL
    public var format: CheckpointFormat
    public var config: ModelConfig
    /// `architectures[0]` of config.json, or "<general.architecture> (gguf)".
    public var architectureName: String
    /// Sequence-classification labels by id (config `id2label`), empty when none.
    public var labels: [String]
    /// Weights by Hugging Face parameter path.
    public var weights: [String: Tensor]
    /// Storage type of each weight in the source file ("BF16", "Q4_1", ...).
    public var sourceDTypes: [String: String]
    public var tokenizer: TokenizerFiles
    /// All GGUF metadata (empty for safetensors checkpoints).
    public var ggufMetadata: [String: GGUFValue]
    /// File named in missing-weight errors (the safetensors file, index or `.gguf`).
    public var weightsFile: String

    /// A checkpoint from parts (tests, synthetic models).
    public init(config: ModelConfig, weights: [String: Tensor], source: URL = URL(fileURLWithPath: "/dev/null"),
                format: CheckpointFormat = .safetensors, architectureName: String? = nil, labels: [String] = [],
                sourceDTypes: [String: String] = [:], tokenizer: TokenizerFiles = TokenizerFiles(),
                ggufMetadata: [String: GGUFValue] = [:], weightsFile: String? = nil) {
        self.source = source
        self.format = format
        self.config = config
        self.architectureName = architectureName ?? config.architecture.rawValue
        self.labels = labels
        self.weights = weights
        self.sourceDTypes = sourceDTypes
        self.tokenizer = tokenizer
        self.ggufMetadata = ggufMetadata
        self.weightsFile = weightsFile ?? source.path
    }

    /// Generation stop ids (generation_config.json, else config.json, else GGUF eos).
    public var eosTokenIds: [Int] { config.eosTokenIds }

    /// The named weight; throws `missingWeight` naming the path and the file.
    public func weight(_ name: String) throws -> Tensor {
        guard let t = weights[name] else { throw ModelError.missingWeight(name: name, source: weightsFile) }
        return t
    }

    /// The named weight, checked to have `shape`.
    public func weight(_ name: String, shape: [Int]) throws -> Tensor {
        let t = try weight(name)
        guard t.shape == shape else { throw ModelError.badWeightShape(name: name, source: weightsFile, shape: t.shape, expected: shape) }
        return t
    }

    /// Path of the token embedding [V, D] for this architecture.
    public var embeddingName: String {
        config.architecture == .gpt2 ? "transformer.wte.weight" : "model.embed_tokens.weight"
    }

    /// The output projection [V, D]: `lm_head.weight`, or the token embedding when tied.
    public func outputWeight() throws -> Tensor {
        if let t = weights["lm_head.weight"] { return t }
        if config.tieWordEmbeddings { return try weight(embeddingName) }
        throw ModelError.missingWeight(name: "lm_head.weight", source: weightsFile)
    }

    /// Whether the named weight is present.
    public func hasWeight(_ name: String) -> Bool { weights[name] != nil }

    /// Weight names, sorted.
    public var weightNames: [String] { weights.keys.sorted() }

    /// Total number of weight elements.
    public var parameterCount: Int { weights.values.reduce(0) { $0 + $1.count } }

    /// Parameter paths the architecture needs, in a stable order.
    public var expectedWeightNames: [String] {
        let c = config
        var names: [String] = []
        if c.architecture == .gpt2 {
            names += ["transformer.wte.weight", "transformer.wpe.weight"]
            for i in 0..<c.numLayers {
                for part in ["ln_1", "attn.c_attn", "attn.c_proj", "ln_2", "mlp.c_fc", "mlp.c_proj"] {
                    names += ["transformer.h.\(i).\(part).weight", "transformer.h.\(i).\(part).bias"]
                }
            }
            names += ["transformer.ln_f.weight", "transformer.ln_f.bias"]
        } else {
            names.append(embeddingName)
            for i in 0..<c.numLayers {
                let l = "model.layers.\(i)."
                for p in ["q_proj", "k_proj", "v_proj", "o_proj"] { names.append(l + "self_attn.\(p).weight") }
                if c.attentionBias { for p in ["q_proj", "k_proj", "v_proj"] { names.append(l + "self_attn.\(p).bias") } }
                for p in ["gate_proj", "up_proj", "down_proj"] { names.append(l + "mlp.\(p).weight") }
                names += [l + "input_layernorm.weight", l + "post_attention_layernorm.weight"]
                if c.architecture == .gemma2 { names += [l + "pre_feedforward_layernorm.weight", l + "post_feedforward_layernorm.weight"] }
            }
            names.append("model.norm.weight")
        }
        switch c.head {
        case .causalLM: if !c.tieWordEmbeddings { names.append("lm_head.weight") }
        case .sequenceClassification: names.append("score.weight")
        }
        return names
    }

    /// Expected weights that are absent.
    public var missingWeights: [String] { expectedWeightNames.filter { weights[$0] == nil } }

    /// Throws `missingWeight` for the first expected weight that is absent.
    public func validate() throws {
        if let name = missingWeights.first { throw ModelError.missingWeight(name: name, source: weightsFile) }
    }

    /// Loads a Hugging Face model directory or a `.gguf` file (not cached; see `CheckpointCache`).
    public static func load(path: String) throws -> Checkpoint {
        try load(url: URL(fileURLWithPath: (path as NSString).expandingTildeInPath))
    }

    /// Loads a Hugging Face model directory or a `.gguf` file (not cached; see `CheckpointCache`).
    public static func load(url: URL) throws -> Checkpoint {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw ModelError.fileNotFound(path: url.path, what: "model (a Hugging Face directory or a .gguf file)")
        }
        if isDir.boolValue { return try loadDirectory(url) }
        if url.pathExtension.lowercased() == "gguf" { return try loadGGUF(url) }
        // A file inside a model directory (config.json, model.safetensors, the index): load the directory.
        if url.lastPathComponent == "config.json" || url.pathExtension == "safetensors" || url.lastPathComponent.hasSuffix(".safetensors.index.json") {
            return try loadDirectory(url.deletingLastPathComponent())
        }
        throw ModelError.invalidInput("\(url.path): expected a Hugging Face model directory or a .gguf file")
    }

    /// Loads config, generation config, safetensors weights and tokenizer paths of a directory.
    static func loadDirectory(_ dir: URL) throws -> Checkpoint {
        let fm = FileManager.default
        let hf = try HFConfig.load(dir.appendingPathComponent("config.json"))
        var config = hf.config
        let genURL = dir.appendingPathComponent("generation_config.json")
        if let data = fm.contents(atPath: genURL.path) {
            try HFConfig.applyGenerationConfig(data, file: genURL.path, to: &config)
        }
        // Which tensors live in which file.
        var plan: [(file: URL, names: [String]?)] = []
        var weightsFile: String
        let index = dir.appendingPathComponent("model.safetensors.index.json")
        let single = dir.appendingPathComponent("model.safetensors")
        if let data = fm.contents(atPath: index.path) {
            weightsFile = index.path
            let j = try JSONFields(data: data, file: index.path)
            guard let map = try j.object("weight_map") else {
                throw ModelError.badConfig(file: index.path, key: "weight_map", expected: "an object mapping tensor names to shard files")
            }
            var byFile: [String: [String]] = [:]
            for (name, v) in map {
                guard let f = v as? String else {
                    throw ModelError.badConfig(file: index.path, key: "weight_map.\(name)", expected: "a shard file name")
                }
                byFile[f, default: []].append(name)
            }
            for f in byFile.keys.sorted() {
                let url = dir.appendingPathComponent(f)
                guard fm.fileExists(atPath: url.path) else {
                    throw ModelError.fileNotFound(path: url.path, what: "shard listed in \(index.lastPathComponent)")
                }
                plan.append((url, byFile[f]?.sorted()))
            }
        } else if fm.fileExists(atPath: single.path) {
            weightsFile = single.path
            plan.append((single, nil))
        } else {
            let shards = ((try? fm.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.hasSuffix(".safetensors") }.sorted()
            guard !shards.isEmpty else {
                throw ModelError.fileNotFound(path: single.path,
                                              what: "weights (model.safetensors or model.safetensors.index.json; pytorch_model.bin is not supported, convert it to safetensors)")
            }
            weightsFile = dir.path
            plan = shards.map { (dir.appendingPathComponent($0), nil) }
        }
        var weights: [String: Tensor] = [:]
        var dtypes: [String: String] = [:]
        for (url, names) in plan {
            let file: SafeTensorsFile
            let tensors: [String: Tensor]
            do {
                file = try SafeTensorsFile(url: url)
                tensors = try file.allTensors(names: names)
            } catch let e as SafeTensorsError {
                throw ModelError.safetensors(e)
            }
            for (name, t) in tensors {
                guard let key = normalisedName(name, architecture: config.architecture) else { continue }
                weights[key] = t
                dtypes[key] = file.entries[name]?.dtype.rawValue
            }
        }
        var tok = TokenizerFiles()
        func present(_ name: String) -> URL? {
            let u = dir.appendingPathComponent(name)
            return fm.fileExists(atPath: u.path) ? u : nil
        }
        tok.tokenizerJSON = present("tokenizer.json")
        tok.tokenizerConfigJSON = present("tokenizer_config.json")
        tok.specialTokensMapJSON = present("special_tokens_map.json")
        tok.vocabJSON = present("vocab.json")
        tok.mergesTXT = present("merges.txt")
        tok.chatTemplateFile = present("chat_template.jinja")
        if tok.tokenizerJSON == nil, tok.vocabJSON == nil, let f = present(GGUFTokenizerFile.fileName) {
            tok.ggufMetadata = try GGUFTokenizerFile.read(f)   // saved from a GGUF checkpoint
            if tok.chatTemplate == nil { tok.chatTemplate = tok.ggufMetadata["tokenizer.chat_template"]?.string }
        }
        if let f = tok.chatTemplateFile, let data = fm.contents(atPath: f.path) {
            tok.chatTemplate = String(decoding: data, as: UTF8.self)
        } else if let f = tok.tokenizerConfigJSON, let data = fm.contents(atPath: f.path),
                  let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
            if let s = obj["chat_template"] as? String {
                tok.chatTemplate = s
            } else if let list = obj["chat_template"] as? [[String: Any]] {
                tok.chatTemplate = (list.first { $0["name"] as? String == "default" } ?? list.first)?["template"] as? String
            }
        }
        return Checkpoint(config: config, weights: weights, source: dir, format: .safetensors,
                          architectureName: hf.architectureName, labels: hf.labels, sourceDTypes: dtypes,
                          tokenizer: tok, weightsFile: weightsFile)
    }

    /// Canonical path for a stored tensor name; nil for buffers that are not parameters.
    static func normalisedName(_ name: String, architecture: Architecture) -> String? {
        if name.hasSuffix("rotary_emb.inv_freq") { return nil }
        guard architecture == .gpt2 else { return name }
        if name.hasSuffix(".attn.bias") || name.hasSuffix(".attn.masked_bias") { return nil }  // causal-mask buffers
        if name.hasPrefix("transformer.") || name.hasPrefix("lm_head.") || name.hasPrefix("score.") { return name }
        return "transformer." + name
    }
}
