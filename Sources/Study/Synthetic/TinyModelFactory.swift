// TinyModelFactory: random tiny Llama / Qwen2 / Gemma-2 checkpoints with a tiny tokenizer, written
// as Hugging Face directories the runtime (and transformers) reload. For tests and smoke pipelines.
//
// Dimension legend: V vocabulary, D hidden, H heads, Hkv key/value heads, Dh head width,
// F intermediate, L layers, C labels (sequence-classification head).
import Foundation
import Models
import Numerics

/// Hyper-parameters of a synthetic model.
public struct TinyModelOptions: Sendable, Equatable {
    public var architecture: Architecture = .llama
    public var hidden = 32
    public var layers = 2
    public var heads = 4
    public var kvHeads = 2
    public var intermediate = 64
    /// Model vocabulary (nil: the tiny tokenizer's size; larger values pad the embedding).
    public var vocab: Int? = nil
    public var seed: UInt64 = 0
    /// Standard deviation of the random weight matrices.
    public var initStd: Float = 0.02
    /// Sequence-classification head with `numLabels` outputs instead of the LM head.
    public var sequenceClassification = false
    public var numLabels = 1
    /// Tied input/output embeddings (nil: Gemma-2 ties, the others do not).
    public var tieEmbeddings: Bool? = nil
    public var maxPositions = 2048

    public init() {}
}

/// Builds and writes synthetic models.
public enum TinyModelFactory {
    /// The model config of `o` (pad 0, bos 1, eos 2 as in `TinyTokenizer`).
    public static func config(_ o: TinyModelOptions) throws -> ModelConfig {
        let vocab = o.vocab ?? TinyTokenizer.vocabSize
        guard vocab >= TinyTokenizer.vocabSize else {
            throw StudyError.invalidConfiguration("vocab \(vocab) is smaller than the tiny tokenizer's \(TinyTokenizer.vocabSize) ids")
        }
        guard o.hidden > 0, o.layers > 0, o.heads > 0, o.kvHeads > 0, o.intermediate > 0,
              o.hidden % o.heads == 0, o.heads % o.kvHeads == 0 else {
            throw StudyError.invalidConfiguration("synthetic model: need positive sizes, hidden divisible by heads (\(o.hidden)/\(o.heads)) and heads by kv_heads (\(o.heads)/\(o.kvHeads))")
        }
        var c = ModelConfig(architecture: o.architecture, vocabSize: vocab, hiddenSize: o.hidden,
                            intermediateSize: o.intermediate, numLayers: o.layers, numHeads: o.heads, numKVHeads: o.kvHeads)
        c.maxPositions = o.maxPositions
        c.padTokenId = TinyTokenizer.padId
        c.bosTokenId = TinyTokenizer.bosId
        c.eosTokenIds = [TinyTokenizer.eosId]
        c.tieWordEmbeddings = o.tieEmbeddings ?? (o.architecture == .gemma2)
        if o.sequenceClassification {
            c.head = .sequenceClassification
            c.numLabels = o.numLabels
        }
        switch o.architecture {
        case .llama: c.normEps = 1e-5
        case .qwen2:
            c.normEps = 1e-6
            c.attentionBias = true
            c.ropeTheta = 1_000_000
        case .gemma2:
            c.normEps = 1e-6
            c.hiddenAct = "gelu_pytorch_tanh"
            c.queryPreAttnScalar = Double(c.headDim)
            c.attnLogitSoftcap = 50
            c.finalLogitSoftcap = 30
            c.slidingWindow = 4096
            c.slidingLayers = (0..<o.layers).map { $0 % 2 == 0 }
        case .gpt2:
            throw StudyError.invalidConfiguration("synthetic models support llama, qwen2 and gemma2")
        }
        return c
    }

    /// Random weights for `config` by Hugging Face name: matrices N(0, std), RMSNorm weights 1
    /// (Gemma-2: 0, since it multiplies by 1 + w), biases N(0, std).
    public static func weights(_ c: ModelConfig, std: Float, seed: UInt64) -> [String: Tensor] {
        var rng = SplitMix64(seed: seed)
        let d = c.hiddenSize, qw = c.numHeads * c.headDim, kw = c.numKVHeads * c.headDim
        let names = Checkpoint(config: c, weights: [:]).expectedWeightNames
        var out: [String: Tensor] = [:]
        for name in names {
            let shape: [Int]
            if name.hasSuffix("layernorm.weight") || name == "model.norm.weight" {
                out[name] = Tensor(shape: [d], repeating: c.architecture == .gemma2 ? 0 : 1)
                continue
            } else if name == "model.embed_tokens.weight" || name == "lm_head.weight" {
                shape = [c.vocabSize, d]
            } else if name == "score.weight" {
                shape = [c.numLabels, d]
            } else if name.contains("q_proj") {
                shape = name.hasSuffix(".bias") ? [qw] : [qw, d]
            } else if name.contains("k_proj") || name.contains("v_proj") {
                shape = name.hasSuffix(".bias") ? [kw] : [kw, d]
            } else if name.contains("o_proj") {
                shape = [d, qw]
            } else if name.contains("gate_proj") || name.contains("up_proj") {
                shape = [c.intermediateSize, d]
            } else if name.contains("down_proj") {
                shape = [d, c.intermediateSize]
            } else {
                preconditionFailure("TinyModelFactory: no shape rule for \(name)")
            }
            out[name] = Tensor.randomNormal(shape: shape, std: std, rng: &rng)
        }
        return out
    }

    /// A runnable model of `o` (no files).
    public static func model(_ o: TinyModelOptions) throws -> TransformerModel {
        let c = try config(o)
        return try TransformerModel(config: c, weights: weights(c, std: o.initStd, seed: o.seed))
    }

    /// Writes an HF directory: config.json, generation_config.json, model.safetensors,
    /// tokenizer.json, tokenizer_config.json.
    @discardableResult
    public static func write(_ o: TinyModelOptions, to directory: URL) throws -> URL {
        let m = try model(o)
        do {
            try m.saveHF(to: directory)
            let gen = "{\n  \"bos_token_id\": \(TinyTokenizer.bosId),\n  \"eos_token_id\": \(TinyTokenizer.eosId),\n  \"pad_token_id\": \(TinyTokenizer.padId)\n}\n"
            try Data(gen.utf8).write(to: directory.appendingPathComponent("generation_config.json"))
            try TinyTokenizer.tokenizerJSON().write(to: directory.appendingPathComponent("tokenizer.json"))
            try TinyTokenizer.tokenizerConfigJSON(maxLength: o.maxPositions)
                .write(to: directory.appendingPathComponent("tokenizer_config.json"))
        } catch let e as StudyError {
            throw e
        } catch {
            throw StudyError.writeFailed(path: directory.path, reason: "\(error)")
        }
        return directory
    }

    /// Writes a tiny model into a fresh temporary directory (tests); the caller removes it.
    public static func temporary(_ o: TinyModelOptions = TinyModelOptions(), name: String = "tiny-model") throws -> URL {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("auditgap-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        return try write(o, to: dir)
    }
}
