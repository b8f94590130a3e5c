import Foundation

/// Filters, tests and Python methods of strings, dicts and lists.
extension JinjaBuiltins {
    static func kwarg(_ kwargs: [(String, JinjaValue)], _ name: String) -> JinjaValue? {
        kwargs.first { $0.0 == name }?.1
    }

    /// Positional argument `i`, else keyword `name`.
    static func arg(_ args: [JinjaValue], _ kwargs: [(String, JinjaValue)], _ i: Int, _ name: String) -> JinjaValue? {
        i < args.count ? args[i] : kwarg(kwargs, name)
    }

    static func intArg(_ v: JinjaValue?) -> Int? {
        guard let v else { return nil }
        if case let .int(i) = v { return i }
        return nil
    }

    static func isPyWhitespace(_ c: Unicode.Scalar) -> Bool { c.properties.isWhitespace }

    static func strip(_ s: String, _ chars: JinjaValue?, left: Bool, right: Bool) -> String {
        var u = Array(s.unicodeScalars)
        let set: Set<Unicode.Scalar>? = {
            guard let chars, case let .string(c) = chars else { return nil }
            return Set(c.unicodeScalars)
        }()
        func strippable(_ c: Unicode.Scalar) -> Bool { set.map { $0.contains(c) } ?? isPyWhitespace(c) }
        if right { while let l = u.last, strippable(l) { u.removeLast() } }
        if left {
            var k = 0
            while k < u.count && strippable(u[k]) { k += 1 }
            u.removeFirst(k)
        }
        return String(String.UnicodeScalarView(u))
    }

    static func pySplit(_ s: String, _ sep: JinjaValue?, _ maxsplit: Int) -> [JinjaValue] {
        if let sep, case let .string(sp) = sep, !sp.isEmpty {
            var parts: [String] = []
            var rest = Substring(s)
            while maxsplit < 0 || parts.count < maxsplit, let r = rest.range(of: sp) {
                parts.append(String(rest[..<r.lowerBound]))
                rest = rest[r.upperBound...]
            }
            parts.append(String(rest))
            return parts.map { .string($0) }
        }
        var parts: [String] = []
        var cur = String.UnicodeScalarView()
        var u = Array(s.unicodeScalars)[...]
        while let c = u.first {
            u = u.dropFirst()
            if isPyWhitespace(c) {
                if !cur.isEmpty {
                    parts.append(String(cur))
                    cur = String.UnicodeScalarView()
                    if maxsplit >= 0 && parts.count == maxsplit {
                        let rest = String(String.UnicodeScalarView(u.drop(while: isPyWhitespace)))
                        if !rest.isEmpty { parts.append(rest) }
                        return parts.map { .string($0) }
                    }
                }
            } else {
                cur.append(c)
            }
        }
        if !cur.isEmpty { parts.append(String(cur)) }
        return parts.map { .string($0) }
    }

    static func capitalize(_ s: String) -> String {
        guard let f = s.first else { return s }
        return f.uppercased() + s.dropFirst().lowercased()
    }

    static func title(_ s: String) -> String {
        var out = ""
        var prevCased = false
        for ch in s {
            if ch.isLetter {
                out += prevCased ? ch.lowercased() : ch.uppercased()
                prevCased = true
            } else {
                out.append(ch)
                prevCased = false
            }
        }
        return out
    }

    static func stringMethod(_ s: String, _ name: String) -> JinjaValue? {
        switch name {
        case "strip", "lstrip", "rstrip":
            return fn(name) { args, _ in
                .string(strip(s, args.first, left: name != "rstrip", right: name != "lstrip"))
            }
        case "startswith", "endswith":
            return fn(name) { args, _ in
                let candidates: [JinjaValue]
                if case let .array(a)? = args.first { candidates = a } else { candidates = args.prefix(1).map { $0 } }
                for c in candidates {
                    guard case let .string(p) = c else { throw JinjaRuntimeError("\(name) needs a string argument") }
                    if name == "startswith" ? s.unicodeScalars.starts(with: p.unicodeScalars)
                        : s.unicodeScalars.reversed().starts(with: p.unicodeScalars.reversed()) {
                        return .bool(true)
                    }
                }
                return .bool(false)
            }
        case "split":
            return fn(name) { args, kwargs in
                .array(pySplit(s, arg(args, kwargs, 0, "sep"), intArg(arg(args, kwargs, 1, "maxsplit")) ?? -1))
            }
        case "upper": return fn(name) { _, _ in .string(s.uppercased()) }
        case "lower": return fn(name) { _, _ in .string(s.lowercased()) }
        case "title": return fn(name) { _, _ in .string(title(s)) }
        case "capitalize": return fn(name) { _, _ in .string(capitalize(s)) }
        case "replace":
            return fn(name) { args, _ in
                guard args.count >= 2 else { throw JinjaRuntimeError("replace() needs 2 arguments") }
                return .string(replace(s, args[0].str, args[1].str, intArg(args.count > 2 ? args[2] : nil) ?? -1))
            }
        case "find":
            return fn(name) { args, _ in
                guard let sub = args.first?.str else { return .int(-1) }
                guard let r = s.range(of: sub) else { return .int(-1) }
                return .int(s.unicodeScalars.distance(from: s.unicodeScalars.startIndex, to: r.lowerBound))
            }
        case "count":
            return fn(name) { args, _ in
                guard let sub = args.first?.str, !sub.isEmpty else { return .int(s.unicodeScalars.count + 1) }
                return .int(s.components(separatedBy: sub).count - 1)
            }
        case "join":
            return fn(name) { args, _ in
                guard case let .array(a)? = args.first else { throw JinjaRuntimeError("join() needs a list") }
                return .string(a.map { $0.str }.joined(separator: s))
            }
        case "splitlines":
            return fn(name) { _, _ in
                .array(s.split(omittingEmptySubsequences: false, whereSeparator: { $0.isNewline })
                    .map { .string(String($0)) }.dropLast(s.last?.isNewline == true ? 1 : 0))
            }
        case "isdigit": return fn(name) { _, _ in .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.numericType == .decimal || $0.properties.numericType == .digit }) }
        case "isalpha": return fn(name) { _, _ in .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic }) }
        case "isspace": return fn(name) { _, _ in .bool(!s.isEmpty && s.unicodeScalars.allSatisfy(isPyWhitespace)) }
        case "islower": return fn(name) { _, _ in .bool(s.lowercased() == s && s.uppercased() != s) }
        case "isupper": return fn(name) { _, _ in .bool(s.uppercased() == s && s.lowercased() != s) }
        default: return nil
        }
    }

    static func replace(_ s: String, _ old: String, _ new: String, _ count: Int) -> String {
        guard !old.isEmpty else { return s }
        var out = ""
        var rest = Substring(s)
        var n = 0
        while count < 0 || n < count, let r = rest.range(of: old) {
            out += rest[..<r.lowerBound] + new
            rest = rest[r.upperBound...]
            n += 1
        }
        return out + rest
    }

    static func dictMethod(_ o: JinjaObject, _ name: String) -> JinjaValue? {
        switch name {
        case "items": return fn(name) { _, _ in .array(o.keys.map { .array([.string($0), o[$0] ?? .none]) }) }
        case "keys": return fn(name) { _, _ in .array(o.keys.map { .string($0) }) }
        case "values": return fn(name) { _, _ in .array(o.keys.map { o[$0] ?? .none }) }
        case "get":
            return fn(name) { args, _ in
                guard let k = args.first else { throw JinjaRuntimeError("get() needs a key") }
                return o[k.str] ?? (args.count > 1 ? args[1] : .none)
            }
        default: return nil
        }
    }

    static func listMethod(_ a: [JinjaValue], _ name: String) -> JinjaValue? {
        switch name {
        case "index":
            return fn(name) { args, _ in
                guard let x = args.first, let i = a.firstIndex(where: { JinjaValue.equal($0, x) }) else {
                    throw JinjaRuntimeError("value is not in list")
                }
                return .int(i)
            }
        case "count":
            return fn(name) { args, _ in
                guard let x = args.first else { return .int(0) }
                return .int(a.filter { JinjaValue.equal($0, x) }.count)
            }
        case "append", "extend", "pop", "insert", "remove", "clear", "sort", "reverse":
            return fn(name) { _, _ in
                throw JinjaRuntimeError("list.\(name)() is not allowed: templates are rendered in an immutable sandbox")
            }
        default: return nil
        }
    }

    static func length(_ v: JinjaValue) throws -> Int {
        switch v {
        case let .string(s): return s.unicodeScalars.count
        case let .array(a): return a.count
        case let .object(o): return o.keys.count
        case .undefined: return 0
        case let .namespace(ns): return ns.values.count
        default: throw JinjaRuntimeError("object of type '\(typeName(v))' has no len()")
        }
    }

    static func items(_ v: JinjaValue) throws -> [JinjaValue] {
        switch v {
        case let .array(a): return a
        case let .object(o): return o.keys.map { .string($0) }
        case let .string(s): return s.unicodeScalars.map { .string(String($0)) }
        case .undefined: return []
        default: throw JinjaRuntimeError("\(typeName(v)) object is not iterable")
        }
    }

    static func sortKey(_ a: JinjaValue, _ b: JinjaValue) -> Bool {
        (try? compare("<", a, b)) ?? false
    }

    // MARK: filters

    static func filter(_ name: String, _ v: JinjaValue, _ args: [JinjaValue], _ kwargs: [(String, JinjaValue)],
                       _ interp: JinjaInterpreter) throws -> JinjaValue {
        switch name {
        case "trim": return .string(strip(v.str, arg(args, kwargs, 0, "chars"), left: true, right: true))
        case "length", "count": return .int(try length(v))
        case "tojson":
            let indent = intArg(arg(args, kwargs, 0, "indent"))
            var itemSep: String? = nil, keySep = ": "
            if case let .array(seps)? = arg(args, kwargs, 2, "separators"), seps.count == 2 {
                itemSep = seps[0].str
                keySep = seps[1].str
            }
            let sortKeys = arg(args, kwargs, 3, "sort_keys")?.truthy ?? false
            return .string(try v.toJSON(indent: indent, itemSeparator: itemSep, keySeparator: keySep, sortKeys: sortKeys))
        case "upper": return .string(v.str.uppercased())
        case "lower": return .string(v.str.lowercased())
        case "capitalize": return .string(capitalize(v.str))
        case "title": return .string(title(v.str))
        case "string": return .string(v.str)
        case "safe", "e", "escape", "forceescape":
            if name == "safe" { return v }
            return .string(v.str.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&#34;")
                .replacingOccurrences(of: "'", with: "&#39;"))
        case "default", "d":
            let def = arg(args, kwargs, 0, "default_value") ?? .string("")
            let boolean = arg(args, kwargs, 1, "boolean")?.truthy ?? false
            if v.isUndefined || (boolean && !v.truthy) { return def }
            return v
        case "items":
            switch v {
            case let .object(o): return .array(o.keys.map { .array([.string($0), o[$0] ?? .none]) })
            case .undefined: return .array([])
            default: throw JinjaRuntimeError("items filter needs a mapping, got \(typeName(v))")
            }
        case "join":
            var list = try items(v)
            if let attr = arg(args, kwargs, 1, "attribute") { list = try list.map { try attribute($0, attr.str) } }
            return .string(list.map { $0.str }.joined(separator: arg(args, kwargs, 0, "d")?.str ?? ""))
        case "first": return try items(v).first ?? .undefined("first of an empty sequence")
        case "last": return try items(v).last ?? .undefined("last of an empty sequence")
        case "list": return .array(try items(v))
        case "reverse":
            if case let .string(s) = v { return .string(String(String.UnicodeScalarView(s.unicodeScalars.reversed()))) }
            return .array(try items(v).reversed())
        case "unique":
            var out: [JinjaValue] = []
            for x in try items(v) where !out.contains(where: { JinjaValue.equal($0, x) }) { out.append(x) }
            return .array(out)
        case "sort":
            var list = try items(v)
            let attr = arg(args, kwargs, 2, "attribute")
            func key(_ x: JinjaValue) -> JinjaValue { attr.flatMap { try? attribute(x, $0.str) } ?? x }
            list.sort { sortKey(key($0), key($1)) }
            if arg(args, kwargs, 0, "reverse")?.truthy ?? false { list.reverse() }
            return .array(list)
        case "dictsort":
            guard case let .object(o) = v else { throw JinjaRuntimeError("dictsort needs a mapping") }
            return .array(o.keys.sorted().map { .array([.string($0), o[$0] ?? .none]) })
        case "int":
            switch v {
            case let .int(i): return .int(i)
            case let .double(d): return .int(Int(d))
            case let .bool(b): return .int(b ? 1 : 0)
            case let .string(s): return .int(Int(s.trimmingCharacters(in: .whitespaces)) ?? intArg(args.first) ?? 0)
            default: return args.first ?? .int(0)
            }
        case "float":
            if let n = v.number { return .double(n) }
            if case let .string(s) = v, let d = Double(s.trimmingCharacters(in: .whitespaces)) { return .double(d) }
            return args.first ?? .double(0)
        case "abs":
            switch v {
            case let .int(i): return .int(abs(i))
            case let .double(d): return .double(abs(d))
            default: throw JinjaRuntimeError("abs needs a number")
            }
        case "round":
            guard let x = v.number else { throw JinjaRuntimeError("round needs a number") }
            let precision = intArg(arg(args, kwargs, 0, "precision")) ?? 0
            let m = pow(10.0, Double(precision))
            let method = arg(args, kwargs, 1, "method")?.str ?? "common"
            let scaled = x * m
            let r = method == "ceil" ? scaled.rounded(.up) : method == "floor" ? scaled.rounded(.down)
                : scaled.rounded(.toNearestOrAwayFromZero)
            return .double(r / m)
        case "replace":
            guard args.count >= 2 else { throw JinjaRuntimeError("replace filter needs 2 arguments") }
            return .string(replace(v.str, args[0].str, args[1].str, intArg(args.count > 2 ? args[2] : nil) ?? -1))
        case "indent":
            let width = intArg(arg(args, kwargs, 0, "width")) ?? 4
            let first = arg(args, kwargs, 1, "first")?.truthy ?? false
            let blank = arg(args, kwargs, 2, "blank")?.truthy ?? false
            let pad = String(repeating: " ", count: width)
            let lines = v.str.components(separatedBy: "\n")
            return .string(lines.enumerated().map { i, l in
                (i == 0 && !first) || (!blank && l.trimmingCharacters(in: .whitespaces).isEmpty) ? l : pad + l
            }.joined(separator: "\n"))
        case "wordcount": return .int(pySplit(v.str, nil, -1).count)
        case "format": return .string(try percentFormat(v.str, .array(args)))
        case "sum":
            var acc: JinjaValue = arg(args, kwargs, 1, "start") ?? .int(0)
            let attr = arg(args, kwargs, 0, "attribute")
            for x in try items(v) { acc = try arithmetic("+", acc, attr.map { try attribute(x, $0.str) } ?? x) }
            return acc
        case "min", "max":
            let list = try items(v)
            guard var best = list.first else { return .undefined("\(name) of an empty sequence") }
            for x in list.dropFirst() where name == "min" ? sortKey(x, best) : sortKey(best, x) { best = x }
            return best
        case "map":
            let list = try items(v)
            if let attr = kwarg(kwargs, "attribute") {
                let def = kwarg(kwargs, "default")
                return .array(try list.map { x in
                    let r = try attribute(x, attr.str)
                    return r.isUndefined ? (def ?? r) : r
                })
            }
            guard let f = args.first?.str else { throw JinjaRuntimeError("map needs a filter name or attribute=") }
            return .array(try list.map { try filter(f, $0, Array(args.dropFirst()), [], interp) })
        case "select", "reject":
            let list = try items(v)
            let keep = name == "select"
            return .array(try list.filter { x in
                let r = args.isEmpty ? x.truthy : try test(args[0].str, x, Array(args.dropFirst()), interp)
                return r == keep
            })
        case "selectattr", "rejectattr":
            let list = try items(v)
            guard let attr = args.first?.str else { throw JinjaRuntimeError("\(name) needs an attribute name") }
            let keep = name == "selectattr"
            return .array(try list.filter { x in
                let a = try attribute(x, attr)
                let r = args.count < 2 ? a.truthy : try test(args[1].str, a, Array(args.dropFirst(2)), interp)
                return r == keep
            })
        default:
            throw JinjaRuntimeError("unsupported filter '\(name)'")
        }
    }

    // MARK: tests

    static func test(_ name: String, _ v: JinjaValue, _ args: [JinjaValue], _ interp: JinjaInterpreter) throws -> Bool {
        switch name {
        case "defined": return !v.isUndefined
        case "undefined": return v.isUndefined
        case "none": return v.isNone
        case "boolean": if case .bool = v { return true } else { return false }
        case "true": if case .bool(true) = v { return true } else { return false }
        case "false": if case .bool(false) = v { return true } else { return false }
        case "integer": if case .int = v { return true } else { return false }
        case "float": if case .double = v { return true } else { return false }
        case "number":
            switch v {
            case .int, .double, .bool: return true
            default: return false
            }
        case "string": if case .string = v { return true } else { return false }
        case "mapping": if case .object = v { return true } else { return false }
        case "iterable", "sequence":
            switch v {
            case .string, .array, .object: return true
            case .undefined: return name == "iterable"
            default: return false
            }
        case "callable": if case .callable = v { return true } else { return false }
        case "equalto", "eq", "==", "sameas": return JinjaValue.equal(v, args.first ?? .none)
        case "ne", "!=": return !JinjaValue.equal(v, args.first ?? .none)
        case "lt", "<", "lessthan": return try compare("<", v, args.first ?? .none)
        case "le", "<=": return try compare("<=", v, args.first ?? .none)
        case "gt", ">", "greaterthan": return try compare(">", v, args.first ?? .none)
        case "ge", ">=": return try compare(">=", v, args.first ?? .none)
        case "in": return try compare("in", v, args.first ?? .none)
        case "odd", "even":
            guard case let .int(i) = v else { throw JinjaRuntimeError("\(name) test needs an integer") }
            return (i % 2 != 0) == (name == "odd")
        case "divisibleby":
            guard case let .int(i) = v, case let .int(d)? = args.first, d != 0 else {
                throw JinjaRuntimeError("divisibleby test needs integers")
            }
            return i % d == 0
        case "lower": return v.str.lowercased() == v.str
        case "upper": return v.str.uppercased() == v.str
        default:
            throw JinjaRuntimeError("unsupported test '\(name)'")
        }
    }
}
