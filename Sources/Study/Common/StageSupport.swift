// StageSupport: conventions shared by the study's stage kinds — where a stage finds its model
// (a `model` param path or a `model` input artifact), tokenizers and chat formatting, input
// files inside upstream artifacts, and JSONL rows.
import Foundation
import Models
import Numerics
import Pipeline
import Tokenizers

/// A model ready for a stage: the cached checkpoint, a runnable model and its tokenizer.
public struct StageModel: @unchecked Sendable {
    // @unchecked: TransformerModel is a class; a StageModel is created and used by one stage run.
    /// The directory or `.gguf` file the model was loaded from.
    public let path: URL
    /// The checkpoint from the process-wide cache.
    public let checkpoint: Checkpoint
    /// A model over the checkpoint's weights (a fresh instance; callers may fine-tune it).
    public let model: TransformerModel
    /// The tokenizer (tokenizer.json or GGUF metadata); nil when the checkpoint has none.
    public let tokenizer: Tokenizer?

    /// The tokenizer, or an error naming the model path.
    public func requireTokenizer() throws -> Tokenizer {
        guard let tokenizer else {
            throw StudyError.invalidConfiguration("model \(path.path) has no tokenizer (tokenizer.json or GGUF tokenizer.ggml.*)")
        }
        return tokenizer
    }

    /// Saves `model` (e.g. this model after fine-tuning) as an HF directory that keeps this
    /// checkpoint's tokenizer: the tokenizer files of an HF source are copied; a GGUF source (or
    /// an HF directory saved from one) keeps its vocabulary as `tokenizer_gguf.json`.
    public func saveHF(_ model: TransformerModel, to directory: URL, dtype: SafeTensorsDType) throws {
        try model.saveHF(to: directory, sourceDirectory: checkpoint.format == .gguf ? nil : path, dtype: dtype)
        if checkpoint.tokenizer.tokenizerJSON == nil, !checkpoint.tokenizer.ggufMetadata.isEmpty {
            try GGUFTokenizerFile.write(checkpoint.tokenizer.ggufMetadata, to: directory)
        }
    }

    /// Stop ids for generation: the config's EOS ids plus the tokenizer's EOS and `<|im_end|>` / `<end_of_turn>` / `<|eot_id|>`.
    public var stopTokenIds: [Int] {
        var ids = checkpoint.eosTokenIds
        if let t = tokenizer {
            if let e = t.eosTokenId { ids.append(e) }
            for s in ["<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|endoftext|>"] { if let i = t.tokenToId(s) { ids.append(i) } }
        }
        var seen = Set<Int>()
        return ids.filter { seen.insert($0).inserted }
    }

    /// The id used to pad batches: config pad, tokenizer pad, else the first stop id, else 0.
    public var padTokenId: Int {
        checkpoint.config.padTokenId ?? tokenizer?.padTokenId ?? stopTokenIds.first ?? 0
    }
}

/// Helpers every study stage kind uses.
public enum StageSupport {
    // MARK: - Training

    /// The LoRA adapters of a training kind's params (`lora`, `lora_r`, `lora_alpha`,
    /// `lora_dropout`, `lora_targets`); nil with `lora: false` (full fine-tuning).
    static func loraConfig(_ p: StageParams, seed: UInt64) throws -> LoRAConfig? {
        guard try p.bool("lora") else { return nil }
        return LoRAConfig(rank: try p.int("lora_r"), alpha: try p.double("lora_alpha"), dropout: try p.double("lora_dropout"),
                          targetModules: try p.strings("lora_targets"), seed: seed)
    }

    /// `keep_blocks` and `replay_blocks` of a training kind (`sft`, `dissociate`); the configs'
    /// `validate()` checks them.
    static func checkpointedBlocks(_ p: StageParams) throws -> (kept: Int, replayed: Int) {
        (try p.int("keep_blocks"), try p.int("replay_blocks"))
    }

    // MARK: - Models

    /// Where a stage's model lives: param `param` (a path, relative to the pipeline file) or the
    /// input `input` (an upstream artifact: an HF directory, a directory holding `model/` or one
    /// `.gguf`, or a file). The param wins when both are given.
    /// - Returns: the model path and a cache key (artifact paths are immutable, so the path is the key).
    public static func modelLocation(_ context: StageContext, param: String = "model",
                                     input: String = "model") throws -> (url: URL, cacheKey: String?) {
        if context.params.has(param) {
            let raw = try context.params.string(param)
            let expanded = (raw as NSString).expandingTildeInPath
            let url = expanded.hasPrefix("/") ? URL(fileURLWithPath: expanded)
                                              : context.workingDirectory.appendingPathComponent(expanded)
            return (try modelDirectory(url.standardizedFileURL), nil)
        }
        if context.hasInput(input) {
            let url = try modelDirectory(try context.input(input))
            return (url, "artifact:" + url.standardizedFileURL.path)
        }
        throw StudyError.invalidConfiguration("stage \(context.instanceName): no model; set params.\(param) to an HF directory or .gguf file, or give an input '\(input)' (e.g. a synthetic-model stage)")
    }

    /// The model directory inside `url`: `url` itself when it holds config.json (or is a file),
    /// else its `model/` subdirectory, else the single `.gguf` file inside it.
    public static func modelDirectory(_ url: URL) throws -> URL {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw StudyError.unreadable(file: url.path, reason: "no such model file or directory")
        }
        guard isDir.boolValue else { return url }
        if fm.fileExists(atPath: url.appendingPathComponent("config.json").path) { return url }
        let sub = url.appendingPathComponent("model")
        if fm.fileExists(atPath: sub.appendingPathComponent("config.json").path) { return sub }
        let ggufs = ((try? fm.contentsOfDirectory(atPath: url.path)) ?? []).filter { $0.lowercased().hasSuffix(".gguf") }
        if ggufs.count == 1 { return url.appendingPathComponent(ggufs[0]) }
        throw StudyError.unreadable(file: url.path, reason: "not a model: no config.json, model/config.json or single .gguf file inside")
    }

    /// Loads the stage's model through the process-wide checkpoint cache.
    public static func loadModel(_ context: StageContext, param: String = "model", input: String = "model",
                                 needTokenizer: Bool = true) throws -> StageModel {
        let (url, key) = try modelLocation(context, param: param, input: input)
        let m = try loadModel(path: url, cacheKey: key, needTokenizer: needTokenizer)
        context.log("model \(url.path): \(m.checkpoint.architectureName), \(m.checkpoint.config.numLayers) layers, d=\(m.checkpoint.config.hiddenSize)")
        return m
    }

    /// Loads a model at `path` through the checkpoint cache (tests and library callers).
    public static func loadModel(path: URL, cacheKey: String? = nil, needTokenizer: Bool = true) throws -> StageModel {
        let ckpt = try Checkpoint.cached(path: path.path, key: cacheKey)
        let model = try TransformerModel(checkpoint: ckpt)
        let tok: Tokenizer?
        if ckpt.tokenizer.isPresent {
            tok = try tokenizer(ckpt, cacheKey: cacheKey ?? CheckpointCache.fingerprint(path))
        } else {
            if needTokenizer {
                throw StudyError.invalidConfiguration("model \(path.path) has no tokenizer (tokenizer.json or GGUF tokenizer.ggml.*)")
            }
            tok = nil
        }
        return StageModel(path: path, checkpoint: ckpt, model: model, tokenizer: tok)
    }

    // Tokenizers by checkpoint cache key; guarded by `tokenizerLock` (stages may run concurrently).
    nonisolated(unsafe) private static var tokenizers: [String: Tokenizer] = [:]
    private static let tokenizerLock = NSLock()

    /// The tokenizer of a checkpoint (tokenizer.json [+ tokenizer_config.json], or GGUF metadata), cached by `cacheKey`.
    public static func tokenizer(_ ckpt: Checkpoint, cacheKey: String) throws -> Tokenizer {
        tokenizerLock.lock()
        if let t = tokenizers[cacheKey] { tokenizerLock.unlock(); return t }
        tokenizerLock.unlock()
        let t = try ckpt.makeTokenizer()
        tokenizerLock.lock()
        tokenizers[cacheKey] = t
        tokenizerLock.unlock()
        return t
    }

    // MARK: - Chat formatting

    /// Token ids of `prompt` as one user turn with the generation prompt (what generation and
    /// PGD feed the model). Without a chat template: the plain prompt with special tokens.
    public static func encodePrompt(_ tokenizer: Tokenizer, prompt: String, useChatTemplate: Bool = true) throws -> [Int] {
        guard useChatTemplate else { return tokenizer.encode(prompt, addSpecialTokens: true) }
        let text = try chatText(tokenizer, messages: [ChatMessage(role: "user", content: prompt)], addGenerationPrompt: true)
        return tokenizer.encode(text, addSpecialTokens: false)
    }

    /// Token ids of the chat-formatted (prompt, response) sequence z(p, y): a user turn and an
    /// assistant turn, no generation prompt (transformers' `apply_chat_template(tokenize=True)`).
    /// Without a chat template: prompt, a blank line and the response.
    public static func encodeChat(_ tokenizer: Tokenizer, prompt: String, response: String,
                                  useChatTemplate: Bool = true) throws -> [Int] {
        guard useChatTemplate else { return tokenizer.encode(prompt + "\n\n" + response, addSpecialTokens: true) }
        let text = try chatText(tokenizer, messages: [ChatMessage(role: "user", content: prompt),
                                                      ChatMessage(role: "assistant", content: response)],
                                addGenerationPrompt: false)
        return tokenizer.encode(text, addSpecialTokens: false)
    }

    /// The rendered chat template, with a readable error when the tokenizer has none.
    public static func chatText(_ tokenizer: Tokenizer, messages: [ChatMessage], addGenerationPrompt: Bool) throws -> String {
        guard tokenizer.chatTemplate != nil else {
            throw StudyError.invalidConfiguration("the model's tokenizer has no chat template; set params.chat_template: false to use plain text")
        }
        return try tokenizer.applyChatTemplate(messages: messages, addGenerationPrompt: addGenerationPrompt)
    }

    /// Keeps the last `maxTokens` ids (left truncation keeps the response end) — or the first
    /// ones with `keepStart` (as transformers' default right truncation does).
    public static func truncate(_ ids: [Int], maxTokens: Int, keepStart: Bool = true) -> [Int] {
        guard ids.count > maxTokens, maxTokens > 0 else { return ids }
        return keepStart ? Array(ids.prefix(maxTokens)) : Array(ids.suffix(maxTokens))
    }

    // MARK: - Input files

    /// The file of input `name`: the input itself when it is a file, else the first of
    /// `preferred` present inside the directory, else its only `.jsonl` file.
    public static func inputFile(_ context: StageContext, _ name: String, preferred: [String]) throws -> URL {
        try file(in: try context.input(name), preferred: preferred, what: "input '\(name)' of \(context.instanceName)")
    }

    /// Every file of a (possibly fan-in) input, resolved as `inputFile` does.
    public static func inputFiles(_ context: StageContext, _ name: String, preferred: [String]) throws -> [URL] {
        try context.inputs(name).map { try file(in: $0, preferred: preferred, what: "input '\(name)' of \(context.instanceName)") }
    }

    /// Resolves a file inside an artifact directory (see `inputFile`).
    public static func file(in url: URL, preferred: [String], what: String) throws -> URL {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw StudyError.unreadable(file: url.path, reason: "\(what): no such file")
        }
        guard isDir.boolValue else { return url }
        for p in preferred where FileManager.default.fileExists(atPath: url.appendingPathComponent(p).path) {
            return url.appendingPathComponent(p)
        }
        let jsonl = ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []).filter { $0.hasSuffix(".jsonl") }.sorted()
        if jsonl.count == 1 { return url.appendingPathComponent(jsonl[0]) }
        throw StudyError.unreadable(file: url.path, reason: "\(what): expected one of \(preferred.joined(separator: ", ")) in the artifact; found \(jsonl.isEmpty ? "no .jsonl file" : jsonl.joined(separator: ", ")); reference the file as stage/FILE")
    }

    /// A path param resolved against the pipeline's directory.
    public static func path(_ context: StageContext, _ raw: String) -> URL {
        let expanded = (raw as NSString).expandingTildeInPath
        return expanded.hasPrefix("/") ? URL(fileURLWithPath: expanded) : context.workingDirectory.appendingPathComponent(expanded)
    }

    // MARK: - JSON and JSONL

    /// Reads a JSONL (or JSON / CSV / TSV, optionally gzipped) file into objects with their locations.
    public static func readObjects(_ url: URL) throws -> [RawRecord] {
        try DataFile.read(path: url.path)
    }

    /// Writes `rows` as JSON Lines (sorted keys, one object per line).
    public static func writeJSONL<Row: Encodable>(_ rows: [Row], to url: URL) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var out = Data()
        do {
            for r in rows {
                out.append(try enc.encode(r))
                out.append(0x0A)
            }
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try out.write(to: url)
        } catch {
            throw StudyError.writeFailed(path: url.path, reason: "\(error)")
        }
    }

    /// Writes one value as pretty JSON with sorted keys.
    public static func writeJSON<T: Encodable>(_ value: T, to url: URL) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try (enc.encode(value) + Data("\n".utf8)).write(to: url)
        } catch {
            throw StudyError.writeFailed(path: url.path, reason: "\(error)")
        }
    }

    /// Reads a JSON file into `T`.
    /// Parses a JSON file into a `Value` (errors name the file, line and column).
    public static func readJSONValue(from url: URL) throws -> Value {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw StudyError.unreadable(file: url.path, reason: "no such file")
        }
        return try StudyError.readingJSON { try JSON.read(url.path) }
    }

    public static func readJSON<T: Decodable>(_ type: T.Type, from url: URL) throws -> T {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw StudyError.unreadable(file: url.path, reason: error.localizedDescription)
        }
        do { return try JSONDecoder().decode(T.self, from: data) } catch {
            throw StudyError.malformed(SourceLocation(file: url.path, line: 0), reason: "\(error)")
        }
    }

    /// A stable short id: the source name and the first 12 hex digits of SHA-256 of the text's dedup key.
    public static func stableId(source: String, text: String) -> String {
        source + "-" + String(StableHash.sha256Hex(PromptKey.normalize(text)).prefix(12))
    }
}
