/// Parses lexed template items into statement nodes (recursive descent, Jinja precedence).
struct JinjaParser {
    private let items: [JinjaItem]
    private var index = 0
    private var loopDepth = 0

    init(_ items: [JinjaItem]) { self.items = items }

    static func err(_ p: JinjaPos, _ message: String) -> TokenizerError {
        .template(line: p.line, column: p.column, message: message)
    }

    /// Parses the whole template.
    mutating func parse() throws -> [JinjaNode] {
        let (nodes, end) = try parseBlock(until: [])
        if let (name, p) = end { throw JinjaParser.err(p, "unexpected '{% \(name) %}'") }
        return nodes
    }

    /// Parses nodes until a statement whose keyword is in `until`; returns that statement's
    /// keyword with its token stream positioned after the keyword.
    private mutating func parseBlock(until: Set<String>) throws -> ([JinjaNode], (String, JinjaPos)?) {
        var nodes: [JinjaNode] = []
        while index < items.count {
            let item = items[index]
            index += 1
            switch item {
            case let .text(t):
                nodes.append(.text(t))
            case let .output(tokens, p, endPos):
                var ts = TokenStream(tokens, endPos)
                let e = try ts.parseExpression()
                try ts.expectEnd()
                nodes.append(.output(e, p))
            case let .statement(tokens, p, endPos):
                guard case let .name(keyword)? = tokens.first?.0 else { throw JinjaParser.err(p, "empty or invalid statement") }
                if until.contains(keyword) {
                    index -= 1
                    return (nodes, (keyword, p))
                }
                var ts = TokenStream(tokens, endPos)
                ts.advance()
                nodes.append(try parseStatement(keyword, &ts, p))
            }
        }
        return (nodes, nil)
    }

    /// The token stream of the closing statement that `parseBlock` stopped at.
    private mutating func currentStream() -> TokenStream {
        // parseBlock only stops (returning a keyword) at a statement item, so this always matches.
        guard index < items.count, case let .statement(tokens, _, endPos) = items[index] else {
            return TokenStream([], JinjaPos(line: 0, column: 0))
        }
        index += 1
        var ts = TokenStream(tokens, endPos)
        ts.advance()
        return ts
    }

    private mutating func parseStatement(_ keyword: String, _ ts: inout TokenStream, _ p: JinjaPos) throws -> JinjaNode {
        switch keyword {
        case "if":
            var branches: [(JinjaExpr, [JinjaNode])] = []
            var cond = try ts.parseExpression()
            try ts.expectEnd()
            var otherwise: [JinjaNode] = []
            while true {
                let (body, end) = try parseBlock(until: ["elif", "else", "endif"])
                branches.append((cond, body))
                guard let (kw, ep) = end else { throw JinjaParser.err(p, "missing '{% endif %}' for this 'if'") }
                var s = currentStream()
                if kw == "elif" {
                    cond = try s.parseExpression()
                    try s.expectEnd()
                    continue
                }
                try s.expectEnd()
                if kw == "else" {
                    let (body2, end2) = try parseBlock(until: ["endif"])
                    otherwise = body2
                    guard end2 != nil else { throw JinjaParser.err(ep, "missing '{% endif %}' after 'else'") }
                    var s2 = currentStream()
                    try s2.expectEnd()
                }
                break
            }
            return .ifChain(branches, otherwise: otherwise)
        case "for":
            var targets: [String] = [try ts.expectName()]
            while ts.skipOp(",") { targets.append(try ts.expectName()) }
            guard ts.skipName("in") else { throw ts.errorHere("expected 'in' in for loop") }
            let iterable = try ts.parseExpression(allowConditional: false)
            var filter: JinjaExpr? = nil
            if ts.skipName("if") { filter = try ts.parseExpression(allowConditional: false) }
            if ts.skipName("recursive") { throw JinjaParser.err(p, "unsupported construct: recursive for loops") }
            try ts.expectEnd()
            loopDepth += 1
            let (body, end) = try parseBlock(until: ["else", "endfor"])
            loopDepth -= 1
            guard let (kw, _) = end else { throw JinjaParser.err(p, "missing '{% endfor %}' for this 'for'") }
            var s = currentStream()
            try s.expectEnd()
            var otherwise: [JinjaNode] = []
            if kw == "else" {
                let (b2, e2) = try parseBlock(until: ["endfor"])
                guard e2 != nil else { throw JinjaParser.err(p, "missing '{% endfor %}' for this 'for'") }
                var s2 = currentStream()
                try s2.expectEnd()
                otherwise = b2
            }
            return .forLoop(targets: targets, iterable: iterable, filter: filter, body: body, otherwise: otherwise, p)
        case "set":
            let first = try ts.expectName()
            if ts.skipOp(".") {
                let attr = try ts.expectName()
                guard ts.skipOp("=") else { throw ts.errorHere("expected '=' in set") }
                let v = try ts.parseExpression()
                try ts.expectEnd()
                return .set(.attribute(first, attr), v, p)
            }
            var names = [first]
            while ts.skipOp(",") { names.append(try ts.expectName()) }
            if ts.atEnd {
                guard names.count == 1 else { throw JinjaParser.err(p, "block set takes one name") }
                let (body, end) = try parseBlock(until: ["endset"])
                guard end != nil else { throw JinjaParser.err(p, "missing '{% endset %}'") }
                var s = currentStream()
                try s.expectEnd()
                return .setBlock(first, body)
            }
            guard ts.skipOp("=") else { throw ts.errorHere("expected '=' in set") }
            var v = try ts.parseExpression()
            if ts.skipOp(",") {
                var elems = [v]
                repeat { elems.append(try ts.parseExpression()) } while ts.skipOp(",")
                v = .tuple(elems)
            }
            try ts.expectEnd()
            return .set(.names(names), v, p)
        case "macro":
            let name = try ts.expectName()
            var params: [(String, JinjaExpr?)] = []
            guard ts.skipOp("(") else { throw ts.errorHere("expected '(' after macro name") }
            if !ts.skipOp(")") {
                repeat {
                    let pname = try ts.expectName()
                    var def: JinjaExpr? = nil
                    if ts.skipOp("=") { def = try ts.parseExpression() }
                    params.append((pname, def))
                } while ts.skipOp(",")
                guard ts.skipOp(")") else { throw ts.errorHere("expected ')' after macro parameters") }
            }
            try ts.expectEnd()
            let (body, end) = try parseBlock(until: ["endmacro"])
            guard end != nil else { throw JinjaParser.err(p, "missing '{% endmacro %}'") }
            var s = currentStream()
            try s.expectEnd()
            return .macro(name: name, params: params, body: body)
        case "break":
            guard loopDepth > 0 else { throw JinjaParser.err(p, "'break' outside a for loop") }
            try ts.expectEnd()
            return .breakLoop(p)
        case "continue":
            guard loopDepth > 0 else { throw JinjaParser.err(p, "'continue' outside a for loop") }
            try ts.expectEnd()
            return .continueLoop(p)
        case "generation":
            try ts.expectEnd()
            let (body, end) = try parseBlock(until: ["endgeneration"])
            guard end != nil else { throw JinjaParser.err(p, "missing '{% endgeneration %}'") }
            var s = currentStream()
            try s.expectEnd()
            return .block(body)
        default:
            throw JinjaParser.err(p, "unsupported construct: '{% \(keyword) %}'")
        }
    }
}

/// A cursor over the tokens of one tag, with the expression grammar.
struct TokenStream {
    private let tokens: [(JinjaToken, JinjaPos)]
    private var i = 0
    /// Position of the tag's closing delimiter (reported for "end of tag" errors).
    private let endPos: JinjaPos

    init(_ tokens: [(JinjaToken, JinjaPos)], _ endPos: JinjaPos) {
        self.tokens = tokens
        self.endPos = endPos
    }

    var atEnd: Bool { i >= tokens.count }
    var peek: JinjaToken? { i < tokens.count ? tokens[i].0 : nil }
    var here: JinjaPos { i < tokens.count ? tokens[i].1 : endPos }

    mutating func advance() { i += 1 }

    func errorHere(_ message: String) -> TokenizerError {
        let found: String
        switch peek {
        case nil: found = "end of tag"
        case let .name(n)?: found = "'\(n)'"
        case let .op(o)?: found = "'\(o)'"
        case let .string(s)?: found = "string \(JinjaValue.pyStringRepr(s))"
        case let .int(v)?: found = "\(v)"
        case let .float(v)?: found = "\(v)"
        }
        return JinjaParser.err(here, "\(message) (found \(found))")
    }

    mutating func expectEnd() throws {
        if !atEnd { throw errorHere("unexpected token; expected end of tag") }
    }

    mutating func skipOp(_ o: String) -> Bool {
        if peek == .op(o) { i += 1; return true }
        return false
    }

    mutating func skipName(_ n: String) -> Bool {
        if peek == .name(n) { i += 1; return true }
        return false
    }

    mutating func expectName() throws -> String {
        if case let .name(n)? = peek { i += 1; return n }
        throw errorHere("expected a name")
    }

    mutating func parseExpression(allowConditional: Bool = true) throws -> JinjaExpr {
        var e = try parseOr()
        if allowConditional {
            while skipName("if") {
                let cond = try parseOr()
                var otherwise: JinjaExpr? = nil
                if skipName("else") { otherwise = try parseExpression() }
                e = .conditional(then: e, condition: cond, otherwise: otherwise)
            }
        }
        return e
    }

    private mutating func parseOr() throws -> JinjaExpr {
        var e = try parseAnd()
        while case .name("or")? = peek {
            let p = here
            i += 1
            e = .binary("or", e, try parseAnd(), p)
        }
        return e
    }

    private mutating func parseAnd() throws -> JinjaExpr {
        var e = try parseNot()
        while case .name("and")? = peek {
            let p = here
            i += 1
            e = .binary("and", e, try parseNot(), p)
        }
        return e
    }

    private mutating func parseNot() throws -> JinjaExpr {
        if case .name("not")? = peek {
            let p = here
            i += 1
            return .unary("not", try parseNot(), p)
        }
        return try parseCompare()
    }

    private mutating func parseCompare() throws -> JinjaExpr {
        let p = here
        let first = try parseMath1()
        var ops: [(String, JinjaExpr)] = []
        while true {
            if case let .op(o)? = peek, ["==", "!=", "<", ">", "<=", ">="].contains(o) {
                i += 1
                ops.append((o, try parseMath1()))
            } else if skipName("in") {
                ops.append(("in", try parseMath1()))
            } else if peek == .name("not"), i + 1 < tokens.count, tokens[i + 1].0 == .name("in") {
                i += 2
                ops.append(("not in", try parseMath1()))
            } else {
                break
            }
        }
        return ops.isEmpty ? first : .compare(first, ops, p)
    }

    private mutating func parseMath1() throws -> JinjaExpr {
        var e = try parseConcat()
        while case let .op(o)? = peek, o == "+" || o == "-" {
            let p = here
            i += 1
            e = .binary(o, e, try parseConcat(), p)
        }
        return e
    }

    private mutating func parseConcat() throws -> JinjaExpr {
        let p = here
        var parts = [try parseMath2()]
        while skipOp("~") { parts.append(try parseMath2()) }
        return parts.count == 1 ? parts[0] : .concat(parts, p)
    }

    private mutating func parseMath2() throws -> JinjaExpr {
        var e = try parsePow()
        while case let .op(o)? = peek, ["*", "/", "//", "%"].contains(o) {
            let p = here
            i += 1
            e = .binary(o, e, try parsePow(), p)
        }
        return e
    }

    private mutating func parsePow() throws -> JinjaExpr {
        var e = try parseUnary(withFilter: true)
        while case .op("**")? = peek {
            let p = here
            i += 1
            e = .binary("**", e, try parseUnary(withFilter: true), p)
        }
        return e
    }

    private mutating func parseUnary(withFilter: Bool) throws -> JinjaExpr {
        let p = here
        var e: JinjaExpr
        if skipOp("-") {
            e = .unary("-", try parseUnary(withFilter: false), p)
        } else if skipOp("+") {
            e = .unary("+", try parseUnary(withFilter: false), p)
        } else {
            e = try parsePostfix(try parsePrimary())
        }
        if withFilter { e = try parseFilterExpr(e) }
        return e
    }

    private mutating func parsePrimary() throws -> JinjaExpr {
        let p = here
        guard let t = peek else { throw errorHere("expected an expression") }
        i += 1
        switch t {
        case let .string(s):
            var str = s
            while case let .string(more)? = peek { str += more; i += 1 }  // adjacent literals concatenate
            return .literal(.string(str))
        case let .int(v): return .literal(.int(v))
        case let .float(v): return .literal(.double(v))
        case let .name(n):
            switch n {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default: return .name(n, p)
            }
        case .op("("):
            if skipOp(")") { return .tuple([]) }
            let e = try parseExpression()
            if skipOp(",") {
                var elems = [e]
                while !skipOp(")") {
                    elems.append(try parseExpression())
                    if !skipOp(",") {
                        guard skipOp(")") else { throw errorHere("expected ',' or ')'") }
                        break
                    }
                }
                return .tuple(elems)
            }
            guard skipOp(")") else { throw errorHere("expected ')'") }
            return e
        case .op("["):
            var elems: [JinjaExpr] = []
            while !skipOp("]") {
                elems.append(try parseExpression())
                if !skipOp(",") {
                    guard skipOp("]") else { throw errorHere("expected ',' or ']'") }
                    break
                }
            }
            return .list(elems)
        case .op("{"):
            var pairs: [(JinjaExpr, JinjaExpr)] = []
            while !skipOp("}") {
                let k = try parseExpression()
                guard skipOp(":") else { throw errorHere("expected ':' in dict literal") }
                pairs.append((k, try parseExpression()))
                if !skipOp(",") {
                    guard skipOp("}") else { throw errorHere("expected ',' or '}'") }
                    break
                }
            }
            return .dict(pairs)
        default:
            i -= 1
            throw errorHere("expected an expression")
        }
    }

    private mutating func parsePostfix(_ base: JinjaExpr) throws -> JinjaExpr {
        var e = base
        while true {
            let p = here
            if skipOp(".") {
                if case let .int(v)? = peek {
                    i += 1
                    e = .index(e, .literal(.int(v)), p)
                } else {
                    e = .attribute(e, try expectName(), p)
                }
            } else if skipOp("[") {
                var parts: [JinjaExpr?] = [nil]
                var isSlice = false
                while true {
                    if skipOp(":") {
                        isSlice = true
                        parts.append(nil)
                        continue
                    }
                    if skipOp("]") { break }
                    guard parts[parts.count - 1] == nil else { throw errorHere("expected ']'") }
                    parts[parts.count - 1] = try parseExpression()
                }
                if isSlice {
                    guard parts.count <= 3 else { throw JinjaParser.err(p, "invalid slice") }
                    while parts.count < 3 { parts.append(nil) }
                    e = .slice(e, parts[0], parts[1], parts[2], p)
                } else {
                    guard let idx = parts[0] else { throw JinjaParser.err(p, "empty subscript") }
                    e = .index(e, idx, p)
                }
            } else if peek == .op("(") {
                i += 1
                let (args, kwargs) = try parseCallArgs()
                e = .call(e, args, kwargs, p)
            } else {
                return e
            }
        }
    }

    /// Arguments after '(' up to and including ')'.
    private mutating func parseCallArgs() throws -> ([JinjaExpr], [(String, JinjaExpr)]) {
        var args: [JinjaExpr] = []
        var kwargs: [(String, JinjaExpr)] = []
        while !skipOp(")") {
            if case let .name(n)? = peek, i + 1 < tokens.count, tokens[i + 1].0 == .op("=") {
                i += 2
                kwargs.append((n, try parseExpression()))
            } else {
                if skipOp("*") { throw JinjaParser.err(here, "unsupported construct: *args in calls") }
                args.append(try parseExpression())
            }
            if !skipOp(",") {
                guard skipOp(")") else { throw errorHere("expected ',' or ')' in call") }
                break
            }
        }
        return (args, kwargs)
    }

    private mutating func parseFilterExpr(_ base: JinjaExpr) throws -> JinjaExpr {
        var e = base
        while true {
            let p = here
            if skipOp("|") {
                var name = try expectName()
                while skipOp(".") { name += "." + (try expectName()) }
                var args: [JinjaExpr] = [], kwargs: [(String, JinjaExpr)] = []
                if skipOp("(") { (args, kwargs) = try parseCallArgs() }
                e = .filter(e, name, args, kwargs, p)
            } else if skipName("is") {
                let negated = skipName("not")
                let name = try expectName()
                var args: [JinjaExpr] = []
                if skipOp("(") {
                    args = try parseCallArgs().0
                } else if let t = peek {
                    switch t {
                    case .string, .int, .float: args = [try parsePostfix(try parsePrimary())]
                    case let .name(n) where !["else", "or", "and", "if", "is", "not", "in"].contains(n):
                        args = [try parsePostfix(try parsePrimary())]
                    default: break
                    }
                }
                e = .test(e, name, args, negated: negated, p)
            } else if peek == .op("(") {
                i += 1
                let (args, kwargs) = try parseCallArgs()
                e = .call(e, args, kwargs, p)
            } else {
                return e
            }
        }
    }
}
