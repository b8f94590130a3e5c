// JSONValue: a small typed JSON tree with dotted-path lookup, used by the data loaders.
import Foundation

/// A decoded JSON value.
public enum JSONValue: Sendable, Hashable, Codable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Decodes any JSON value.
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else if let o = try? c.decode([String: JSONValue].self) { self = .object(o) }
        else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "not a JSON value")
        }
    }

    /// Encodes the value as JSON.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case let .bool(b): try c.encode(b)
        case let .number(d): try c.encode(d)
        case let .string(s): try c.encode(s)
        case let .array(a): try c.encode(a)
        case let .object(o): try c.encode(o)
        }
    }

    /// Parses one JSON document from UTF-8 bytes.
    public static func parse(_ data: Data) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: data)
    }

    /// The value at a dotted path (`a.b`, `list.0`), or nil when any step is missing.
    public func value(at path: String) -> JSONValue? {
        if case let .object(o) = self, let direct = o[path] { return direct }  // keys containing dots
        var current = self
        for part in path.split(separator: ".", omittingEmptySubsequences: false) {
            switch current {
            case let .object(o):
                guard let next = o[String(part)] else { return nil }
                current = next
            case let .array(a):
                guard let i = Int(part), a.indices.contains(i) else { return nil }
                current = a[i]
            default:
                return nil
            }
        }
        return current
    }

    /// The value as text: strings as-is, numbers and booleans printed; nil for null, arrays, objects.
    public var scalarText: String? {
        switch self {
        case let .string(s): return s
        case let .bool(b): return b ? "true" : "false"
        case let .number(d):
            if d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) }
            return String(d)
        default: return nil
        }
    }

    /// The value as a boolean: JSON booleans, numbers 0/1 and the strings true/false/yes/no/1/0.
    public var boolValue: Bool? {
        switch self {
        case let .bool(b): return b
        case let .number(d): return d == 1 ? true : (d == 0 ? false : nil)
        case let .string(s):
            switch s.trimmingCharacters(in: .whitespaces).lowercased() {
            case "true", "yes", "1", "t", "y": return true
            case "false", "no", "0", "f", "n": return false
            default: return nil
            }
        default: return nil
        }
    }

    /// A short name of the value's kind, for error messages.
    public var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .number: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }
}
