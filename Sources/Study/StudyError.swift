// StudyError: the one typed error of the Study module (data loading, judges, metrics, reports).
import Foundation
import Pipeline

/// Where in an input file something happened (1-based line; 0 when not line-oriented).
public struct SourceLocation: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The file path as given to the loader.
    public var file: String
    /// 1-based line of the record's first physical line (0 = whole file).
    public var line: Int

    /// A location in `file` at `line`.
    public init(file: String, line: Int) {
        self.file = file
        self.line = line
    }

    /// `file:line`.
    public var description: String { line > 0 ? "\(file):\(line)" : file }
}

/// Every failure the Study module reports, with enough context to fix the input.
public enum StudyError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file could not be read (missing, permissions).
    case unreadable(file: String, reason: String)
    /// The file extension does not name a supported format.
    case unsupportedFormat(file: String, reason: String)
    /// gzip data could not be decompressed or compressed.
    case compression(file: String, reason: String)
    /// The bytes are not valid UTF-8 text.
    case invalidEncoding(file: String)
    /// A syntax error (malformed JSON, unterminated CSV quote) at a location.
    case malformed(SourceLocation, reason: String)
    /// A record lacks a field or the field has the wrong kind of value.
    case schemaMismatch(SourceLocation, field: String, expected: String)
    /// After loading and validation the file held no usable record.
    case noUsableRecords(file: String, reason: String)
    /// A configuration value is invalid (unknown source name, bad fraction).
    case invalidConfiguration(String)
    /// An external command failed to start, exited non-zero or printed bad output.
    case externalCommand(command: String, line: Int?, reason: String)
    /// Judges or scorers disagree in the number of items they produced.
    case countMismatch(what: String, expected: Int, got: Int)
    /// Writing an output file failed.
    case writeFailed(path: String, reason: String)
    /// Training produced a non-finite loss term (`term`) at optimiser step `step`, micro-batch `microBatch`.
    case trainingDiverged(step: Int, microBatch: Int, term: String, value: Float)

    /// A readable message: what failed, where, and what to do.
    public var description: String {
        switch self {
        case let .unreadable(file, reason):
            return "cannot read \(file): \(reason); check the path and permissions"
        case let .unsupportedFormat(file, reason):
            return "\(file): unsupported format (\(reason)); use .jsonl, .json, .csv, .tsv or .txt, optionally with .gz"
        case let .compression(file, reason):
            return "\(file): gzip error: \(reason); is the file a complete gzip stream?"
        case let .invalidEncoding(file):
            return "\(file): not valid UTF-8 text; re-encode the file as UTF-8"
        case let .malformed(loc, reason):
            return "\(loc): malformed input: \(reason)"
        case let .schemaMismatch(loc, field, expected):
            return "\(loc): field '\(field)' does not fit the schema: expected \(expected); fix the record or the field mapping"
        case let .noUsableRecords(file, reason):
            return "\(file): no usable records (\(reason)); check the schema / field mapping"
        case let .invalidConfiguration(message):
            return "invalid configuration: \(message)"
        case let .externalCommand(command, line, reason):
            let at = line.map { " (output line \($0))" } ?? ""
            return "external command '\(command)'\(at): \(reason)"
        case let .countMismatch(what, expected, got):
            return "\(what): expected \(expected) items, got \(got)"
        case let .writeFailed(path, reason):
            return "cannot write \(path): \(reason)"
        case let .trainingDiverged(step, microBatch, term, value):
            return "training diverged at step \(step) (micro-batch \(microBatch)): loss term '\(term)' is \(value); "
                + "lower the learning rate or the term's weight; nothing was published"
        }
    }
}

extension StudyError {
    /// Runs a JSON read, reporting malformed JSON as `malformed` at its file and line (the
    /// column in the reason) and an unreadable file as `unreadable`.
    static func readingJSON<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let PipelineError.json(loc, message) {
            throw StudyError.malformed(SourceLocation(file: loc.file, line: loc.line), reason: "\(message) (column \(loc.column))")
        } catch let PipelineError.io(path, message) {
            throw StudyError.unreadable(file: path, reason: message)
        }
    }
}
