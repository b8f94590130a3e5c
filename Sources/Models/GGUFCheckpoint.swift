// GGUFCheckpoint: turns a GGUF file into a Checkpoint with Hugging Face names and layouts.
//
// Dimension legend: H heads (KV heads for k), Dh head width, I input width.
//
// - Names: token_embd -> model.embed_tokens, blk.N.attn_q/k/v/output -> self_attn.q/k/v/o_proj,
//   ffn_gate/up/down -> mlp.*, attn_norm -> input_layernorm, ffn_norm ->
//   post_attention_layernorm (Gemma-2: pre_feedforward_layernorm), post_attention_norm ->
//   post_attention_layernorm, post_ffw_norm -> post_feedforward_layernorm, output_norm ->
//   model.norm, output -> lm_head (absent: tied). Unknown names are kept as they are.
// - llama: llama.cpp stores q/k rows permuted per head, [H, Dh/2, 2] instead of HF's
//   [H, 2, Dh/2] (rotate-half RoPE); we undo it.
// - gemma2: norm weights are stored as 1 + w; we subtract 1 to get HF's w.
import Dispatch
import Foundation
import Numerics

extension Checkpoint {
    /// Loads a `.gguf` file: dequantised weights under HF names, config from metadata.
    static func loadGGUF(_ url: URL) throws -> Checkpoint {
        let file = try GGUFFile(url: url)
        let meta = file.metadata
        guard let archName = meta["general.architecture"]?.string else {
            throw ModelError.malformedGGUF(file: url.path, context: "metadata 'general.architecture'", expected: "a string naming the architecture")
        }
        guard let arch = Architecture(rawValue: archName), arch != .gpt2 else {
            throw ModelError.unsupportedArchitecture(file: url.path, name: archName)
        }
        for t in file.tensors where !t.type.isSupported {
            throw ModelError.unsupportedTensorType(file: url.path, tensor: t.name, type: t.type.description)
        }
        var config = try ggufConfig(file, arch: arch)
        let infos = file.tensors
        let heads = config.numHeads, kvHeads = config.numKVHeads
        if arch == .llama {
            // Un-permuting needs q/k rows = heads x head width; anything else is a malformed file.
            for info in infos {
                let n = info.name.hasSuffix("attn_q.weight") ? heads : info.name.hasSuffix("attn_k.weight") ? kvHeads : 0
                if n > 0, info.shape.first != n * config.headDim {
                    throw ModelError.badWeightShape(name: "\(info.name) (\(hfName(info.name, architecture: arch)))", source: url.path,
                                                    shape: info.shape, expected: [n * config.headDim, info.shape.last ?? 0])
                }
            }
        }
        let slots = ResultSlotsBox(count: infos.count)
        let failure = ErrorBox()
        DispatchQueue.concurrentPerform(iterations: infos.count) { i in
            let info = infos[i]
            do {
                var t = try file.dequantize(info)
                if arch == .llama {
                    if info.name.hasSuffix("attn_q.weight") || info.name.hasSuffix("attn_q.bias") {
                        t = unpermuteRows(t, heads: heads)
                    } else if info.name.hasSuffix("attn_k.weight") || info.name.hasSuffix("attn_k.bias") {
                        t = unpermuteRows(t, heads: kvHeads)
                    }
                }
                if arch == .gemma2 && info.name.hasSuffix("norm.weight") {
                    t.withUnsafeMutableBufferPointer { p in for j in p.indices { p[j] -= 1 } }
                }
                slots.set(i, t)
            } catch {
                failure.set(error)
            }
        }
        if let e = failure.error { throw e }
        var weights: [String: Tensor] = [:]
        var dtypes: [String: String] = [:]
        for (i, info) in infos.enumerated() {
            let name = hfName(info.name, architecture: arch)
            weights[name] = slots.get(i)
            dtypes[name] = info.type.description
        }
        if weights["lm_head.weight"] == nil { config.tieWordEmbeddings = true }
        if let emb = weights["model.embed_tokens.weight"], emb.rank == 2 { config.vocabSize = emb.shape[0] }
        if arch == .qwen2 || arch == .llama { config.attentionBias = weights["model.layers.0.self_attn.q_proj.bias"] != nil }

        var tok = TokenizerFiles()
        tok.ggufMetadata = meta.filter { $0.key.hasPrefix("tokenizer.") }
        tok.chatTemplate = meta["tokenizer.chat_template"]?.string
        return Checkpoint(config: config, weights: weights, source: url, format: .gguf,
                          architectureName: "\(archName) (gguf)", sourceDTypes: dtypes, tokenizer: tok,
                          ggufMetadata: meta, weightsFile: url.path)
    }

    /// ModelConfig from `<arch>.*` and `tokenizer.ggml.*` metadata.
    static func ggufConfig(_ file: GGUFFile, arch: Architecture) throws -> ModelConfig {
        let meta = file.metadata
        let p = arch.rawValue + "."
        func int(_ key: String) throws -> Int? {
            guard let v = meta[p + key] else { return nil }
            guard let i = v.int else {
                throw ModelError.malformedGGUF(file: file.path, context: "metadata '\(p + key)'", expected: "an integer, got \(v.typeName)")
            }
            return i
        }
        func requireInt(_ key: String) throws -> Int {
            guard let v = try int(key) else {
                throw ModelError.malformedGGUF(file: file.path, context: "metadata '\(p + key)'", expected: "an integer (missing)")
            }
            return v
        }
        func double(_ key: String) throws -> Double? {
            guard let v = meta[p + key] else { return nil }
            guard let d = v.double else {
                throw ModelError.malformedGGUF(file: file.path, context: "metadata '\(p + key)'", expected: "a number, got \(v.typeName)")
            }
            // float32 metadata: take the shortest decimal (1e-05, not 9.99999974e-06), as config.json has it.
            if case .float32(let f) = v, let shortest = Double("\(f)") { return shortest }
            return d
        }
        let hidden = try requireInt("embedding_length")
        let heads = try requireInt("attention.head_count")
        let vocab = try int("vocab_size") ?? meta["tokenizer.ggml.tokens"]?.array?.count ?? 0
        var c = ModelConfig(architecture: arch, vocabSize: vocab, hiddenSize: hidden,
                            intermediateSize: try requireInt("feed_forward_length"),
                            numLayers: try requireInt("block_count"), numHeads: heads,
                            numKVHeads: try int("attention.head_count_kv") ?? heads,
                            headDim: try int("attention.key_length"))
        guard heads > 0, c.numKVHeads > 0, heads % c.numKVHeads == 0, c.headDim % 2 == 0 else {
            throw ModelError.malformedGGUF(file: file.path, context: "metadata '\(p)attention.head_count'",
                                           expected: "head_count a multiple of head_count_kv and an even head width")
        }
        c.maxPositions = try int("context_length") ?? c.maxPositions
        c.normEps = try double("attention.layer_norm_rms_epsilon") ?? 1e-6
        c.ropeTheta = try double("rope.freq_base") ?? 10_000
        switch meta[p + "rope.scaling.type"]?.string ?? "none" {
        case "none": c.ropeScaling = .none
        case "linear":
            let f = try double("rope.scaling.factor") ?? 1
            c.ropeScaling = f == 1 ? .none : .linear(factor: f)
        case let other:
            throw ModelError.malformedGGUF(file: file.path, context: "metadata '\(p)rope.scaling.type'", expected: "\"none\" or \"linear\", got \"\(other)\"")
        }
        c.hiddenAct = arch == .gemma2 ? "gelu_pytorch_tanh" : "silu"
        if arch == .gemma2 {
            // query_pre_attn_scalar is not in GGUF: llama.cpp uses head_dim for 2B/9B and
            // hidden/heads for 27B (46 layers), as the HF configs do.
            c.queryPreAttnScalar = c.numLayers == 46 ? Double(hidden / heads) : Double(c.headDim)
            c.attnLogitSoftcap = try double("attn_logit_softcapping") ?? 50
            c.finalLogitSoftcap = try double("final_logit_softcapping") ?? 30
            c.slidingWindow = try int("attention.sliding_window") ?? 4096
            c.slidingLayers = (0..<c.numLayers).map { $0 % 2 == 0 }
        }
        c.bosTokenId = meta["tokenizer.ggml.bos_token_id"]?.int
        c.padTokenId = meta["tokenizer.ggml.padding_token_id"]?.int
        var eos: [Int] = []
        for key in ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"] {
            if let e = meta[key]?.int, !eos.contains(e) { eos.append(e) }
        }
        c.eosTokenIds = eos
        return c
    }

    /// Hugging Face path of a GGUF tensor name (unknown names are returned unchanged).
    public static func hfName(_ gguf: String, architecture: Architecture) -> String {
        switch gguf {
        case "token_embd.weight": return "model.embed_tokens.weight"
        case "output_norm.weight": return "model.norm.weight"
        case "output.weight": return "lm_head.weight"
        default: break
        }
        let parts = gguf.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "blk", let layer = Int(parts[1]) else { return gguf }
        let module: String
        switch parts[2] {
        case "attn_q": module = "self_attn.q_proj"
        case "attn_k": module = "self_attn.k_proj"
        case "attn_v": module = "self_attn.v_proj"
        case "attn_output": module = "self_attn.o_proj"
        case "ffn_gate": module = "mlp.gate_proj"
        case "ffn_up": module = "mlp.up_proj"
        case "ffn_down": module = "mlp.down_proj"
        case "attn_norm": module = "input_layernorm"
        case "ffn_norm": module = architecture == .gemma2 ? "pre_feedforward_layernorm" : "post_attention_layernorm"
        case "post_attention_norm": module = "post_attention_layernorm"
        case "post_ffw_norm": module = "post_feedforward_layernorm"
        default: return gguf
        }
        return "model.layers.\(layer).\(module).\(parts[3])"
    }

    /// Undoes llama.cpp's q/k row permutation: GGUF row h*Dh + 2i + j holds HF row h*Dh + j*Dh/2 + i.
    public static func unpermuteRows(_ t: Tensor, heads: Int) -> Tensor {
        let rows = t.shape.first ?? 0
        let cols = t.rank > 1 ? t.count / max(rows, 1) : 1
        guard heads > 0, rows % heads == 0, (rows / heads) % 2 == 0 else { return t }
        let dh = rows / heads, half = dh / 2
        return Tensor(shape: t.shape) { out in
            t.withUnsafeBufferPointer { src in
                guard let s = src.baseAddress, let d = out.baseAddress else { return }
                for h in 0..<heads {
                    for i in 0..<half {
                        for j in 0..<2 {
                            let from = (h * dh + 2 * i + j) * cols
                            let to = (h * dh + j * half + i) * cols
                            (d + to).update(from: s + from, count: cols)
                        }
                    }
                }
            }
        }
    }
}

/// Per-index result slots for `concurrentPerform` (each index written once by one worker,
/// read after the loop returns), hence `@unchecked Sendable`.
final class ResultSlotsBox: @unchecked Sendable {
    private var slots: [Tensor?]
    private let lock = NSLock()
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ v: Tensor) { lock.lock(); slots[i] = v; lock.unlock() }
    func get(_ i: Int) -> Tensor? { lock.lock(); defer { lock.unlock() }; return slots[i] }
}

/// First error raised inside a concurrent loop (lock-protected, hence `@unchecked Sendable`).
final class ErrorBox: @unchecked Sendable {
    private var first: Error?
    private let lock = NSLock()
    func set(_ e: Error) { lock.lock(); if first == nil { first = e }; lock.unlock() }
    var error: Error? { lock.lock(); defer { lock.unlock() }; return first }
}
