import Foundation

/// A BPE tokenizer equivalent to HF `tokenizers` for byte-level BPE (GPT-2, Llama-3, Qwen2,
/// SmolLM2) and SentencePiece-style BPE with byte fallback (Llama-2, Gemma).
///
/// Encoding: added tokens are split out first (non-normalized ones on the raw text, normalized
/// ones after the normalizer), the rest is normalized, pre-tokenized and BPE-merged; the
/// post-processor adds special tokens (e.g. BOS) when `addSpecialTokens` is true.
public final class Tokenizer: Sendable {
    let model: BPEModel
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer?
    let decoder: Decoder?
    let postProcessor: PostProcessor?
    /// Added tokens from `added_tokens`, by id.
    let addedById: [Int: AddedToken]
    let addedByContent: [String: Int]
    let rawMatcher: AddedTokenMatcher
    let normalizedMatcher: AddedTokenMatcher

    /// Beginning-of-sequence token text and id, if any.
    public let bosToken: String?
    public let bosTokenId: Int?
    /// End-of-sequence token text and id, if any.
    public let eosToken: String?
    public let eosTokenId: Int?
    /// Padding token text and id, if any.
    public let padToken: String?
    public let padTokenId: Int?
    /// Unknown token text and id, if any.
    public let unkToken: String?
    public let unkTokenId: Int?
    /// The Jinja chat template (tokenizer_config.json `chat_template`, or GGUF metadata).
    public let chatTemplate: String?
    /// Extra template variables from tokenizer_config.json (other special tokens as strings).
    let templateSpecials: [String: String]
    /// The chat template parsed once at load time (or its syntax error).
    let parsedChatTemplate: Result<JinjaTemplate, TokenizerError>?

    init(model: BPEModel, normalizer: Normalizer?, preTokenizer: PreTokenizer?, decoder: Decoder?,
         postProcessor: PostProcessor?, addedTokens: [AddedToken], specialTokens: [String: String],
         chatTemplate: String?) throws {
        self.model = model
        self.normalizer = normalizer
        self.preTokenizer = preTokenizer
        self.decoder = decoder
        self.postProcessor = postProcessor
        var byId: [Int: AddedToken] = [:]
        var byContent: [String: Int] = [:]
        for t in addedTokens {
            byId[t.id] = t
            byContent[t.content] = t.id
        }
        self.addedById = byId
        self.addedByContent = byContent
        self.rawMatcher = AddedTokenMatcher(addedTokens.filter { !$0.normalized })
        self.normalizedMatcher = AddedTokenMatcher(addedTokens.filter { $0.normalized })
        func lookup(_ key: String) -> (String?, Int?) {
            guard let t = specialTokens[key] else { return (nil, nil) }
            return (t, byContent[t] ?? model.vocab[t])
        }
        (bosToken, bosTokenId) = lookup("bos_token")
        (eosToken, eosTokenId) = lookup("eos_token")
        (padToken, padTokenId) = lookup("pad_token")
        (unkToken, unkTokenId) = lookup("unk_token")
        self.templateSpecials = specialTokens
        self.chatTemplate = chatTemplate
        self.parsedChatTemplate = chatTemplate.map { source in
            do {
                return .success(try JinjaTemplate(source))
            } catch let e as TokenizerError {
                return .failure(e)
            } catch {
                return .failure(.template(line: 0, column: 0, message: "\(error)"))
            }
        }
    }

    /// Number of ids (model vocabulary plus added tokens beyond it).
    public var vocabSize: Int {
        max(model.idToToken.count, (addedById.keys.max() ?? -1) + 1)
    }

    /// Id of a token string (added tokens first, then the model vocabulary).
    public func tokenToId(_ token: String) -> Int? {
        addedByContent[token] ?? model.vocab[token]
    }

    /// Token string of an id.
    public func idToToken(_ id: Int) -> String? {
        if let t = addedById[id] { return t.content }
        guard id >= 0, id < model.idToToken.count else { return nil }
        return model.idToToken[id]
    }

    /// All added tokens (special and not), by increasing id.
    public var addedTokens: [AddedToken] {
        addedById.values.sorted { $0.id < $1.id }
    }

    /// Texts of the special added tokens (e.g. "<|im_start|>"), by increasing id.
    public var specialTokens: [String] {
        addedTokens.filter { $0.special }.map { $0.content }
    }

    /// Whether `id` is a special added token (skipped by `decode(skipSpecialTokens: true)`).
    public func isSpecial(_ id: Int) -> Bool {
        addedById[id]?.special ?? false
    }

    /// Encodes text to ids, as HF `tokenizer.encode(text, add_special_tokens:)`.
    public func encode(_ text: String, addSpecialTokens: Bool = true) -> [Int] {
        var ids: [Int] = []
        ids.reserveCapacity(text.utf8.count / 3 + 4)
        for seg in rawMatcher.split(Array(text.unicodeScalars), atOrigin: true) {
            switch seg {
            case let .token(id):
                ids.append(id)
            case let .text(scalars, atOrigin):
                var normalized = scalars
                if let n = normalizer {
                    normalized = Array(n.apply(String(String.UnicodeScalarView(scalars))).unicodeScalars)
                }
                for seg2 in normalizedMatcher.split(normalized, atOrigin: atOrigin) {
                    switch seg2 {
                    case let .token(id): ids.append(id)
                    case let .text(s, o): encodeText(s, atOrigin: o, into: &ids)
                    }
                }
            }
        }
        if addSpecialTokens, let pp = postProcessor { return pp.apply(ids) }
        return ids
    }

    private func encodeText(_ s: [Unicode.Scalar], atOrigin: Bool, into ids: inout [Int]) {
        if s.isEmpty { return }
        let pieces = preTokenizer?.apply([Piece(scalars: s, atOrigin: atOrigin)]) ?? [Piece(scalars: s, atOrigin: atOrigin)]
        for p in pieces { model.tokenize(p.scalars, into: &ids) }
    }

    /// Decodes ids to text, as HF `tokenizer.decode(ids, skip_special_tokens:)`.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        var tokens: [String] = []
        tokens.reserveCapacity(ids.count)
        for id in ids {
            if let t = addedById[id] {
                if skipSpecialTokens && t.special { continue }
                tokens.append(t.content)
            } else if id >= 0, id < model.idToToken.count, let t = model.idToToken[id] {
                tokens.append(t)
            }
        }
        guard let d = decoder else { return tokens.joined(separator: " ") }
        return d.decodeChain(tokens).joined()
    }
}
