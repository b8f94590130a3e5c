// `synthetic-model`: a random tiny model with a tiny byte-level tokenizer, as an HF directory.
import Foundation
import Models
import Pipeline

/// The `synthetic-model` kind: a random tiny model with a tiny byte-level tokenizer, as an HF directory.
public struct SyntheticModelKind: StageKind {
    public init() {}
    public var name: String { "synthetic-model" }
    public var version: String { "1" }
    public static let kindDescription = """
        Writes a random tiny Llama, Qwen2 or Gemma-2 model with a byte-level tokenizer, as an HF directory. The \
        directory (config.json, generation_config.json, model.safetensors, and tokenizer files with a ChatML \
        template) is a `model` input every model stage can load, and transformers loads it unchanged.
        """
    public var paramsSchema: ParamsSchema {
        ParamsSchema([
            ParamSpec("architecture", .string, default: .string("llama"), choices: ["llama", "qwen2", "gemma2"]),
            ParamSpec("hidden", .int, default: .int(32), doc: "hidden width D"),
            ParamSpec("layers", .int, default: .int(2), doc: "decoder blocks L"),
            ParamSpec("heads", .int, default: .int(4)),
            ParamSpec("kv_heads", .int, default: .int(2)),
            ParamSpec("intermediate", .int, default: .int(64)),
            ParamSpec("vocab", .int, doc: "model vocabulary (default: the tiny tokenizer's size)"),
            ParamSpec("init_std", .number, default: .double(0.02)),
            ParamSpec("head", .string, default: .string("causal-lm"), choices: ["causal-lm", "sequence-classification"]),
            ParamSpec("num_labels", .int, default: .int(1)),
            ParamSpec("seed", .int, default: .int(0)),
        ])
    }
    public var inputs: InputsDeclaration { .named([]) }
    public var outputs: OutputsDeclaration {
        .fixed(["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"])
    }

    public func run(_ context: StageContext) throws {
        let p = context.params
        var o = TinyModelOptions()
        o.architecture = Architecture(rawValue: try p.string("architecture")) ?? .llama
        o.hidden = try p.int("hidden")
        o.layers = try p.int("layers")
        o.heads = try p.int("heads")
        o.kvHeads = try p.int("kv_heads")
        o.intermediate = try p.int("intermediate")
        o.vocab = p.has("vocab") ? try p.int("vocab") : nil
        o.initStd = Float(try p.double("init_std"))
        o.sequenceClassification = try p.string("head") == "sequence-classification"
        o.numLabels = try p.int("num_labels")
        o.seed = UInt64(truncatingIfNeeded: try p.int("seed"))
        try TinyModelFactory.write(o, to: context.outputDirectory)
        context.log("synthetic \(o.architecture.rawValue): D=\(o.hidden) L=\(o.layers) H=\(o.heads)/\(o.kvHeads) F=\(o.intermediate) seed=\(o.seed)")
    }
}
