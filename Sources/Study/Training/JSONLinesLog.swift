// TrainingIO: streaming JSON Lines logs of the training kinds (one object per optimiser step
// or evaluation point, flushed as training runs so a long stage's progress can be inspected).
import Foundation

/// An open JSON Lines file that rows are appended to.
public final class JSONLinesLog {
    public let url: URL
    private let handle: FileHandle

    /// Creates (truncates) the file.
    public init(_ url: URL) throws {
        self.url = url
        _ = FileManager.default.createFile(atPath: url.path, contents: nil)
        guard let h = FileHandle(forWritingAtPath: url.path) else {
            throw StudyError.writeFailed(path: url.path, reason: "cannot open for writing")
        }
        handle = h
    }

    deinit { try? handle.close() }

    /// Appends one object (sorted keys).
    public func append(_ row: [String: Any]) throws {
        var line: Data
        do { line = try JSONSerialization.data(withJSONObject: row, options: [.sortedKeys, .withoutEscapingSlashes]) } catch {
            throw StudyError.writeFailed(path: url.path, reason: "row is not JSON-serialisable: \(error)")
        }
        line.append(0x0A)
        handle.write(line)
    }

    /// Writes a JSON object (pretty, sorted keys) to `url`.
    public static func writeObject(_ object: [String: Any], to url: URL) throws {
        do {
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
            try data.write(to: url)
        } catch {
            throw StudyError.writeFailed(path: url.path, reason: "\(error)")
        }
    }
}
