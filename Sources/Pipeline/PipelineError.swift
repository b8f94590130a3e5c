// Errors of the Pipeline module: spec errors with source positions, store and run errors.
import Foundation

/// A position in a pipeline file: `file:line:column` (1-based).
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }
}

/// The class of a spec error, so tests and tools can tell them apart without parsing text.
public enum SpecErrorKind: String, Sendable {
    case yamlSyntax, unknownKey, wrongType, missingKey, unknownStageKind, missingReference,
         missingOutput, duplicateName, cycle, unknownInterpolation, invalidValue, fileNotFound
}

/// Every error the Pipeline module throws.
public enum PipelineError: Error, CustomStringConvertible, Sendable {
    /// A problem in a pipeline file: where, which key, and what was expected.
    case spec(SpecErrorKind, SourceLocation, key: String, message: String)
    /// A file or store operation failed.
    case io(path: String, message: String)
    /// Malformed JSON at a file position.
    case json(SourceLocation, message: String)
    /// A stage instance failed; `log` is the path of its kept log.
    case stageFailed(instance: String, message: String, log: String?)
    /// A stage read a parameter or input it does not have, or of the wrong type.
    case stageInput(instance: String, name: String, message: String)
    /// A stored object does not match its manifest.
    case corruptObject(key: String, problems: [String])
    /// A command was used wrongly (names an instance that does not exist, and so on).
    case usage(String)
    /// A cluster executor problem: no sbatch, a rejected submission, a store the nodes cannot see.
    case cluster(String)

    public var description: String {
        switch self {
        case let .spec(_, loc, key, message):
            return key.isEmpty ? "\(loc): \(message)" : "\(loc): \(key): \(message)"
        case let .io(path, message):
            return "\(path): \(message)"
        case let .json(loc, message):
            return "\(loc): invalid JSON: \(message)"
        case let .stageFailed(instance, message, log):
            return "stage \(instance) failed: \(message)" + (log.map { " (log: \($0))" } ?? "")
        case let .stageInput(instance, name, message):
            return "stage \(instance): \(name): \(message)"
        case let .corruptObject(key, problems):
            return "object \(key) is corrupted: " + problems.joined(separator: "; ")
        case let .usage(message):
            return message
        case let .cluster(message):
            return message
        }
    }

    /// The spec error class, when this is a spec error.
    public var specKind: SpecErrorKind? {
        if case let .spec(kind, _, _, _) = self { return kind }
        return nil
    }

    /// The source location, when this is a spec error.
    public var location: SourceLocation? {
        if case let .spec(_, loc, _, _) = self { return loc }
        return nil
    }
}

/// "Did you mean" suggestions by edit distance.
public enum Suggest {
    /// The closest candidate within a small edit distance, if any.
    public static func closest(to word: String, in candidates: some Sequence<String>) -> String? {
        var best: (String, Int)?
        let limit = max(2, word.count / 3)
        for c in candidates {
            let d = distance(word.lowercased(), c.lowercased())
            if d <= limit && d < (best?.1 ?? Int.max) { best = (c, d) }
        }
        return best?.0
    }

    /// " (did you mean 'x'?)" or "".
    public static func hint(_ word: String, _ candidates: some Sequence<String>) -> String {
        closest(to: word, in: candidates).map { "; did you mean '\($0)'?" } ?? ""
    }

    /// Levenshtein distance.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a.unicodeScalars), b = Array(b.unicodeScalars)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var prev = Array(0...b.count)
        var cur = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            cur[0] = i
            for j in 1...b.count {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&prev, &cur)
        }
        return prev[b.count]
    }
}
