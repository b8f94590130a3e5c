// TrainingIO: what the training kinds read and write — the model to fine-tune (param `model`
// path or input `model` HF directory, through the process-wide checkpoint cache), its
// tokenizer, (prompt, response) rows from JSONL, and JSONL/CSV writers.
import Foundation
import Models
import Numerics
import Pipeline
import Tokenizers

/// File helpers of the training kinds.
public enum TrainingIO {
    /// The model path: param `model` (relative to the pipeline directory) or the input `model`.
    public static func modelPath(_ context: StageContext) throws -> URL {
        if context.params.has("model") {
            let p = try context.params.string("model")
            let expanded = (p as NSString).expandingTildeInPath
            return expanded.hasPrefix("/") ? URL(fileURLWithPath: expanded)
                                           : context.workingDirectory.appendingPathComponent(expanded)
        }
        if context.hasInput("model") {
            // An upstream training artifact holds its HF directory under model/.
            let url = try context.input("model")
            let nested = url.appendingPathComponent("model")
            let fm = FileManager.default
            if !fm.fileExists(atPath: url.appendingPathComponent("config.json").path),
               fm.fileExists(atPath: nested.appendingPathComponent("config.json").path) { return nested }
            return url
        }
        throw StudyError.invalidConfiguration("stage \(context.instanceName): set param `model` (HF directory or .gguf) "
            + "or connect an input `model` (an upstream model artifact)")
    }

    /// A fresh model (own Variables; weights shared copy-on-write with the cached checkpoint) and its tokenizer.
    public static func loadModel(at url: URL) throws -> (model: TransformerModel, tokenizer: Tokenizer, checkpoint: Checkpoint) {
        let ckpt = try Checkpoint.cached(path: url.path)
        let model = try TransformerModel(checkpoint: ckpt)
        return (model, try tokenizer(for: ckpt), ckpt)
    }

    /// The tokenizer of a checkpoint: tokenizer.json (+ tokenizer_config.json) or GGUF metadata.
    public static func tokenizer(for ckpt: Checkpoint) throws -> Tokenizer {
        let files = ckpt.tokenizer
        if let json = files.tokenizerJSON {
            return try Tokenizer.load(tokenizerJSON: json, tokenizerConfigJSON: files.tokenizerConfigJSON)
        }
        let m = files.ggufMetadata.isEmpty ? ckpt.ggufMetadata : files.ggufMetadata
        if let tokens = m["tokenizer.ggml.tokens"]?.strings {
            return try Tokenizer.fromGGUF(
                model: m["tokenizer.ggml.model"]?.string ?? "gpt2", pre: m["tokenizer.ggml.pre"]?.string, tokens: tokens,
                merges: m["tokenizer.ggml.merges"]?.strings ?? [],
                tokenTypes: m["tokenizer.ggml.token_type"]?.ints ?? [],
                scores: m["tokenizer.ggml.scores"]?.doubles?.map { Float($0) },
                bosId: m["tokenizer.ggml.bos_token_id"]?.int, eosId: m["tokenizer.ggml.eos_token_id"]?.int,
                addBos: m["tokenizer.ggml.add_bos_token"]?.bool, chatTemplate: files.chatTemplate,
                padId: m["tokenizer.ggml.padding_token_id"]?.int)
        }
        throw StudyError.unreadable(file: ckpt.source.path, reason: "the model has no tokenizer (tokenizer.json or GGUF vocabulary)")
    }

    /// The source directory whose tokenizer / config files a saved model copies (HF directories only).
    public static func sourceDirectory(_ ckpt: Checkpoint) -> URL? {
        ckpt.format == .gguf ? nil : ckpt.source
    }

    /// Saves `model` as an HF directory with its source's tokenizer (tokenizer files of an HF
    /// source; `tokenizer_gguf.json` for a GGUF source, which has no tokenizer.json).
    public static func saveHF(_ model: TransformerModel, checkpoint ckpt: Checkpoint, to directory: URL,
                              dtype: SafeTensorsDType) throws {
        try model.saveHF(to: directory, sourceDirectory: sourceDirectory(ckpt), dtype: dtype)
        // A GGUF source, or an HF directory saved from one, carries its tokenizer as GGUF metadata.
        if ckpt.tokenizer.tokenizerJSON == nil, !ckpt.tokenizer.ggufMetadata.isEmpty {
            try GGUFTokenizerFile.write(ckpt.tokenizer.ggufMetadata, to: directory)
        }
    }

    /// JSONL objects of a file (or of every `.jsonl` file directly inside a directory, sorted).
    public static func readJSONL(_ url: URL) throws -> [(location: SourceLocation, object: [String: Any])] {
        var isDir: ObjCBool = false
        FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir)
        let files: [URL]
        if isDir.boolValue {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
            files = names.filter { $0.hasSuffix(".jsonl") }.sorted().map { url.appendingPathComponent($0) }
        } else {
            files = [url]
        }
        var out: [(SourceLocation, [String: Any])] = []
        for f in files {
            guard let data = FileManager.default.contents(atPath: f.path), let text = String(data: data, encoding: .utf8) else {
                throw StudyError.unreadable(file: f.path, reason: "missing or not UTF-8")
            }
            for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if trimmed.isEmpty { continue }
                let loc = SourceLocation(file: f.path, line: i + 1)
                guard let obj = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8)) as? [String: Any] else {
                    throw StudyError.malformed(loc, reason: "not a JSON object")
                }
                out.append((loc, obj))
            }
        }
        return out
    }

    /// A string field of a JSONL row.
    public static func string(_ row: (location: SourceLocation, object: [String: Any]), _ field: String) throws -> String {
        guard let s = row.object[field] as? String else {
            throw StudyError.schemaMismatch(row.location, field: field, expected: "a string")
        }
        return s
    }

    /// Writes objects as JSONL (sorted keys).
    public static func writeJSONL(_ rows: [[String: Any]], to url: URL) throws {
        var out = Data()
        for r in rows {
            out.append(try JSONSerialization.data(withJSONObject: r, options: [.sortedKeys, .withoutEscapingSlashes]))
            out.append(0x0A)
        }
        do { try out.write(to: url) } catch { throw StudyError.writeFailed(path: url.path, reason: "\(error)") }
    }

    /// Appends one JSONL object to an open file handle.
    public static func append(_ row: [String: Any], to handle: FileHandle) throws {
        var line = try JSONSerialization.data(withJSONObject: row, options: [.sortedKeys, .withoutEscapingSlashes])
        line.append(0x0A)
        handle.write(line)
    }

    /// Writes a JSON object (pretty, sorted keys).
    public static func writeJSON(_ object: [String: Any], to url: URL) throws {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
        do { try data.write(to: url) } catch { throw StudyError.writeFailed(path: url.path, reason: "\(error)") }
    }

    /// An open handle on a new file.
    public static func createFile(_ url: URL) throws -> FileHandle {
        _ = FileManager.default.createFile(atPath: url.path, contents: nil)
        guard let h = FileHandle(forWritingAtPath: url.path) else {
            throw StudyError.writeFailed(path: url.path, reason: "cannot open for writing")
        }
        return h
    }
}
