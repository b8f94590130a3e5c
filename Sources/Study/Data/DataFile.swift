// DataFile: reads JSONL / JSON / CSV / TSV / TXT files (optionally gzip-compressed) into raw records.
import Foundation
import Pipeline

/// The text format of a data file.
public enum DataFormat: String, Sendable, Codable, CaseIterable {
    /// One JSON object per line.
    case jsonl
    /// A JSON array of objects, or an object holding such an array in one field.
    case json
    /// RFC 4180 comma-separated values with a header row.
    case csv
    /// Tab-separated values with a header row (no quoting).
    case tsv
    /// One prompt per line; blank lines are skipped; the field is named `text`.
    case txt

    /// Detects the format from a path's extension; `.gz` is stripped first.
    /// - Returns: the format and whether the file is gzip-compressed.
    public static func detect(path: String) throws -> (format: DataFormat, gzip: Bool) {
        var name = (path as NSString).lastPathComponent.lowercased()
        var gz = false
        if name.hasSuffix(".gz") { gz = true; name = String(name.dropLast(3)) }
        let ext = (name as NSString).pathExtension
        switch ext {
        case "jsonl", "ndjson": return (.jsonl, gz)
        case "json": return (.json, gz)
        case "csv": return (.csv, gz)
        case "tsv", "tab": return (.tsv, gz)
        case "txt", "text": return (.txt, gz)
        default: throw StudyError.unsupportedFormat(file: path, reason: "extension '.\(ext)'")
        }
    }
}

/// One record as read from a file: an object of fields plus where it came from.
public struct RawRecord: Sendable, Equatable {
    /// File and 1-based start line.
    public var location: SourceLocation
    /// The record's fields (CSV/TSV: header -> text; TXT: `text` -> line).
    public var value: Value
}

/// Options for reading one data file.
public struct DataFileOptions: Sendable, Equatable {
    /// Overrides extension-based detection when set.
    public var format: DataFormat?
    /// For `.json` objects: the field holding the record list (nil = the only array-of-objects field).
    public var listField: String?

    /// Default options: detect everything.
    public init(format: DataFormat? = nil, listField: String? = nil) {
        self.format = format
        self.listField = listField
    }
}

/// Reader turning a file into `RawRecord`s.
public enum DataFile {
    /// Reads and parses the file at `path`.
    public static func read(path: String, options: DataFileOptions = DataFileOptions()) throws -> [RawRecord] {
        let detected = try DataFormat.detect(path: path)
        let format = options.format ?? detected.format
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw StudyError.unreadable(file: path, reason: error.localizedDescription)
        }
        let bytes = (detected.gzip || Gzip.isGzip(data)) ? try Gzip.decompress(data, file: path) : data
        return try parse(bytes, format: format, file: path, listField: options.listField)
    }

    /// Parses in-memory bytes in `format`; `file` names the source in errors.
    public static func parse(_ data: Data, format: DataFormat, file: String, listField: String? = nil) throws -> [RawRecord] {
        var body = data
        if body.starts(with: [0xEF, 0xBB, 0xBF]) { body = body.dropFirst(3) }  // UTF-8 BOM
        func text() throws -> String {
            guard let t = String(data: body, encoding: .utf8) else { throw StudyError.invalidEncoding(file: file) }
            return t
        }
        switch format {
        case .jsonl: return try parseJSONL(body, file: file)  // strings are UTF-8-checked by the parser
        case .json: return try parseJSON(body, file: file, listField: listField)
        case .csv: return try parseDelimited(try text(), parser: DelimitedParser(delimiter: ","), file: file)
        case .tsv: return try parseDelimited(try text(), parser: DelimitedParser(delimiter: "\t", quoting: false), file: file)
        case .txt: return parseText(try text(), file: file)
        }
    }

    private static func parseJSONL(_ data: Data, file: String) throws -> [RawRecord] {
        var records: [RawRecord] = []
        var lineNumber = 0
        var start = data.startIndex
        while start < data.endIndex {
            lineNumber += 1
            let end = data[start...].firstIndex(of: 0x0A) ?? data.endIndex
            let slice = data[start..<end]
            start = end < data.endIndex ? end + 1 : end
            if slice.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            let doc = try StudyError.readingJSON { try JSONReader.parse(Data(slice), file: file, baseLine: lineNumber) }
            let loc = SourceLocation(file: file, line: lineNumber)
            guard case .map = doc.value else {
                throw StudyError.schemaMismatch(loc, field: "<record>", expected: "a JSON object, got \(doc.value.jsonTypeName)")
            }
            records.append(RawRecord(location: loc, value: doc.value))
        }
        return records
    }

    private static func parseJSON(_ data: Data, file: String, listField: String?) throws -> [RawRecord] {
        let doc = try StudyError.readingJSON { try JSONReader.parse(data, file: file) }
        let list: [Value]
        let lines: [Int]
        switch doc.value {
        case let .list(a):
            list = a
            lines = doc.elementLines[""] ?? []
        case let .map(o):
            let key: String
            if let listField {
                key = listField
            } else {
                let candidates = o.keys.sorted().filter { k in
                    if case let .list(a)? = o[k], let first = a.first, case .map = first { return true }
                    return false
                }
                guard candidates.count == 1 else {
                    throw StudyError.schemaMismatch(SourceLocation(file: file, line: 1), field: "<list field>",
                        expected: candidates.isEmpty ? "an array of objects under some key"
                                                     : "one array of objects, found \(candidates.joined(separator: ", ")); set listField")
                }
                key = candidates[0]
            }
            guard case let .list(a)? = o[key] else {
                throw StudyError.schemaMismatch(SourceLocation(file: file, line: 1), field: key, expected: "an array of records")
            }
            list = a
            lines = doc.elementLines[key] ?? []
        default:
            throw StudyError.schemaMismatch(SourceLocation(file: file, line: 1), field: "<document>",
                                            expected: "an array of objects or an object holding one")
        }
        return try list.enumerated().map { i, value in
            let loc = SourceLocation(file: file, line: i < lines.count ? lines[i] : 0)
            guard case .map = value else {
                throw StudyError.schemaMismatch(loc, field: "<record \(i)>", expected: "a JSON object, got \(value.jsonTypeName)")
            }
            return RawRecord(location: loc, value: value)
        }
    }

    private static func parseDelimited(_ text: String, parser: DelimitedParser, file: String) throws -> [RawRecord] {
        let rows = try parser.parse(text, file: file)
        guard let header = rows.first else { return [] }
        let names = header.fields.map { $0.trimmingCharacters(in: .whitespaces) }
        return try rows.dropFirst().map { row in
            let loc = SourceLocation(file: file, line: row.line)
            guard row.fields.count == names.count else {
                throw StudyError.malformed(loc, reason: "\(row.fields.count) fields, header has \(names.count)")
            }
            var object: [String: Value] = [:]
            for (name, value) in zip(names, row.fields) { object[name] = .string(value) }
            return RawRecord(location: loc, value: .map(object))
        }
    }

    private static func parseText(_ text: String, file: String) -> [RawRecord] {
        var records: [RawRecord] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !trimmed.isEmpty else { continue }
            records.append(RawRecord(location: SourceLocation(file: file, line: i + 1),
                                     value: .map(["text": .string(trimmed)])))
        }
        return records
    }
}
