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
            guard text.contains("${") else { return plain ? YAMLNode.resolvePlain(text) : .string(text) }
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

    /// Resolves the interpolations in a string.
    func resolveString(_ text: String, at location: SourceLocation, key: String) throws -> Value {
        let chars = Array(text.unicodeScalars)
        var out = String.UnicodeScalarView()
        var i = 0
        var pieces = 0
        var whole: Value?
        while i < chars.count {
            if chars[i] == "$", i + 2 < chars.count, chars[i + 1] == "$", chars[i + 2] == "{" {
                out.append("$"); out.append("{")
                i += 3
                continue
            }
            if chars[i] == "$", i + 1 < chars.count, chars[i + 1] == "{",
               let close = chars[(i + 2)...].firstIndex(of: "}") {
                let expr = String(String.UnicodeScalarView(chars[(i + 2)..<close])).trimmingCharacters(in: .whitespaces)
                if !expr.contains(".") {
                    out.append(contentsOf: chars[i...close])
                    i = close + 1
                    continue
                }
                let v = try lookup(expr, at: location, key: key)
                pieces += 1
                if i == 0 && close == chars.count - 1 { whole = v }
                out.append(contentsOf: v.description.unicodeScalars)
                i = close + 1
                continue
            }
            out.append(chars[i])
            i += 1
        }
        if pieces == 1, let whole { return whole }
        return .string(String(out))
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
