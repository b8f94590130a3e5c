import Foundation

/// Globals, operators, attribute access and Python string/dict methods for the interpreter.
enum JinjaBuiltins {
    static func typeName(_ v: JinjaValue) -> String {
        switch v {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "str"
        case .array: return "list"
        case .object: return "dict"
        case .namespace: return "Namespace"
        case .callable: return "function"
        }
    }

    static func fn(_ name: String, _ body: @escaping @Sendable ([JinjaValue], [(String, JinjaValue)]) throws -> JinjaValue) -> JinjaValue {
        .callable(JinjaCallable(name: name, call: body))
    }

    /// Global functions available to every template.
    static func globals(now: Date) -> [String: JinjaValue] {
        var g: [String: JinjaValue] = [:]
        g["raise_exception"] = fn("raise_exception") { args, _ in
            throw TokenizerError.templateRaised(message: args.first?.str ?? "")
        }
        g["strftime_now"] = fn("strftime_now") { args, _ in
            .string(strftime(args.first?.str ?? "", now))
        }
        g["range"] = fn("range") { args, _ in
            let ints = try args.map { v -> Int in
                guard case let .int(i) = v else { throw JinjaRuntimeError("range() needs integers, got \(typeName(v))") }
                return i
            }
            var start = 0, stop = 0, step = 1
            switch ints.count {
            case 1: stop = ints[0]
            case 2: (start, stop) = (ints[0], ints[1])
            case 3: (start, stop, step) = (ints[0], ints[1], ints[2])
            default: throw JinjaRuntimeError("range() takes 1 to 3 arguments")
            }
            guard step != 0 else { throw JinjaRuntimeError("range() step must not be zero") }
            guard (stop - start) / step < 1_000_000 else { throw JinjaRuntimeError("range() too large") }
            return .array(Swift.stride(from: start, to: stop, by: step).map { .int($0) })
        }
        g["namespace"] = fn("namespace") { args, kwargs in
            var values: [String: JinjaValue] = [:]
            if case let .object(o)? = args.first { for k in o.keys { values[k] = o[k] } }
            for (k, v) in kwargs { values[k] = v }
            return .namespace(JinjaNamespace(values))
        }
        g["dict"] = fn("dict") { _, kwargs in
            var o = JinjaObject()
            for (k, v) in kwargs { o[k] = v }
            return .object(o)
        }
        return g
    }

    /// C-style `strftime` for the directives used by chat templates.
    static func strftime(_ format: String, _ date: Date) -> String {
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = TimeZone.current
        let c = cal.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: date)
        let months = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
                      "October", "November", "December"]
        let days = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
        var out = ""
        var it = format.makeIterator()
        while let ch = it.next() {
            guard ch == "%" else { out.append(ch); continue }
            guard let d = it.next() else { out.append("%"); break }
            let month = (c.month ?? 1) - 1, wd = (c.weekday ?? 1) - 1
            switch d {
            case "d": out += String(format: "%02d", c.day ?? 0)
            case "e": out += String(format: "%2d", c.day ?? 0)
            case "m": out += String(format: "%02d", c.month ?? 0)
            case "Y": out += String(c.year ?? 0)
            case "y": out += String(format: "%02d", (c.year ?? 0) % 100)
            case "b", "h": out += String(months[month].prefix(3))
            case "B": out += months[month]
            case "a": out += String(days[wd].prefix(3))
            case "A": out += days[wd]
            case "H": out += String(format: "%02d", c.hour ?? 0)
            case "I": out += String(format: "%02d", ((c.hour ?? 0) + 11) % 12 + 1)
            case "p": out += (c.hour ?? 0) < 12 ? "AM" : "PM"
            case "M": out += String(format: "%02d", c.minute ?? 0)
            case "S": out += String(format: "%02d", c.second ?? 0)
            case "j": out += String(format: "%03d", cal.ordinality(of: .day, in: .year, for: date) ?? 0)
            case "%": out += "%"
            default: out += "%" + String(d)
            }
        }
        return out
    }

    // MARK: attribute and subscript

    static func attribute(_ v: JinjaValue, _ name: String) throws -> JinjaValue {
        switch v {
        case let .object(o):
            // Jinja's getattr tries the Python attribute first (dict methods), then the key.
            if let m = dictMethod(o, name) { return m }
            if let x = o[name] { return x }
            return .undefined("'dict object' has no attribute '\(name)'")
        case let .namespace(ns):
            return ns.values[name] ?? .undefined("namespace has no attribute '\(name)'")
        case let .string(s):
            if let m = stringMethod(s, name) { return m }
            return .undefined("'str object' has no attribute '\(name)'")
        case let .array(a):
            if let m = listMethod(a, name) { return m }
            return .undefined("'list object' has no attribute '\(name)'")
        default:
            return .undefined("'\(typeName(v)) object' has no attribute '\(name)'")
        }
    }

    static func subscriptValue(_ v: JinjaValue, _ i: JinjaValue) throws -> JinjaValue {
        switch (v, i) {
        case let (.array(a), .int(k)):
            let idx = k < 0 ? a.count + k : k
            guard idx >= 0 && idx < a.count else { return .undefined("list index \(k) out of range") }
            return a[idx]
        case let (.string(s), .int(k)):
            let u = Array(s.unicodeScalars)
            let idx = k < 0 ? u.count + k : k
            guard idx >= 0 && idx < u.count else { return .undefined("string index \(k) out of range") }
            return .string(String(u[idx]))
        case let (.object(o), .string(key)):
            // Jinja's getitem tries the key first, then the attribute.
            if let x = o[key] { return x }
            return try attribute(v, key)
        case let (.object(o), key):
            return o[key.str] ?? .undefined("dict has no key \(key.repr)")
        case let (.namespace(ns), .string(key)):
            return ns.values[key] ?? .undefined("namespace has no attribute '\(key)'")
        default:
            return .undefined("\(typeName(v)) object has no element \(i.repr)")
        }
    }

    static func slice(_ v: JinjaValue, _ a: JinjaValue?, _ b: JinjaValue?, _ c: JinjaValue?) throws -> JinjaValue {
        func intOrNil(_ x: JinjaValue?) throws -> Int? {
            guard let x, !x.isNone else { return nil }
            guard case let .int(i) = x else { throw JinjaRuntimeError("slice indices must be integers") }
            return i
        }
        let step = try intOrNil(c) ?? 1
        guard step != 0 else { throw JinjaRuntimeError("slice step cannot be zero") }
        func indices(_ n: Int) throws -> [Int] {
            func clamp(_ x: Int?, _ def: Int) -> Int {
                guard var x else { return def }
                if x < 0 { x += n }
                if step > 0 { return min(max(x, 0), n) }
                return min(max(x, -1), n - 1)
            }
            let start = clamp(try intOrNil(a), step > 0 ? 0 : n - 1)
            let stop = clamp(try intOrNil(b), step > 0 ? n : -1)
            var out: [Int] = []
            var k = start
            while step > 0 ? k < stop : k > stop { out.append(k); k += step }
            return out
        }
        switch v {
        case let .array(arr): return .array(try indices(arr.count).map { arr[$0] })
        case let .string(s):
            let u = Array(s.unicodeScalars)
            return .string(String(String.UnicodeScalarView(try indices(u.count).map { u[$0] })))
        default: throw JinjaRuntimeError("\(typeName(v)) object is not subscriptable")
        }
    }

    // MARK: operators

    static func arithmetic(_ op: String, _ a: JinjaValue, _ b: JinjaValue) throws -> JinjaValue {
        if case let .undefined(why) = a { throw JinjaRuntimeError(why) }
        if case let .undefined(why) = b { throw JinjaRuntimeError(why) }
        switch (op, a, b) {
        case let ("+", .string(x), .string(y)): return .string(x + y)
        case let ("+", .array(x), .array(y)): return .array(x + y)
        case let ("*", .string(x), .int(n)), let ("*", .int(n), .string(x)):
            return .string(String(repeating: x, count: max(0, n)))
        case let ("*", .array(x), .int(n)):
            return .array(Array(repeating: x, count: max(0, n)).flatMap { $0 })
        case let ("%", .string(x), y):
            return .string(try percentFormat(x, y))
        default: break
        }
        let intPair: (Int, Int)? = {
            switch (a, b) {
            case let (.int(x), .int(y)): return (x, y)
            case let (.bool(x), .int(y)): return (x ? 1 : 0, y)
            case let (.int(x), .bool(y)): return (x, y ? 1 : 0)
            default: return nil
            }
        }()
        if let (x, y) = intPair {
            switch op {
            case "+": return .int(x &+ y)
            case "-": return .int(x &- y)
            case "*": return .int(x &* y)
            case "/":
                guard y != 0 else { throw JinjaRuntimeError("division by zero") }
                return .double(Double(x) / Double(y))
            case "//":
                guard y != 0 else { throw JinjaRuntimeError("integer division by zero") }
                let q = x / y
                return .int((x % y != 0 && ((x < 0) != (y < 0))) ? q - 1 : q)
            case "%":
                guard y != 0 else { throw JinjaRuntimeError("modulo by zero") }
                let r = x % y
                return .int(r != 0 && ((r < 0) != (y < 0)) ? r + y : r)
            case "**":
                if y >= 0 {
                    var r = 1
                    for _ in 0..<y { r = r &* x }
                    return .int(r)
                }
                return .double(pow(Double(x), Double(y)))
            default: break
            }
        }
        if let x = a.number, let y = b.number {
            switch op {
            case "+": return .double(x + y)
            case "-": return .double(x - y)
            case "*": return .double(x * y)
            case "/":
                guard y != 0 else { throw JinjaRuntimeError("division by zero") }
                return .double(x / y)
            case "//":
                guard y != 0 else { throw JinjaRuntimeError("division by zero") }
                return .double((x / y).rounded(.down))
            case "%":
                guard y != 0 else { throw JinjaRuntimeError("modulo by zero") }
                let r = x.truncatingRemainder(dividingBy: y)
                return .double(r != 0 && ((r < 0) != (y < 0)) ? r + y : r)
            case "**": return .double(pow(x, y))
            default: break
            }
        }
        throw JinjaRuntimeError("unsupported operand types for \(op): '\(typeName(a))' and '\(typeName(b))'")
    }

    /// Python `%` string formatting with %s / %d / %r.
    static func percentFormat(_ format: String, _ args: JinjaValue) throws -> String {
        var values: [JinjaValue]
        if case let .array(a) = args { values = a } else { values = [args] }
        var out = ""
        var it = format.makeIterator()
        while let ch = it.next() {
            guard ch == "%" else { out.append(ch); continue }
            guard let d = it.next() else { break }
            if d == "%" { out += "%"; continue }
            guard !values.isEmpty else { throw JinjaRuntimeError("not enough arguments for format string") }
            let v = values.removeFirst()
            switch d {
            case "s": out += v.str
            case "r": out += v.repr
            case "d", "i": out += v.number.map { String(Int($0)) } ?? v.str
            default: throw JinjaRuntimeError("unsupported format directive %\(d)")
            }
        }
        return out
    }

    static func compare(_ op: String, _ a: JinjaValue, _ b: JinjaValue) throws -> Bool {
        switch op {
        case "==": return JinjaValue.equal(a, b)
        case "!=": return !JinjaValue.equal(a, b)
        case "in", "not in":
            let r: Bool
            switch b {
            case let .string(s):
                guard case let .string(sub) = a else { throw JinjaRuntimeError("'in <string>' requires string as left operand, not \(typeName(a))") }
                r = sub.isEmpty || s.contains(sub)
            case let .array(arr): r = arr.contains { JinjaValue.equal($0, a) }
            case let .object(o):
                if case let .string(key) = a { r = o[key] != nil } else { r = false }
            case let .namespace(ns): r = ns.values[a.str] != nil
            case .undefined: r = false
            default: throw JinjaRuntimeError("argument of type '\(typeName(b))' is not iterable")
            }
            return op == "in" ? r : !r
        default:
            let c: Int
            switch (a, b) {
            case let (.string(x), .string(y)):
                c = x.unicodeScalars.lexicographicallyPrecedes(y.unicodeScalars) ? -1 : (x.unicodeScalars.elementsEqual(y.unicodeScalars) ? 0 : 1)
            default:
                guard let x = a.number, let y = b.number else {
                    throw JinjaRuntimeError("'\(op)' not supported between '\(typeName(a))' and '\(typeName(b))'")
                }
                c = x < y ? -1 : (x == y ? 0 : 1)
            }
            switch op {
            case "<": return c < 0
            case ">": return c > 0
            case "<=": return c <= 0
            default: return c >= 0
            }
        }
    }
}
