import Foundation

/// A parsed Jinja template (the subset used by Hugging Face chat templates), rendered with
/// transformers' environment settings: `trim_blocks`, `lstrip_blocks`, loop controls,
/// `raise_exception`, `strftime_now`, and `tojson` without HTML escaping.
public struct JinjaTemplate: Sendable {
    let nodes: [JinjaNode]

    /// Parses `source`; throws `TokenizerError.template` with line:column on syntax errors.
    public init(_ source: String) throws {
        let items = try JinjaLexer(source).lex()
        var parser = JinjaParser(items)
        nodes = try parser.parse()
    }

    /// Renders with the given top-level variables.
    public func render(_ context: [String: JinjaValue], now: Date = Date()) throws -> String {
        let interp = JinjaInterpreter(globals: context, now: now)
        try interp.run(nodes)
        return interp.output
    }
}

/// Control flow out of a statement list.
enum JinjaFlow {
    case normal, breakLoop, continueLoop
}

/// Tree-walking evaluator. One instance per render call.
final class JinjaInterpreter: @unchecked Sendable {
    // @unchecked Sendable: an interpreter is used by exactly one render call on one thread;
    // macros capture it in callables that never outlive that call.
    var output = ""
    private var scopes: [[String: JinjaValue]]
    let now: Date

    init(globals: [String: JinjaValue], now: Date) {
        self.now = now
        scopes = [JinjaBuiltins.globals(now: now), globals]
    }

    func lookup(_ name: String) -> JinjaValue {
        for s in scopes.reversed() { if let v = s[name] { return v } }
        return .undefined("'\(name)' is undefined")
    }

    func assign(_ name: String, _ value: JinjaValue) {
        scopes[scopes.count - 1][name] = value
    }

    static func err(_ p: JinjaPos, _ message: String) -> TokenizerError {
        .template(line: p.line, column: p.column, message: message)
    }

    /// Runs statements at the top level.
    func run(_ nodes: [JinjaNode]) throws {
        _ = try exec(nodes)  // the parser rejects break/continue outside loops
    }

    func exec(_ nodes: [JinjaNode]) throws -> JinjaFlow {
        for node in nodes {
            let f = try exec(node)
            if f != .normal { return f }
        }
        return .normal
    }

    private func exec(_ node: JinjaNode) throws -> JinjaFlow {
        switch node {
        case let .text(t):
            output += t
        case let .output(e, _):
            output += try eval(e).str
        case let .ifChain(branches, otherwise):
            for (cond, body) in branches where try eval(cond).truthy {
                return try exec(body)
            }
            return try exec(otherwise)
        case let .forLoop(targets, iterable, filter, body, otherwise, p):
            return try execFor(targets, iterable, filter, body, otherwise, p)
        case let .set(target, e, p):
            let v = try eval(e)
            switch target {
            case let .names(names):
                if names.count == 1 {
                    assign(names[0], v)
                } else {
                    let items = try iterate(v, p)
                    guard items.count == names.count else {
                        throw JinjaInterpreter.err(p, "cannot unpack \(items.count) values into \(names.count) names")
                    }
                    for (n, x) in zip(names, items) { assign(n, x) }
                }
            case let .attribute(obj, attr):
                guard case let .namespace(ns) = lookup(obj) else {
                    throw JinjaInterpreter.err(p, "cannot assign attribute '\(attr)' on '\(obj)': not a namespace")
                }
                ns.values[attr] = v
            }
        case let .setBlock(name, body):
            let saved = output
            output = ""
            _ = try exec(body)
            let captured = output
            output = saved
            assign(name, .string(captured))
        case let .macro(name, params, body):
            assign(name, makeMacro(name, params, body))
        case .breakLoop:
            return .breakLoop
        case .continueLoop:
            return .continueLoop
        case let .block(body):
            return try exec(body)
        }
        return .normal
    }

    private func execFor(_ targets: [String], _ iterable: JinjaExpr, _ filter: JinjaExpr?, _ body: [JinjaNode],
                         _ otherwise: [JinjaNode], _ p: JinjaPos) throws -> JinjaFlow {
        var items = try iterate(try eval(iterable), p)
        scopes.append([:])
        defer { scopes.removeLast() }
        func bind(_ item: JinjaValue) throws {
            if targets.count == 1 {
                assign(targets[0], item)
            } else {
                let parts = try iterate(item, p)
                guard parts.count == targets.count else {
                    throw JinjaInterpreter.err(p, "cannot unpack \(parts.count) values into \(targets.count) loop variables")
                }
                for (n, x) in zip(targets, parts) { assign(n, x) }
            }
        }
        if let filter {
            var kept: [JinjaValue] = []
            for item in items {
                try bind(item)
                if try eval(filter).truthy { kept.append(item) }
            }
            items = kept
        }
        if items.isEmpty {
            return try exec(otherwise)
        }
        let n = items.count
        for (k, item) in items.enumerated() {
            try bind(item)
            var loop = JinjaObject()
            loop["index"] = .int(k + 1)
            loop["index0"] = .int(k)
            loop["revindex"] = .int(n - k)
            loop["revindex0"] = .int(n - k - 1)
            loop["first"] = .bool(k == 0)
            loop["last"] = .bool(k == n - 1)
            loop["length"] = .int(n)
            loop["depth"] = .int(1)
            loop["depth0"] = .int(0)
            loop["previtem"] = k > 0 ? items[k - 1] : .undefined("'loop.previtem' is undefined")
            loop["nextitem"] = k + 1 < n ? items[k + 1] : .undefined("'loop.nextitem' is undefined")
            loop["cycle"] = .callable(JinjaCallable(name: "loop.cycle") { args, _ in
                args.isEmpty ? .none : args[k % args.count]
            })
            assign("loop", .object(loop))
            let f = try exec(body)
            if f == .breakLoop { break }
        }
        return .normal
    }

    private func makeMacro(_ name: String, _ params: [(String, JinjaExpr?)], _ body: [JinjaNode]) -> JinjaValue {
        .callable(JinjaCallable(name: name) { [unowned self] args, kwargs in
            guard args.count <= params.count else {
                throw JinjaRuntimeError("macro '\(name)' takes \(params.count) arguments, got \(args.count)")
            }
            var frame: [String: JinjaValue] = [:]
            for (k, (pname, def)) in params.enumerated() {
                if k < args.count {
                    frame[pname] = args[k]
                } else if let kw = kwargs.first(where: { $0.0 == pname }) {
                    frame[pname] = kw.1
                } else if let def {
                    frame[pname] = try self.eval(def)
                } else {
                    frame[pname] = .undefined("macro parameter '\(pname)' is undefined")
                }
            }
            let savedScopes = self.scopes
            let savedOutput = self.output
            self.scopes = [self.scopes[0], self.scopes[1], frame]
            self.output = ""
            defer {
                self.scopes = savedScopes
            }
            _ = try self.exec(body)
            let result = self.output
            self.output = savedOutput
            return .string(result)
        })
    }

    /// Items of an iterable value (lists, dict keys, string characters; undefined is empty).
    func iterate(_ v: JinjaValue, _ p: JinjaPos) throws -> [JinjaValue] {
        switch v {
        case let .array(a): return a
        case let .object(o): return o.keys.map { .string($0) }
        case let .string(s): return s.unicodeScalars.map { .string(String($0)) }
        case .undefined: return []
        case let .namespace(ns): return ns.values.keys.sorted().map { .string($0) }
        default: throw JinjaInterpreter.err(p, "\(JinjaBuiltins.typeName(v)) object is not iterable")
        }
    }

    // MARK: expressions

    func eval(_ e: JinjaExpr) throws -> JinjaValue {
        switch e {
        case let .literal(v): return v
        case let .name(n, _): return lookup(n)
        case let .list(items): return .array(try items.map { try eval($0) })
        case let .tuple(items): return .array(try items.map { try eval($0) })
        case let .dict(pairs):
            var o = JinjaObject()
            for (k, v) in pairs { o[try eval(k).str] = try eval(v) }
            return .object(o)
        case let .attribute(base, name, p):
            let b = try eval(base)
            if case let .undefined(why) = b { throw JinjaInterpreter.err(p, why) }
            return try wrap(p) { try JinjaBuiltins.attribute(b, name) }
        case let .index(base, idx, p):
            let b = try eval(base)
            if case let .undefined(why) = b { throw JinjaInterpreter.err(p, why) }
            let i = try eval(idx)
            return try wrap(p) { try JinjaBuiltins.subscriptValue(b, i) }
        case let .slice(base, a, b, c, p):
            let v = try eval(base)
            if case let .undefined(why) = v { throw JinjaInterpreter.err(p, why) }
            return try wrap(p) {
                try JinjaBuiltins.slice(v, try a.map { try eval($0) }, try b.map { try eval($0) }, try c.map { try eval($0) })
            }
        case let .call(fn, args, kwargs, p):
            let f = try eval(fn)
            let a = try args.map { try eval($0) }
            let kw = try kwargs.map { ($0.0, try eval($0.1)) }
            guard case let .callable(c) = f else {
                if case let .undefined(why) = f { throw JinjaInterpreter.err(p, "\(why); cannot call it") }
                throw JinjaInterpreter.err(p, "\(JinjaBuiltins.typeName(f)) object is not callable")
            }
            return try wrap(p) { try c.call(a, kw) }
        case let .filter(base, name, args, kwargs, p):
            let v = try eval(base)
            let a = try args.map { try eval($0) }
            let kw = try kwargs.map { ($0.0, try eval($0.1)) }
            return try wrap(p) { try JinjaBuiltins.filter(name, v, a, kw, self) }
        case let .test(base, name, args, negated, p):
            let v = try eval(base)
            let a = try args.map { try eval($0) }
            let r = try wrap(p) { try JinjaBuiltins.test(name, v, a, self) }
            return .bool(r != negated)
        case let .unary(op, x, p):
            let v = try eval(x)
            switch op {
            case "not": return .bool(!v.truthy)
            case "-":
                switch v {
                case let .int(i): return .int(-i)
                case let .double(d): return .double(-d)
                case let .bool(b): return .int(b ? -1 : 0)
                default: throw JinjaInterpreter.err(p, "bad operand type for unary -: \(JinjaBuiltins.typeName(v))")
                }
            default: return v
            }
        case let .binary(op, l, r, p):
            if op == "and" {
                let a = try eval(l)
                return a.truthy ? try eval(r) : a
            }
            if op == "or" {
                let a = try eval(l)
                return a.truthy ? a : try eval(r)
            }
            let a = try eval(l), b = try eval(r)
            return try wrap(p) { try JinjaBuiltins.arithmetic(op, a, b) }
        case let .compare(first, ops, p):
            var left = try eval(first)
            for (op, rhs) in ops {
                let right = try eval(rhs)
                let ok = try wrap(p) { try JinjaBuiltins.compare(op, left, right) }
                if !ok { return .bool(false) }
                left = right
            }
            return .bool(true)
        case let .concat(parts, _):
            return .string(try parts.map { try eval($0).str }.joined())
        case let .conditional(then, cond, otherwise):
            if try eval(cond).truthy { return try eval(then) }
            if let otherwise { return try eval(otherwise) }
            return .undefined("conditional expression without else")
        }
    }

    /// Adds the template position to runtime errors.
    private func wrap<T>(_ p: JinjaPos, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let e as JinjaRuntimeError {
            throw JinjaInterpreter.err(p, e.message)
        }
    }
}
