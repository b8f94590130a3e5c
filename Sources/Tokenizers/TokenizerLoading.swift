import Foundation

extension Tokenizer {
    /// Loads `tokenizer.json` and optionally `tokenizer_config.json` (special tokens, chat template).
    public static func load(tokenizerJSON: URL, tokenizerConfigJSON: URL?) throws -> Tokenizer {
        let file = tokenizerJSON.lastPathComponent
        let root = try readJSONObject(tokenizerJSON)
        guard let modelJSON = root["model"] as? [String: Any] else {
            throw TokenizerError.invalidKey(file: file, key: "model", reason: "missing")
        }
        let type = modelJSON["type"] as? String ?? "BPE"
        guard type == "BPE" else { throw TokenizerError.unsupported(file: file, key: "model.type", value: type) }
        guard let vocabAny = modelJSON["vocab"] as? [String: Any] else {
            throw TokenizerError.invalidKey(file: file, key: "model.vocab", reason: "expected an object token -> id")
        }
        var vocab: [String: Int] = [:]
        vocab.reserveCapacity(vocabAny.count)
        for (k, v) in vocabAny {
            guard let id = v as? Int else {
                throw TokenizerError.invalidKey(file: file, key: "model.vocab.\(k)", reason: "expected an integer id")
            }
            vocab[k] = id
        }
        let mergesAny = modelJSON["merges"] as? [Any] ?? []
        var merges: [(String, String)] = []
        merges.reserveCapacity(mergesAny.count)
        for (i, m) in mergesAny.enumerated() {
            if let s = m as? String {
                guard let sp = s.firstIndex(of: " ") else {
                    throw TokenizerError.invalidKey(file: file, key: "model.merges[\(i)]", reason: "expected 'a b', got '\(s)'")
                }
                merges.append((String(s[..<sp]), String(s[s.index(after: sp)...])))
            } else if let pair = m as? [String], pair.count == 2 {
                merges.append((pair[0], pair[1]))
            } else {
                throw TokenizerError.invalidKey(file: file, key: "model.merges[\(i)]", reason: "expected 'a b' or [a, b]")
            }
        }
        if let p = modelJSON["continuing_subword_prefix"] as? String, !p.isEmpty {
            throw TokenizerError.unsupported(file: file, key: "model.continuing_subword_prefix", value: p)
        }
        if let p = modelJSON["end_of_word_suffix"] as? String, !p.isEmpty {
            throw TokenizerError.unsupported(file: file, key: "model.end_of_word_suffix", value: p)
        }
        let model: BPEModel
        do {
            model = try BPEModel(vocab: vocab, merges: merges, unkToken: modelJSON["unk_token"] as? String,
                                 fuseUnk: modelJSON["fuse_unk"] as? Bool ?? false,
                                 byteFallback: modelJSON["byte_fallback"] as? Bool ?? false,
                                 ignoreMerges: modelJSON["ignore_merges"] as? Bool ?? false)
        } catch let TokenizerError.invalidArgument(msg) {
            throw TokenizerError.invalidKey(file: file, key: "model", reason: msg)
        }
        var added: [AddedToken] = []
        for (i, t) in (root["added_tokens"] as? [[String: Any]] ?? []).enumerated() {
            guard let id = t["id"] as? Int, let content = t["content"] as? String else {
                throw TokenizerError.invalidKey(file: file, key: "added_tokens[\(i)]", reason: "needs id and content")
            }
            let special = t["special"] as? Bool ?? false
            added.append(AddedToken(id: id, content: content, special: special,
                                    normalized: t["normalized"] as? Bool ?? !special,
                                    lstrip: t["lstrip"] as? Bool ?? false, rstrip: t["rstrip"] as? Bool ?? false,
                                    singleWord: t["single_word"] as? Bool ?? false))
        }
        let normalizer = try (root["normalizer"] as? [String: Any]).map { try Normalizer.parse($0, file: file) }
        let pre = try (root["pre_tokenizer"] as? [String: Any]).map { try PreTokenizer.parse($0, file: file) }
        let decoder = try (root["decoder"] as? [String: Any]).map { try Decoder.parse($0, file: file) }
        let post = try (root["post_processor"] as? [String: Any]).map { try PostProcessor.parse($0, file: file) }

        var specials: [String: String] = [:]
        var template: String? = nil
        if let configURL = tokenizerConfigJSON {
            let cfgFile = configURL.lastPathComponent
            let cfg = try readJSONObject(configURL)
            for (k, v) in cfg where k.hasSuffix("_token") {
                if let s = v as? String {
                    specials[k] = s
                } else if let d = v as? [String: Any], let s = d["content"] as? String {
                    specials[k] = s
                }
            }
            if let t = cfg["chat_template"] as? String {
                template = t
            } else if let list = cfg["chat_template"] as? [[String: Any]] {
                template = list.first(where: { ($0["name"] as? String) == "default" })?["template"] as? String
                    ?? list.first?["template"] as? String
            } else if cfg["chat_template"] != nil {
                throw TokenizerError.invalidKey(file: cfgFile, key: "chat_template", reason: "expected a string or a list")
            }
            if template == nil {
                let jinja = configURL.deletingLastPathComponent().appendingPathComponent("chat_template.jinja")
                template = try? String(contentsOf: jinja, encoding: .utf8)
            }
        }
        return try Tokenizer(model: model, normalizer: normalizer, preTokenizer: pre, decoder: decoder,
                             postProcessor: post, addedTokens: added, specialTokens: specials,
                             chatTemplate: template)
    }

    /// Loads `tokenizer.json` and `tokenizer_config.json` (if present) from a model directory.
    public static func load(directory: URL) throws -> Tokenizer {
        let cfg = directory.appendingPathComponent("tokenizer_config.json")
        return try load(tokenizerJSON: directory.appendingPathComponent("tokenizer.json"),
                        tokenizerConfigJSON: FileManager.default.fileExists(atPath: cfg.path) ? cfg : nil)
    }

    static func readJSONObject(_ url: URL) throws -> [String: Any] {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw TokenizerError.unreadableFile(path: url.path, reason: error.localizedDescription)
        }
        do {
            guard let obj = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw TokenizerError.unreadableFile(path: url.path, reason: "top level is not a JSON object")
            }
            return obj
        } catch let e as TokenizerError {
            throw e
        } catch {
            throw TokenizerError.unreadableFile(path: url.path, reason: "invalid JSON: \(error.localizedDescription)")
        }
    }
}
