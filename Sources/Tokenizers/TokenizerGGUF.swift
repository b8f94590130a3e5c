import Foundation

/// The pre-tokenization family of a tokenizer built from parts (GGUF metadata).
public enum TokenizerFamily: Sendable, Equatable {
    /// GPT-2 regex, byte-level.
    case gpt2
    /// Llama-3 regex (digits in groups of up to 3), byte-level, `ignore_merges`.
    case llama3
    /// Qwen2 regex (single digits), NFC, byte-level.
    case qwen2
    /// SmolLM2 / StarCoder: single digits isolated, then the GPT-2 regex, byte-level.
    case smollm
    /// SentencePiece-style BPE with byte fallback and "▁" (Llama-2 with a space prefix, Gemma without).
    case sentencePiece(addSpacePrefix: Bool)

    /// The family for a llama.cpp `tokenizer.ggml.pre` value (byte-level models).
    public static func fromGGUFPre(_ pre: String?) -> TokenizerFamily {
        switch pre ?? "default" {
        case "llama-bpe", "llama3", "llama-v3", "falcon3", "smaug-bpe": return .llama3
        case "qwen2", "qwen35", "deepseek-r1-qwen": return .qwen2
        case "smollm", "starcoder", "refact", "codeshell", "command-r", "exaone", "minerva-7b": return .smollm
        default: return .gpt2
        }
    }
}

extension Tokenizer {
    /// Builds a tokenizer from its parts with the normalizer, pre-tokenizer and decoder of `family`.
    /// Tokens whose `tokenTypes` entry is 2 (unknown) or 3 (control) become special added tokens,
    /// 4 (user-defined) non-special added tokens (llama.cpp `llama_token_type`).
    public convenience init(family: TokenizerFamily, tokens: [String], merges: [(String, String)],
                            tokenTypes: [Int], bosId: Int?, eosId: Int?, padId: Int? = nil, unkId: Int? = nil,
                            addBos: Bool, chatTemplate: String?) throws {
        var vocab: [String: Int] = [:]
        vocab.reserveCapacity(tokens.count)
        for (i, t) in tokens.enumerated() where vocab[t] == nil { vocab[t] = i }
        var added: [AddedToken] = []
        for (i, type) in tokenTypes.enumerated() where i < tokens.count && (2...4).contains(type) {
            added.append(AddedToken(id: i, content: tokens[i], special: type != 4, normalized: false))
        }
        func name(_ id: Int?) -> String? {
            guard let id, id >= 0, id < tokens.count else { return nil }
            return tokens[id]
        }
        var specials: [String: String] = [:]
        specials["bos_token"] = name(bosId)
        specials["eos_token"] = name(eosId)
        specials["pad_token"] = name(padId)
        specials["unk_token"] = name(unkId)
        let normalizer: Normalizer?
        let pre: PreTokenizer?
        let decoder: Decoder
        var byteFallback = false
        switch family {
        case .gpt2, .llama3, .qwen2, .smollm:
            decoder = .byteLevel
            switch family {
            case .llama3:
                normalizer = nil
                pre = .sequence([.split(scanner: .llama3(maxDigits: 3), literal: nil, behavior: .isolated, invert: false),
                                 .byteLevel(addPrefixSpace: false, useRegex: false)])
            case .qwen2:
                normalizer = .nfc
                pre = .sequence([.split(scanner: .llama3(maxDigits: 1), literal: nil, behavior: .isolated, invert: false),
                                 .byteLevel(addPrefixSpace: false, useRegex: false)])
            case .smollm:
                normalizer = nil
                pre = .sequence([.digits(individual: true), .byteLevel(addPrefixSpace: false, useRegex: true)])
            default:
                normalizer = nil
                pre = .byteLevel(addPrefixSpace: false, useRegex: true)
            }
        case let .sentencePiece(addSpacePrefix):
            byteFallback = true
            normalizer = addSpacePrefix ? .sequence([.prepend("\u{2581}"), .replace(pattern: " ", content: "\u{2581}")])
                : .replace(pattern: " ", content: "\u{2581}")
            pre = nil
            var steps: [Decoder] = [.replace(pattern: "\u{2581}", content: " "), .byteFallback, .fuse]
            if addSpacePrefix { steps.append(.strip(content: " ", start: 1, stop: 0)) }
            decoder = .sequence(steps)
        }
        let model = try BPEModel(vocab: vocab, merges: merges, unkToken: specials["unk_token"], fuseUnk: byteFallback,
                                 byteFallback: byteFallback, ignoreMerges: family == .llama3)
        var post: PostProcessor? = nil
        if addBos, let b = bosId { post = .template(prefix: [b], suffix: []) }
        try self.init(model: model, normalizer: normalizer, preTokenizer: pre, decoder: decoder, postProcessor: post,
                      addedTokens: added, specialTokens: specials, chatTemplate: chatTemplate)
    }

    /// Builds a tokenizer from GGUF `tokenizer.ggml.*` metadata.
    /// - Parameters:
    ///   - model: `tokenizer.ggml.model`: "gpt2" (byte-level BPE) or "llama" (SentencePiece-style BPE).
    ///   - pre: `tokenizer.ggml.pre` ("smollm", "llama-bpe", "qwen2", "gpt-2", "default", ...).
    ///   - merges: `tokenizer.ggml.merges` as "a b" strings; for "llama" models without merges they
    ///     are derived from `scores` as transformers' GGUF converter does.
    ///   - addSpacePrefix: `tokenizer.ggml.add_space_prefix` ("llama" models; default true).
    public static func fromGGUF(model: String, pre: String?, tokens: [String], merges: [String], tokenTypes: [Int],
                                scores: [Float]?, bosId: Int?, eosId: Int?, addBos: Bool?, chatTemplate: String?,
                                padId: Int? = nil, unkId: Int? = nil, addSpacePrefix: Bool? = nil) throws -> Tokenizer {
        var pairs: [(String, String)] = []
        pairs.reserveCapacity(merges.count)
        for (i, m) in merges.enumerated() {
            guard let sp = m.firstIndex(of: " ") else {
                throw TokenizerError.invalidKey(file: "GGUF", key: "tokenizer.ggml.merges[\(i)]", reason: "expected 'a b', got '\(m)'")
            }
            pairs.append((String(m[..<sp]), String(m[m.index(after: sp)...])))
        }
        switch model {
        case "gpt2":
            return try Tokenizer(family: TokenizerFamily.fromGGUFPre(pre), tokens: tokens, merges: pairs,
                                 tokenTypes: tokenTypes, bosId: bosId, eosId: eosId, padId: padId, unkId: unkId,
                                 addBos: addBos ?? false, chatTemplate: chatTemplate)
        case "llama":
            if pairs.isEmpty {
                guard let scores, scores.count == tokens.count else {
                    throw TokenizerError.invalidKey(file: "GGUF", key: "tokenizer.ggml.scores",
                                                    reason: "needed (one per token) when there are no merges")
                }
                pairs = mergesFromScores(tokens: tokens, scores: scores)
            }
            return try Tokenizer(family: .sentencePiece(addSpacePrefix: addSpacePrefix ?? true), tokens: tokens,
                                 merges: pairs, tokenTypes: tokenTypes, bosId: bosId, eosId: eosId, padId: padId,
                                 unkId: unkId ?? tokens.firstIndex(of: "<unk>"), addBos: addBos ?? true,
                                 chatTemplate: chatTemplate)
        default:
            throw TokenizerError.unsupported(file: "GGUF", key: "tokenizer.ggml.model", value: model)
        }
    }

    /// Merges implied by SentencePiece scores: every split of a token into two vocabulary tokens,
    /// ordered by the merged token's score (highest first), then by the parts' ids.
    static func mergesFromScores(tokens: [String], scores: [Float]) -> [(String, String)] {
        var ids: [String: Int] = [:]
        for (i, t) in tokens.enumerated() where ids[t] == nil { ids[t] = i }
        var all: [(String, String, Float, Int, Int, Int)] = []
        for (k, t) in tokens.enumerated() {
            let chars = Array(t.unicodeScalars)
            guard chars.count >= 2 else { continue }
            var local: [(String, String, Float, Int, Int, Int)] = []
            for cut in 1..<chars.count {
                let l = String(String.UnicodeScalarView(chars[..<cut]))
                let r = String(String.UnicodeScalarView(chars[cut...]))
                if let il = ids[l], let ir = ids[r] { local.append((l, r, scores[k], il, ir, 0)) }
            }
            local.sort { ($0.3, $0.4) < ($1.3, $1.4) }
            for var e in local { e.5 = all.count; all.append(e) }
        }
        all.sort { $0.2 != $1.2 ? $0.2 > $1.2 : $0.5 < $1.5 }
        return all.map { ($0.0, $0.1) }
    }
}
