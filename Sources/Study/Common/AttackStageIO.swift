// AttackStageIO: small I/O helpers of the attack stages (pgd, lvs, report) on top of
// StageSupport: model display names, upstream lineage, output writing.
import Foundation
import Pipeline

enum AttackStageIO {
    /// A display name for the stage's model: param `model_name`, else the upstream stage of input
    /// `model`, else the model path's last component (extension dropped).
    static func modelName(_ context: StageContext) throws -> String {
        if context.params.has("model_name") { return try context.params.string("model_name") }
        if context.hasInput("model"), let stage = lineage(of: try context.input("model"))?["stage"]?.stringValue { return stage }
        return try StageSupport.modelLocation(context).url.deletingPathExtension().lastPathComponent
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
                  let v = try? JSON.parse(data, file: candidate.path) else { continue }
            return v.mapValue
        }
        return nil
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
