// JSONReader: the one JSON parser of the project, a strict RFC 8259 parser over UTF-8 bytes
// into `Value` (integers stay integers) that reports file:line:column on errors, bounds the
// nesting depth, and remembers the start line of every element of the top-level array(s)
// (record locations of data files). Store records, lineage, data rows and probe files all
// go through it; `Value` holds the canonical encoding that cache keys hash.
import Foundation

/// Parses JSON text into `Value`, tracking lines for error messages and record locations.
public struct JSONReader {
    /// Result of parsing a whole document.
    public struct Document {
        /// The parsed value.
        public var value: Value
        /// Start lines (1-based) of the elements of arrays at the top level (key `""`) and of
        /// arrays directly under a top-level object's keys (key = that field name).
        public var elementLines: [String: [Int]]
    }

    private let bytes: [UInt8]
    private var pos = 0
    private var line = 1
    private var lineStart = 0
    private let file: String
    private let baseLine: Int
    private var elementLines: [String: [Int]] = [:]

    /// Parses `data` as one JSON document; `baseLine` offsets line numbers (for JSONL lines).
    public static func parse(_ data: Data, file: String, baseLine: Int = 1) throws -> Document {
        try parse([UInt8](data), file: file, baseLine: baseLine)
    }

    /// Parses `bytes` as one JSON document.
    public static func parse(_ bytes: [UInt8], file: String, baseLine: Int = 1) throws -> Document {
        var p = JSONReader(bytes: bytes, file: file, baseLine: baseLine)
        p.skipWhitespace()
        let value = try p.parseValue(depth: 0, path: "")
        p.skipWhitespace()
        if p.pos < p.bytes.count { throw p.error("unexpected text after the JSON value") }
        return Document(value: value, elementLines: p.elementLines)
    }

    private init(bytes: [UInt8], file: String, baseLine: Int) {
        self.bytes = bytes
        self.file = file
        self.baseLine = baseLine
        self.line = baseLine
    }

    private func error(_ reason: String) -> PipelineError {
        .json(SourceLocation(file: file, line: line, column: pos - lineStart + 1), message: reason)
    }

    private mutating func skipWhitespace() {
        while pos < bytes.count {
            let b = bytes[pos]
            if b == 0x0A { line += 1; lineStart = pos + 1 } else if b != 0x20 && b != 0x09 && b != 0x0D { return }
            pos += 1
        }
    }

    private mutating func parseValue(depth: Int, path: String) throws -> Value {
        guard depth < 512 else { throw error("nesting deeper than 512") }
        guard pos < bytes.count else { throw error("unexpected end of input") }
        switch bytes[pos] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth)
        case UInt8(ascii: "["): return try parseArray(depth: depth, path: path)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectWord("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectWord("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectWord("null"); return .null
        default: return try parseNumber()
        }
    }

    private mutating func expectWord(_ word: String) throws {
        let w = Array(word.utf8)
        guard pos + w.count <= bytes.count, Array(bytes[pos..<pos + w.count]) == w else {
            throw error("invalid literal, expected '\(word)'")
        }
        pos += w.count
    }

    private mutating func parseObject(depth: Int) throws -> Value {
        pos += 1
        var object: [String: Value] = [:]
        skipWhitespace()
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "}") { pos += 1; return .map(object) }
        while true {
            skipWhitespace()
            guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") else { throw error("expected a string key") }
            let key = try parseString()
            skipWhitespace()
            guard pos < bytes.count, bytes[pos] == UInt8(ascii: ":") else { throw error("expected ':' after key") }
            pos += 1
            skipWhitespace()
            // Track element lines of arrays directly under the top-level object.
            object[key] = try parseValue(depth: depth + 1, path: depth == 0 ? key : "\u{0}")
            skipWhitespace()
            guard pos < bytes.count else { throw error("unterminated object") }
            if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
            if bytes[pos] == UInt8(ascii: "}") { pos += 1; return .map(object) }
            throw error("expected ',' or '}' in object")
        }
    }

    private mutating func parseArray(depth: Int, path: String) throws -> Value {
        pos += 1
        var array: [Value] = []
        let track = path != "\u{0}" && depth <= 1
        var lines: [Int] = []
        skipWhitespace()
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "]") {
            pos += 1
            if track { elementLines[path] = [] }
            return .list(array)
        }
        while true {
            skipWhitespace()
            if track { lines.append(line) }
            array.append(try parseValue(depth: depth + 1, path: "\u{0}"))
            skipWhitespace()
            guard pos < bytes.count else { throw error("unterminated array") }
            if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
            if bytes[pos] == UInt8(ascii: "]") { pos += 1; break }
            throw error("expected ',' or ']' in array")
        }
        if track { elementLines[path] = lines }
        return .list(array)
    }

    private mutating func parseString() throws -> String {
        pos += 1
        var out = [UInt8]()
        while true {
            guard pos < bytes.count else { throw error("unterminated string") }
            let b = bytes[pos]
            if b == UInt8(ascii: "\"") { pos += 1; break }
            if b < 0x20 { throw error("control character in string; escape newlines as \\n") }
            if b != UInt8(ascii: "\\") { out.append(b); pos += 1; continue }
            pos += 1
            guard pos < bytes.count else { throw error("unterminated escape") }
            let e = bytes[pos]
            pos += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var code = try parseHex4()
                if (0xD800..<0xDC00).contains(code), pos + 1 < bytes.count,
                   bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u") {
                    pos += 2
                    let low = try parseHex4()
                    if (0xDC00..<0xE000).contains(low) {
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    } else {
                        out.append(contentsOf: Array(String(Character("\u{FFFD}")).utf8))
                        code = low
                    }
                }
                let scalar = Unicode.Scalar(code) ?? "\u{FFFD}"
                out.append(contentsOf: Array(String(Character(scalar)).utf8))
            default:
                throw error("invalid escape '\\\(Character(Unicode.Scalar(e)))'")
            }
        }
        guard let s = String(bytes: out, encoding: .utf8) else { throw error("invalid UTF-8 in string") }
        return s
    }

    private mutating func parseHex4() throws -> UInt32 {
        guard pos + 4 <= bytes.count else { throw error("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[pos]
            let d: UInt32
            switch b {
            case 0x30...0x39: d = UInt32(b - 0x30)
            case 0x41...0x46: d = UInt32(b - 0x41 + 10)
            case 0x61...0x66: d = UInt32(b - 0x61 + 10)
            default: throw error("invalid hex digit in \\u escape")
            }
            v = v * 16 + d
            pos += 1
        }
        return v
    }

    private mutating func parseNumber() throws -> Value {
        let start = pos
        var integral = true
        while pos < bytes.count {
            let b = bytes[pos]
            if (b >= 0x30 && b <= 0x39) || b == UInt8(ascii: "-") || b == UInt8(ascii: "+") { pos += 1; continue }
            if b == UInt8(ascii: ".") || b == UInt8(ascii: "e") || b == UInt8(ascii: "E") { integral = false; pos += 1; continue }
            break
        }
        guard pos > start, let text = String(bytes: bytes[start..<pos], encoding: .ascii), text.first != "+" else {
            pos = start
            throw error("invalid value (expected a string, number, object, array, true, false or null)")
        }
        if integral, let i = Int(text) { return .int(i) }
        guard let value = Double(text), value.isFinite else {
            pos = start
            throw error("invalid number '\(text)'")
        }
        return .double(value)
    }
}
