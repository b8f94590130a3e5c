// AttackStageIO: input resolution shared by the attack stages (pgd, lvs, report): model from a
// param or an upstream artifact, prompt-set rows, artifact lineage.
//
// (Kept private to the attack stages until the shared StageSupport helper lands.)
import Foundation
import Pipeline

/// One row of a prompt set (`{"id","prompt","source","type"}`).
struct PromptRow: Sendable, Equatable {
    var id: String
    var prompt: String
    var source: String?
    var type: String?
}

enum AttackStageIO {
    /// A path param resolved against the pipeline directory.
    static func path(_ text: String, _ context: StageContext) -> URL {
        let expanded = (text as NSString).expandingTildeInPath
        return expanded.hasPrefix("/") ? URL(fileURLWithPath: expanded)
                                       : context.workingDirectory.appendingPathComponent(expanded)
    }

    /// The model path (param `model` or input `model`) and a display name (param `model_name`,
    /// else the upstream stage name or the path's last component).
    static func model(_ context: StageContext) throws -> (path: URL, name: String) {
        let p = context.params
        let url: URL
        var name: String
        if context.hasInput("model") {
            url = try context.input("model")
            name = (lineage(of: url)?["stage"]?.stringValue) ?? url.lastPathComponent
        } else if p.has("model") {
            url = path(try p.string("model"), context)
            name = url.deletingPathExtension().lastPathComponent
        } else {
            throw StudyError.invalidConfiguration("\(context.instanceName): give the model as param 'model' (HF directory or .gguf) or as input 'model'")
        }
        if p.has("model_name") { name = try p.string("model_name") }
        return (url, name)
    }

    /// The upstream stage's lineage.json (next to its `out` directory), if any.
    static func lineage(of url: URL) -> [String: Value]? {
        var dir = url
        var isDir: ObjCBool = false
        if !(FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir) && isDir.boolValue) {
            dir = dir.deletingLastPathComponent()
        }
        for candidate in [dir.appendingPathComponent("lineage.json"), dir.deletingLastPathComponent().appendingPathComponent("lineage.json")] {
            guard let data = FileManager.default.contents(atPath: candidate.path),
                  let v = try? JSONValue.parse(data) else { continue }
            return v.pipelineValue.mapValue
        }
        return nil
    }

    /// A file of an input: the input itself when a file, else `preferred` inside the directory,
    /// else the directory's only file with extension `ext`.
    static func file(_ url: URL, preferred: String?, ext: String, what: String) throws -> URL {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw StudyError.unreadable(file: url.path, reason: "\(what) not found")
        }
        guard isDir.boolValue else { return url }
        if let preferred {
            let f = url.appendingPathComponent(preferred)
            if FileManager.default.fileExists(atPath: f.path) { return f }
        }
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []).filter { $0.hasSuffix("." + ext) }.sorted()
        guard files.count == 1 else {
            throw StudyError.unreadable(file: url.path, reason: "expected one .\(ext) file (\(what)), found \(files.count): \(files.joined(separator: ", ")); name it with a *_file param")
        }
        return url.appendingPathComponent(files[0])
    }

    /// Rows of a prompt-set JSONL file.
    static func prompts(_ url: URL) throws -> [PromptRow] {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw StudyError.unreadable(file: url.path, reason: "cannot read the prompt set")
        }
        var rows: [PromptRow] = []
        for (i, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let t = line.trimmingCharacters(in: .whitespaces)
            guard !t.isEmpty else { continue }
            let loc = SourceLocation(file: url.path, line: i + 1)
            let v: JSONValue
            do { v = try JSONValue.parse(Data(t.utf8)) } catch { throw StudyError.malformed(loc, reason: "invalid JSON: \(error)") }
            guard let prompt = v.value(at: "prompt")?.scalarText else {
                throw StudyError.schemaMismatch(loc, field: "prompt", expected: "a string")
            }
            rows.append(PromptRow(id: v.value(at: "id")?.scalarText ?? "\(rows.count)", prompt: prompt,
                                  source: v.value(at: "source")?.scalarText, type: v.value(at: "type")?.scalarText))
        }
        return rows
    }

    /// Writes text to an output file.
    static func write(_ text: String, to url: URL) throws {
        do { try Data(text.utf8).write(to: url, options: .atomic) } catch {
            throw StudyError.writeFailed(path: url.path, reason: error.localizedDescription)
        }
    }

    /// Writes data to an output file.
    static func write(_ data: Data, to url: URL) throws {
        do { try data.write(to: url, options: .atomic) } catch {
            throw StudyError.writeFailed(path: url.path, reason: error.localizedDescription)
        }
    }
}

extension JSONValue {
    /// The same value as a Pipeline `Value` (integral numbers become integers).
    var pipelineValue: Value {
        switch self {
        case .null: return .null
        case let .bool(b): return .bool(b)
        case let .number(d): return d == d.rounded() && abs(d) < 9e15 ? .int(Int(d)) : .double(d)
        case let .string(s): return .string(s)
        case let .array(a): return .list(a.map(\.pipelineValue))
        case let .object(o): return .map(o.mapValues(\.pipelineValue))
        }
    }
}
