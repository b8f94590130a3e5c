// GGUFTokenizerFile: a GGUF checkpoint's tokenizer metadata as JSON, kept next to an HF export.
import Foundation

/// The `tokenizer.*` metadata of a GGUF checkpoint stored as `tokenizer_gguf.json` in a Hugging
/// Face directory written from it (fine-tuning a `.gguf` model saves safetensors, and GGUF files
/// carry no tokenizer.json). `Checkpoint` reads it when a directory has no tokenizer.json, so the
/// saved model keeps the exact tokenizer and chat template of its source.
///
/// Format: `{"tokenizer.ggml.tokens": {"t": "strings", "v": [...]}, ...}` with tags `string`,
/// `int`, `float`, `bool`, `strings`, `ints`, `floats`.
public enum GGUFTokenizerFile {
    /// The file name inside a model directory.
    public static let fileName = "tokenizer_gguf.json"

    /// Writes the `tokenizer.*` entries of `metadata` into `directory/tokenizer_gguf.json`.
    public static func write(_ metadata: [String: GGUFValue], to directory: URL) throws {
        var out: [String: Any] = [:]
        for (key, value) in metadata where key.hasPrefix("tokenizer.") {
            if let e = encode(value) { out[key] = e }
        }
        let url = directory.appendingPathComponent(fileName)
        do {
            let data = try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys])
            try data.write(to: url, options: .atomic)
        } catch {
            throw ModelError.fileNotFound(path: url.path, what: "writable tokenizer metadata file (\(error))")
        }
    }

    /// Reads a `tokenizer_gguf.json` file back into GGUF metadata values.
    public static func read(_ url: URL) throws -> [String: GGUFValue] {
        guard let data = FileManager.default.contents(atPath: url.path),
              let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ModelError.badConfig(file: url.path, key: "", expected: "a JSON object of tagged tokenizer metadata")
        }
        var meta: [String: GGUFValue] = [:]
        for (key, raw) in obj {
            guard let m = raw as? [String: Any], let tag = m["t"] as? String, let v = decode(tag, m["v"]) else {
                throw ModelError.badConfig(file: url.path, key: key, expected: "{\"t\": tag, \"v\": value}")
            }
            meta[key] = v
        }
        return meta
    }

    static func encode(_ v: GGUFValue) -> [String: Any]? {
        switch v {
        case .string(let s): return ["t": "string", "v": s]
        case .bool(let b): return ["t": "bool", "v": b]
        case .float32, .float64: return v.double.map { ["t": "float", "v": $0] }
        case .array(let a):
            if a.allSatisfy({ $0.string != nil }) { return ["t": "strings", "v": a.compactMap(\.string)] }
            if a.allSatisfy({ $0.int != nil }) { return ["t": "ints", "v": a.compactMap(\.int)] }
            if a.allSatisfy({ $0.double != nil }) { return ["t": "floats", "v": a.compactMap(\.double)] }
            return nil
        default: return v.int.map { ["t": "int", "v": $0] }
        }
    }

    static func decode(_ tag: String, _ v: Any?) -> GGUFValue? {
        switch tag {
        case "string": return (v as? String).map { .string($0) }
        case "bool": return (v as? Bool).map { .bool($0) }
        case "int": return (v as? NSNumber).map { .int64($0.int64Value) }
        case "float": return (v as? NSNumber).map { .float32($0.floatValue) }
        case "strings": return (v as? [String]).map { .array($0.map { .string($0) }) }
        case "ints": return (v as? [NSNumber]).map { .array($0.map { .int64($0.int64Value) }) }
        case "floats": return (v as? [NSNumber]).map { .array($0.map { .float32($0.floatValue) }) }
        default: return nil
        }
    }
}
