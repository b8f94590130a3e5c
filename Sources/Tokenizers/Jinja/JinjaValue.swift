import Foundation

/// A value in the Jinja interpreter, with Python semantics for truthiness, printing and equality.
public enum JinjaValue: Sendable {
    /// An undefined variable or missing attribute; carries a description for error messages.
    case undefined(String)
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JinjaValue])
    /// A dict with insertion-ordered string keys.
    case object(JinjaObject)
    /// A `namespace(...)` object (mutable through `set ns.attr = ...`).
    case namespace(JinjaNamespace)
    /// A function (global, macro or bound method).
    case callable(JinjaCallable)

    /// Builds an object value from ordered pairs.
    public static func dict(_ pairs: [(String, JinjaValue)]) -> JinjaValue {
        var o = JinjaObject()
        for (k, v) in pairs { o[k] = v }
        return .object(o)
    }

    /// Converts Foundation JSON values (from JSONSerialization) to Jinja values.
    public static func fromJSON(_ any: Any?) -> JinjaValue {
        guard let any else { return .none }
        switch any {
        case is NSNull: return .none
        case let s as String: return .string(s)
        case let n as NSNumber:
            switch String(cString: n.objCType) {
            case "c", "B": return .bool(n.boolValue)
            case "d", "f": return .double(n.doubleValue)
            default: return .int(n.intValue)
            }
        case let a as [Any]: return .array(a.map { fromJSON($0) })
        case let d as [String: Any]:
            var o = JinjaObject()
            for k in d.keys.sorted() { o[k] = fromJSON(d[k]) }
            return .object(o)
        default: return .string("\(any)")
        }
    }

    var isUndefined: Bool { if case .undefined = self { return true } else { return false } }
    var isNone: Bool { if case .none = self { return true } else { return false } }

    /// Python truthiness.
    var truthy: Bool {
        switch self {
        case .undefined, .none: return false
        case let .bool(b): return b
        case let .int(i): return i != 0
        case let .double(d): return d != 0
        case let .string(s): return !s.isEmpty
        case let .array(a): return !a.isEmpty
        case let .object(o): return !o.keys.isEmpty
        case .namespace, .callable: return true
        }
    }

    /// `str(value)` as Jinja prints it (undefined prints as empty).
    var str: String {
        switch self {
        case .undefined: return ""
        case let .string(s): return s
        default: return repr
        }
    }

    /// Python `repr`.
    var repr: String {
        switch self {
        case .undefined: return ""
        case .none: return "None"
        case let .bool(b): return b ? "True" : "False"
        case let .int(i): return String(i)
        case let .double(d): return JinjaValue.pyFloat(d)
        case let .string(s): return JinjaValue.pyStringRepr(s)
        case let .array(a): return "[" + a.map { $0.repr }.joined(separator: ", ") + "]"
        case let .object(o): return "{" + o.keys.map { JinjaValue.pyStringRepr($0) + ": " + (o[$0] ?? .none).repr }.joined(separator: ", ") + "}"
        case let .namespace(n): return "<Namespace \(n.values.keys.sorted())>"
        case let .callable(c): return "<function \(c.name)>"
        }
    }

    static func pyFloat(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d > 0 ? "inf" : "-inf" }
        if d == d.rounded() && abs(d) < 1e16 { return String(format: "%.1f", d) }
        return "\(d)"
    }

    static func pyStringRepr(_ s: String) -> String {
        let quote: Character = s.contains("'") && !s.contains("\"") ? "\"" : "'"
        var out = String(quote)
        for c in s.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if Character(c) == quote { out += "\\" + String(quote) }
                else if c.value < 0x20 || c.value == 0x7F { out += String(format: "\\x%02x", c.value) }
                else { out.unicodeScalars.append(c) }
            }
        }
        out.append(quote)
        return out
    }

    /// JSON as Python's `json.dumps(x, ensure_ascii=False, indent=indent, separators=..., sort_keys=...)`.
    func toJSON(indent: Int?, itemSeparator: String? = nil, keySeparator: String = ": ", sortKeys: Bool = false,
                level: Int = 0) throws -> String {
        let itemSep = itemSeparator ?? (indent == nil ? ", " : ",")
        switch self {
        case .undefined(let what): throw JinjaRuntimeError("cannot serialize undefined value \(what) to JSON")
        case .none: return "null"
        case let .bool(b): return b ? "true" : "false"
        case let .int(i): return String(i)
        case let .double(d):
            if d.isNaN { return "NaN" }
            if d.isInfinite { return d > 0 ? "Infinity" : "-Infinity" }
            return JinjaValue.pyFloat(d)
        case let .string(s): return JinjaValue.jsonString(s)
        case let .array(a):
            if a.isEmpty { return "[]" }
            let items = try a.map { try $0.toJSON(indent: indent, itemSeparator: itemSeparator, keySeparator: keySeparator,
                                                  sortKeys: sortKeys, level: level + 1) }
            return JinjaValue.wrap(items, "[", "]", indent: indent, itemSep: itemSep, level: level)
        case let .object(o):
            if o.keys.isEmpty { return "{}" }
            let keys = sortKeys ? o.keys.sorted() : o.keys
            let items = try keys.map { k in
                JinjaValue.jsonString(k) + keySeparator + (try (o[k] ?? .none).toJSON(
                    indent: indent, itemSeparator: itemSeparator, keySeparator: keySeparator, sortKeys: sortKeys,
                    level: level + 1))
            }
            return JinjaValue.wrap(items, "{", "}", indent: indent, itemSep: itemSep, level: level)
        case let .namespace(n):
            return try JinjaValue.object(JinjaObject(n.values)).toJSON(indent: indent, itemSeparator: itemSeparator,
                                                                       keySeparator: keySeparator, sortKeys: sortKeys,
                                                                       level: level)
        case let .callable(c): throw JinjaRuntimeError("cannot serialize function \(c.name) to JSON")
        }
    }

    private static func wrap(_ items: [String], _ open: String, _ close: String, indent: Int?, itemSep: String,
                             level: Int) -> String {
        guard let indent else { return open + items.joined(separator: itemSep) + close }
        let pad = String(repeating: " ", count: indent * (level + 1))
        let endPad = String(repeating: " ", count: indent * level)
        return open + "\n" + items.map { pad + $0 }.joined(separator: itemSep + "\n") + "\n" + endPad + close
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if c.value < 0x20 { out += String(format: "\\u%04x", c.value) } else { out.unicodeScalars.append(c) }
            }
        }
        return out + "\""
    }

    /// Python `==`.
    static func equal(_ a: JinjaValue, _ b: JinjaValue) -> Bool {
        switch (a, b) {
        case (.undefined, .undefined), (.none, .none): return true
        case let (.string(x), .string(y)): return x.unicodeScalars.elementsEqual(y.unicodeScalars)
        case let (.array(x), .array(y)): return x.count == y.count && zip(x, y).allSatisfy { equal($0, $1) }
        case let (.object(x), .object(y)):
            return Set(x.keys) == Set(y.keys) && x.keys.allSatisfy { equal(x[$0] ?? .none, y[$0] ?? .none) }
        default:
            if let x = a.number, let y = b.number { return x == y }
            return false
        }
    }

    /// Numeric view (bool counts as a number, as in Python).
    var number: Double? {
        switch self {
        case let .int(i): return Double(i)
        case let .double(d): return d
        case let .bool(b): return b ? 1 : 0
        default: return nil
        }
    }
}

/// An insertion-ordered string-keyed dictionary.
public struct JinjaObject: Sendable {
    public private(set) var keys: [String] = []
    private var storage: [String: JinjaValue] = [:]

    public init() {}
    init(_ dict: [String: JinjaValue]) {
        for k in dict.keys.sorted() { self[k] = dict[k] }
    }

    public subscript(key: String) -> JinjaValue? {
        get { storage[key] }
        set {
            if let v = newValue {
                if storage[key] == nil { keys.append(key) }
                storage[key] = v
            } else if storage.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }
}

/// The mutable object created by `namespace(...)`.
public final class JinjaNamespace: @unchecked Sendable {
    // @unchecked Sendable: a namespace is created and mutated only within one render call,
    // which runs on a single thread.
    var values: [String: JinjaValue]
    init(_ values: [String: JinjaValue]) { self.values = values }
}

/// A callable value: positional and keyword arguments to a result.
public struct JinjaCallable: Sendable {
    public let name: String
    let call: @Sendable (_ args: [JinjaValue], _ kwargs: [(String, JinjaValue)]) throws -> JinjaValue
}

/// A runtime error inside the interpreter; the interpreter adds the template position.
struct JinjaRuntimeError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}
