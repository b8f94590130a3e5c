// The one JSON value of the project (params, records, lineage, data rows, probe files), with
// its canonical encoding (what cache keys hash); JSONReader parses it.
import Foundation

/// A parameter or record value: what YAML scalars, lists and maps resolve to.
public enum Value: Sendable, Hashable, CustomStringConvertible {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list([Value])
    case map([String: Value])

    /// A short type name for error messages.
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .int: return "integer"
        case .double: return "number"
        case .string: return "string"
        case .list: return "list"
        case .map: return "map"
        }
    }

    /// The JSON name of the value's type (integers and other numbers are both "number").
    public var jsonTypeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .int, .double: return "number"
        case .string: return "string"
        case .list: return "array"
        case .map: return "object"
        }
    }

    /// Plain rendering: strings without quotes, numbers and lists in JSON form.
    public var description: String {
        switch self {
        case let .string(s): return s
        default: return canonicalJSON
        }
    }

    /// Canonical JSON: sorted keys, no whitespace, shortest round-trip numbers.
    public var canonicalJSON: String { String(decoding: canonicalBytes, as: UTF8.self) }

    /// Canonical JSON as UTF-8 bytes (what cache keys hash).
    public var canonicalBytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(to: &out, pretty: false, indent: 0)
        return out
    }

    /// Indented JSON with sorted keys, for files people read.
    public var prettyJSON: String {
        var out: [UInt8] = []
        write(to: &out, pretty: true, indent: 0)
        out.append(0x0a)
        return String(decoding: out, as: UTF8.self)
    }

    public subscript(key: String) -> Value? {
        if case let .map(m) = self { return m[key] }
        return nil
    }

    public var stringValue: String? { if case let .string(s) = self { return s }; return nil }
    public var intValue: Int? {
        switch self {
        case let .int(i): return i
        case let .double(d) where d == d.rounded() && abs(d) < 9e15: return Int(d)
        default: return nil
        }
    }
    public var doubleValue: Double? {
        switch self {
        case let .int(i): return Double(i)
        case let .double(d): return d
        default: return nil
        }
    }
    public var boolValue: Bool? { if case let .bool(b) = self { return b }; return nil }
    public var listValue: [Value]? { if case let .list(l) = self { return l }; return nil }
    public var mapValue: [String: Value]? { if case let .map(m) = self { return m }; return nil }

    /// The value at a dotted path (`a.b`, `list.0`), or nil when any step is missing; a key
    /// that itself contains dots is found directly.
    public func value(at path: String) -> Value? {
        if case let .map(m) = self, let direct = m[path] { return direct }
        var current = self
        for part in path.split(separator: ".", omittingEmptySubsequences: false) {
            switch current {
            case let .map(m):
                guard let next = m[String(part)] else { return nil }
                current = next
            case let .list(l):
                guard let i = Int(part), l.indices.contains(i) else { return nil }
                current = l[i]
            default:
                return nil
            }
        }
        return current
    }

    /// The value as text: strings as-is, numbers and booleans printed (integral numbers
    /// without a fraction); nil for null, lists and maps.
    public var scalarText: String? {
        switch self {
        case let .string(s): return s
        case let .bool(b): return b ? "true" : "false"
        case let .int(i): return String(i)
        case let .double(d):
            if d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) }
            return String(d)
        default: return nil
        }
    }

    private func write(to out: inout [UInt8], pretty: Bool, indent: Int) {
        func newline(_ level: Int) {
            out.append(0x0a)
            for _ in 0..<(level * 2) { out.append(0x20) }
        }
        switch self {
        case .null: out += "null".utf8
        case let .bool(b): out += (b ? "true" : "false").utf8
        case let .int(i): out += String(i).utf8
        case let .double(d):
            if d.isFinite { out += "\(d)".utf8 } else { Value.writeString(d.isNaN ? "NaN" : (d > 0 ? "Infinity" : "-Infinity"), to: &out) }
        case let .string(s): Value.writeString(s, to: &out)
        case let .list(items):
            if items.isEmpty { out += "[]".utf8; return }
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                if pretty { newline(indent + 1) }
                item.write(to: &out, pretty: pretty, indent: indent + 1)
            }
            if pretty { newline(indent) }
            out.append(UInt8(ascii: "]"))
        case let .map(m):
            if m.isEmpty { out += "{}".utf8; return }
            out.append(UInt8(ascii: "{"))
            for (i, key) in m.keys.sorted().enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                if pretty { newline(indent + 1) }
                Value.writeString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                if pretty { out.append(0x20) }
                m[key]!.write(to: &out, pretty: pretty, indent: indent + 1)
            }
            if pretty { newline(indent) }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static func writeString(_ s: String, to out: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0x0a: out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0x0d: out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case 0x09: out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0..<0x20: out += [UInt8(ascii: "\\"), UInt8(ascii: "u"), 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 15)]]
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// `read(2)`, named apart from `JSON.read`.
private func posixRead(_ fd: Int32, _ buf: UnsafeMutableRawPointer, _ n: Int) -> Int { read(fd, buf, n) }

/// A small JSON parser over bytes (records are read on every `status`, so it avoids Foundation).
public enum JSON {
    /// Parses a JSON document (`file` names it in errors).
    public static func parse(_ bytes: [UInt8], file: String = "<json>") throws -> Value {
        try JSONReader.parse(bytes, file: file).value
    }

    /// Parses a JSON document from data.
    public static func parse(_ data: Data, file: String = "<json>") throws -> Value {
        try JSONReader.parse([UInt8](data), file: file).value
    }

    /// The bytes of a file, read with one open/fstat/read.
    public static func readBytes(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        var out = [UInt8](repeating: 0, count: Int(st.st_size))
        var filled = 0
        while filled < out.count {
            let n = out.withUnsafeMutableBytes { posixRead(fd, $0.baseAddress! + filled, $0.count - filled) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            filled += n
        }
        return filled == out.count ? out : Array(out[0..<filled])
    }

    /// Parses a JSON file.
    public static func read(_ path: String) throws -> Value {
        guard let bytes = readBytes(path) else {
            throw PipelineError.io(path: path, message: "cannot read")
        }
        return try parse(bytes, file: path)
    }
}

extension Value: Encodable {
    /// Encodes the value for JSONEncoder (artifact files written through Codable).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case let .bool(b): try c.encode(b)
        case let .int(i): try c.encode(i)
        case let .double(d): try c.encode(d)
        case let .string(s): try c.encode(s)
        case let .list(l): try c.encode(l)
        case let .map(m): try c.encode(m)
        }
    }
}
