// DelimitedParser: RFC 4180 CSV (and TSV) parsing with quoted fields and line tracking.
import Foundation

/// One parsed row of a delimited file.
public struct DelimitedRow: Sendable, Equatable {
    /// 1-based physical line where the row starts.
    public var line: Int
    /// The row's fields, unquoted.
    public var fields: [String]
}

/// An RFC 4180 parser: fields separated by `delimiter`, rows by CRLF or LF; a field wrapped in
/// double quotes may contain delimiters, newlines and doubled quotes (`""` -> `"`).
public struct DelimitedParser: Sendable {
    /// The field separator (`,` for CSV, tab for TSV).
    public var delimiter: Character
    /// Whether double quotes are special (TSV files usually do not quote; true follows RFC 4180).
    public var quoting: Bool

    /// A parser splitting on `delimiter`.
    public init(delimiter: Character = ",", quoting: Bool = true) {
        self.delimiter = delimiter
        self.quoting = quoting
    }

    /// Parses `text` into rows; blank lines outside quotes are skipped.
    /// - Throws: `StudyError.malformed` for an unterminated quote or a stray quote inside an
    ///   unquoted field, with the file and line.
    public func parse(_ text: String, file: String) throws -> [DelimitedRow] {
        var rows: [DelimitedRow] = []
        var fields: [String] = []
        var field = ""
        var line = 1
        var rowStart = 1
        var inQuotes = false
        var quotedField = false  // the current field was quoted (closing quote seen)
        var quoteLine = 0
        var rowHasContent = false
        let scalars = Array(text.unicodeScalars)
        let delim = delimiter.unicodeScalars.first ?? ","
        var i = 0

        func endField() {
            fields.append(field)
            field = ""
            quotedField = false
        }
        func endRow() {
            endField()
            if rowHasContent { rows.append(DelimitedRow(line: rowStart, fields: fields)) }
            fields = []
            rowHasContent = false
        }

        while i < scalars.count {
            let c = scalars[i]
            if inQuotes {
                if c == "\"" {
                    if i + 1 < scalars.count, scalars[i + 1] == "\"" {
                        field.unicodeScalars.append("\"")
                        i += 2
                        continue
                    }
                    inQuotes = false
                    quotedField = true
                } else {
                    if c == "\n" { line += 1 }
                    field.unicodeScalars.append(c)
                }
                i += 1
                continue
            }
            if c == delim {
                endField()
                rowHasContent = true
            } else if c == "\r" || c == "\n" {
                if c == "\r", i + 1 < scalars.count, scalars[i + 1] == "\n" { i += 1 }
                endRow()
                line += 1
                rowStart = line
            } else if c == "\"" && quoting {
                guard field.isEmpty, !quotedField else {
                    throw StudyError.malformed(SourceLocation(file: file, line: line),
                                               reason: "stray double quote inside a field; quote the whole field and double inner quotes")
                }
                inQuotes = true
                quoteLine = line
                rowHasContent = true
            } else {
                if quotedField {
                    throw StudyError.malformed(SourceLocation(file: file, line: line),
                                               reason: "text after a closing quote; double quotes inside quoted fields must be written as \"\"")
                }
                field.unicodeScalars.append(c)
                rowHasContent = true
            }
            i += 1
        }
        if inQuotes {
            throw StudyError.malformed(SourceLocation(file: file, line: quoteLine),
                                       reason: "unterminated quoted field")
        }
        endRow()
        return rows
    }

    /// Quotes a field for writing when it contains the delimiter, quotes or newlines.
    public func escape(_ value: String) -> String {
        let needs = value.contains(delimiter) || value.contains("\"") || value.contains("\n") || value.contains("\r")
        guard needs else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// Renders rows as delimited text with LF line ends.
    public func render(_ rows: [[String]]) -> String {
        rows.map { $0.map(escape).joined(separator: String(delimiter)) }.joined(separator: "\n") + "\n"
    }
}
