// `auditgap model ...`: inspect and run checkpoints (DESIGN.md section 2).
//
// Subcommands plug in as cases of `ModelCommand.run`: `info` lives here; `tokenize`,
// `forward` and `generate` are added by their owners.
import Foundation
import Models
import Numerics

enum ModelCommand {
    static let usage = """
    auditgap model info --model PATH [--json] [--export FILE.safetensors] [--raw]
      \(ModelTokenizeCommand.usage)
      \(ModelForwardCommand.usage)
      \(ModelGenerateCommand.usage)
    """

    static func run(_ argv: [String]) throws -> Int32 {
        guard let sub = argv.first else { throw UsageError("model needs a subcommand. Usage: \(usage)") }
        let rest = Array(argv.dropFirst())
        do {
            switch sub {
            case "info": return try ModelInfoCommand.run(rest)
            case "tokenize": return try ModelTokenizeCommand.run(rest)
            case "forward": return try ModelForwardCommand.run(rest)
            case "generate": return try ModelGenerateCommand.run(rest)
            default: throw UsageError("unknown model subcommand '\(sub)'. Usage: \(usage)")
            }
        } catch let e as ModelError {
            FileHandle.standardError.write(Data("error: \(e.description)\n".utf8))
            return 2
        }
    }
}

/// `model info`: architecture, config, parameter and tensor counts, tokenizer presence.
enum ModelInfoCommand {
    static func run(_ argv: [String]) throws -> Int32 {
        let args = try Arguments(argv, valued: ["--model", "--export"], knownFlags: ["--json", "--raw"])
        guard let path = args.value("--model") else { throw UsageError("model info needs --model PATH") }
        if args.flag("--raw") { return try rawGGUF(path: path, export: args.value("--export"), json: args.flag("--json")) }
        let ckpt = try Checkpoint.cached(path: path)
        var dtypeCounts: [String: Int] = [:]
        for name in ckpt.weights.keys { dtypeCounts[ckpt.sourceDTypes[name] ?? "F32", default: 0] += 1 }
        let configData = try JSONEncoder().encode(ckpt.config)
        let configObj = (try? JSONSerialization.jsonObject(with: configData)) ?? [:]
        let tok = ckpt.tokenizer
        var tokenizer: [String: Any] = [
            "present": tok.isPresent,
            "chat_template": tok.chatTemplate != nil,
        ]
        for (key, url) in [("tokenizer_json", tok.tokenizerJSON), ("tokenizer_config_json", tok.tokenizerConfigJSON),
                           ("vocab_json", tok.vocabJSON), ("merges_txt", tok.mergesTXT)] {
            if let url { tokenizer[key] = url.path }
        }
        if let model = tok.ggufMetadata["tokenizer.ggml.model"]?.string { tokenizer["gguf_model"] = model }
        if let pre = tok.ggufMetadata["tokenizer.ggml.pre"]?.string { tokenizer["gguf_pre"] = pre }
        if let tokens = tok.ggufMetadata["tokenizer.ggml.tokens"]?.array { tokenizer["gguf_tokens"] = tokens.count }
        let info: [String: Any] = [
            "source": ckpt.source.path,
            "format": ckpt.format.rawValue,
            "architecture": ckpt.architectureName,
            "config": configObj,
            "labels": ckpt.labels,
            "parameters": ckpt.parameterCount,
            "tensors": ckpt.weights.count,
            "dtypes": dtypeCounts,
            "eos_token_ids": ckpt.eosTokenIds,
            "missing_weights": ckpt.missingWeights,
            "tokenizer": tokenizer,
        ]
        if let out = args.value("--export") {
            try SafeTensors.write(ckpt.weights, to: URL(fileURLWithPath: out), dtype: .f32,
                                  metadata: ["source": ckpt.source.path, "format": ckpt.format.rawValue])
        }
        if args.flag("--json") {
            let data = try JSONSerialization.data(withJSONObject: info, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return 0
        }
        let c = ckpt.config
        print("model        \(ckpt.source.path) (\(ckpt.format.rawValue))")
        print("architecture \(ckpt.architectureName) [\(c.architecture.rawValue), head \(c.head.rawValue)]")
        print("config       vocab \(c.vocabSize), hidden \(c.hiddenSize), intermediate \(c.intermediateSize), layers \(c.numLayers), heads \(c.numHeads)/\(c.numKVHeads) kv, head_dim \(c.headDim)")
        print("             max_positions \(c.maxPositions), norm_eps \(c.normEps), rope_theta \(c.ropeTheta), rope_scaling \(c.ropeScaling), act \(c.hiddenAct), tied \(c.tieWordEmbeddings)")
        if c.architecture == .gemma2 {
            print("             softcap attn \(c.attnLogitSoftcap.map { "\($0)" } ?? "none") final \(c.finalLogitSoftcap.map { "\($0)" } ?? "none"), sliding_window \(c.slidingWindow.map { "\($0)" } ?? "none"), query_pre_attn_scalar \(c.queryPreAttnScalar.map { "\($0)" } ?? "none")")
        }
        if c.head == .sequenceClassification { print("labels       \(c.numLabels) \(ckpt.labels)") }
        print("parameters   \(ckpt.parameterCount) in \(ckpt.weights.count) tensors (\(dtypeCounts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")))")
        print("eos ids      \(ckpt.eosTokenIds), bos \(c.bosTokenId.map(String.init) ?? "none"), pad \(c.padTokenId.map(String.init) ?? "none")")
        print("tokenizer    \(tok.isPresent ? "present" : "absent"), chat template \(tok.chatTemplate != nil ? "present" : "absent")")
        let missing = ckpt.missingWeights
        if !missing.isEmpty { print("missing      \(missing.count) expected weights, first: \(missing[0])") }
        return 0
    }
}

extension ModelInfoCommand {
    /// `--raw`: a GGUF file's header and tensors under their GGUF names, without the
    /// architecture mapping (any architecture); `--export` writes every supported tensor
    /// dequantised (PyTorch shapes) for comparison with `gguf.quants.dequantize`.
    static func rawGGUF(path: String, export: String?, json: Bool) throws -> Int32 {
        guard path.lowercased().hasSuffix(".gguf") else { throw UsageError("--raw needs a .gguf file, got \(path)") }
        let file = try GGUFFile(url: URL(fileURLWithPath: path))
        var types: [String: Int] = [:]
        for t in file.tensors { types[t.type.description, default: 0] += 1 }
        let skipped = file.tensors.filter { !$0.type.isSupported }.map(\.name)
        if let export {
            var tensors: [String: Tensor] = [:]
            for t in file.tensors where t.type.isSupported { tensors[t.name] = try file.dequantize(t) }
            try SafeTensors.write(tensors, to: URL(fileURLWithPath: export), dtype: .f32)
        }
        let arch = file.metadata["general.architecture"]?.string ?? "?"
        if json {
            let obj: [String: Any] = ["version": Int(file.version), "alignment": file.alignment, "architecture": arch,
                                      "tensors": file.tensors.count, "metadata_keys": file.metadataKeys.count,
                                      "types": types, "unsupported": skipped]
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("gguf v\(file.version), architecture \(arch), alignment \(file.alignment), \(file.metadataKeys.count) metadata keys")
            print("tensors      \(file.tensors.count) (\(types.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")))")
            if !skipped.isEmpty { print("unsupported  \(skipped.count) tensors, first: \(skipped[0])") }
        }
        return 0
    }
}
