// `${params.x}` and `${matrix.k}` interpolation of YAML nodes into values.
import Foundation

/// The variables visible to interpolation in one stage instance.
struct InterpolationScope {
    var params: [String: Value]
    var matrix: [String: Value]

    /// Resolves a node: a scalar that is exactly `${...}` keeps the value's type; other strings
    /// substitute text. `$${` is a literal `${`; `${NAME}` without a dot is left alone (shell variables).
    func resolve(_ node: YAMLNode, key: String) throws -> Value {
        switch node.content {
        case let .scalar(text, plain):
            guard InterpolationScope.mayInterpolate(text) else { return plain ? YAMLNode.resolvePlain(text) : .string(text) }
            return try resolveString(text, at: node.location, key: key)
        case let .sequence(items):
            return .list(try items.enumerated().map { try resolve($1, key: "\(key)[\($0)]") })
        case let .mapping(pairs):
            var m: [String: Value] = [:]
            for p in pairs {
                let k = p.key.scalarText ?? ""
                m[k] = try resolve(p.value, key: "\(key).\(k)")
            }
            return .map(m)
        }
    }

    /// Whether `text` contains `${` (a byte scan; Foundation's `contains` is slow on this hot path).
    static func mayInterpolate(_ text: String) -> Bool {
        var prev: UInt8 = 0
        for b in text.utf8 {
            if prev == UInt8(ascii: "$") && b == UInt8(ascii: "{") { return true }
            prev = b
        }
        return false
    }

    /// Resolves the interpolations in a string.
    func resolveString(_ text: String, at location: SourceLocation, key: String) throws -> Value {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 16)
        var i = 0
        var pieces = 0
        var whole: Value?
        let dollar = UInt8(ascii: "$"), open = UInt8(ascii: "{"), close = UInt8(ascii: "}")
        while i < bytes.count {
            let c = bytes[i]
            if c == dollar, i + 2 < bytes.count, bytes[i + 1] == dollar, bytes[i + 2] == open {
                out += [dollar, open]
                i += 3
                continue
            }
            if c == dollar, i + 1 < bytes.count, bytes[i + 1] == open,
               let end = bytes[(i + 2)...].firstIndex(of: close) {
                var lo = i + 2, hi = end
                while lo < hi, bytes[lo] == 0x20 { lo += 1 }
                while hi > lo, bytes[hi - 1] == 0x20 { hi -= 1 }
                let exprBytes = bytes[lo..<hi]
                if !exprBytes.contains(UInt8(ascii: ".")) {
                    out += bytes[i...end]
                    i = end + 1
                    continue
                }
                let v = try lookup(String(decoding: exprBytes, as: UTF8.self), at: location, key: key)
                pieces += 1
                if i == 0 && end == bytes.count - 1 { whole = v }
                out += v.description.utf8
                i = end + 1
                continue
            }
            out.append(c)
            i += 1
        }
        if pieces == 1, let whole { return whole }
        return .string(String(decoding: out, as: UTF8.self))
    }

    private func lookup(_ expr: String, at location: SourceLocation, key: String) throws -> Value {
        let parts = expr.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        let namespace = parts[0]
        let rest = Array(parts.dropFirst())
        let table: [String: Value]
        switch namespace {
        case "params": table = params
        case "matrix": table = matrix
        default:
            throw PipelineError.spec(.unknownInterpolation, location, key: key,
                                     message: "unknown interpolation '${\(expr)}': expected ${params.NAME} or ${matrix.NAME}")
        }
        var current: Value = .map(table)
        var path = namespace
        for part in rest {
            guard let m = current.mapValue, let next = m[part] else {
                let known = current.mapValue.map { $0.keys.sorted() } ?? []
                let what = namespace == "matrix" ? "matrix key" : "parameter"
                throw PipelineError.spec(.unknownInterpolation, location, key: key,
                                         message: "unknown \(what) '\(path).\(part)' in '${\(expr)}'" + Suggest.hint(part, known)
                                             + (known.isEmpty ? (namespace == "matrix" ? " (this stage has no matrix)" : " (no params defined)")
                                                              : "; known: " + known.joined(separator: ", ")))
            }
            current = next
            path += "." + part
        }
        return current
    }
}
