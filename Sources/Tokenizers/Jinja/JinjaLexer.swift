/// A position in the template source (1-based line and column).
struct JinjaPos: Sendable {
    var line: Int
    var column: Int
}

/// An expression token inside `{{ }}` or `{% %}`.
enum JinjaToken: Sendable, Equatable {
    case name(String)
    case string(String)
    case int(Int)
    case float(Double)
    case op(String)
}

/// A lexed template item: text, an output tag or a statement tag, with whitespace control applied.
enum JinjaItem: Sendable {
    case text(String)
    /// Tokens, position of the tag, position of its closing delimiter.
    case output([(JinjaToken, JinjaPos)], JinjaPos, JinjaPos)
    case statement([(JinjaToken, JinjaPos)], JinjaPos, JinjaPos)
}

/// Splits a template into text and tags, applying `-` trimming, `trim_blocks` and `lstrip_blocks`
/// as transformers configures Jinja (both true), and drops one trailing newline
/// (`keep_trailing_newline=False`).
struct JinjaLexer {
    private let src: [Unicode.Scalar]
    private var lineStarts: [Int] = [0]
    let trimBlocks: Bool
    let lstripBlocks: Bool

    init(_ source: String, trimBlocks: Bool = true, lstripBlocks: Bool = true) {
        var s = Array(source.unicodeScalars)
        if s.last == "\n" {
            s.removeLast()
            if s.last == "\r" { s.removeLast() }
        }
        src = s
        for (i, c) in s.enumerated() where c == "\n" { lineStarts.append(i + 1) }
        self.trimBlocks = trimBlocks
        self.lstripBlocks = lstripBlocks
    }

    func pos(_ offset: Int) -> JinjaPos {
        var lo = 0, hi = lineStarts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if lineStarts[mid] <= offset { lo = mid } else { hi = mid - 1 }
        }
        return JinjaPos(line: lo + 1, column: offset - lineStarts[lo] + 1)
    }

    func error(_ offset: Int, _ message: String) -> TokenizerError {
        let p = pos(offset)
        return .template(line: p.line, column: p.column, message: message)
    }

    private enum TagKind { case output, statement, comment }

    private struct RawTag {
        var kind: TagKind
        var tokens: [(JinjaToken, JinjaPos)]
        var trimLeft: Bool
        var plusLeft: Bool
        var trimRight: Bool
        var start: Int
        var end: Int = 0
    }

    private enum Raw {
        case text(start: Int, end: Int)
        case tag(RawTag)
    }

    /// Lexes the whole template.
    func lex() throws -> [JinjaItem] {
        var raws: [Raw] = []
        var i = 0
        var textStart = 0
        let n = src.count
        while i < n {
            guard src[i] == "{", i + 1 < n, src[i + 1] == "{" || src[i + 1] == "%" || src[i + 1] == "#" else {
                i += 1
                continue
            }
            if i > textStart { raws.append(.text(start: textStart, end: i)) }
            let kind: TagKind = src[i + 1] == "{" ? .output : src[i + 1] == "%" ? .statement : .comment
            var tag = RawTag(kind: kind, tokens: [], trimLeft: false, plusLeft: false, trimRight: false, start: i)
            var j = i + 2
            if j < n && src[j] == "-" { tag.trimLeft = true; j += 1 } else if j < n && src[j] == "+" { tag.plusLeft = true; j += 1 }
            if kind == .comment {
                var k = j
                while k + 1 < n && !(src[k] == "#" && src[k + 1] == "}") { k += 1 }
                guard k + 1 < n else { throw error(i, "unterminated comment '{#'") }
                tag.trimRight = k > j && src[k - 1] == "-"
                i = k + 2
            } else {
                let close: Unicode.Scalar = kind == .output ? "}" : "%"
                var depth = 0
                var closed = false
                while j < n {
                    let c = src[j]
                    if c == " " || c == "\t" || c == "\n" || c == "\r" { j += 1; continue }
                    if depth == 0 {
                        tag.end = j
                        if c == "-" && j + 2 < n && src[j + 1] == close && src[j + 2] == "}" {
                            tag.trimRight = true
                            j += 3
                            closed = true
                            break
                        }
                        if c == close && j + 1 < n && src[j + 1] == "}" {
                            j += 2
                            closed = true
                            break
                        }
                    }
                    let (tok, next) = try lexToken(j)
                    if case let .op(o) = tok {
                        if o == "(" || o == "[" || o == "{" { depth += 1 }
                        if o == ")" || o == "]" || o == "}" { depth = max(0, depth - 1) }
                    }
                    tag.tokens.append((tok, pos(j)))
                    j = next
                }
                guard closed else {
                    throw error(i, kind == .output ? "unterminated '{{' (missing '}}')" : "unterminated '{%' (missing '%}')")
                }
                i = j
                // {% raw %} ... {% endraw %}: the body is text, the two tags act like comments.
                if kind == .statement, tag.tokens.count == 1, tag.tokens[0].0 == .name("raw") {
                    tag.kind = .comment
                    raws.append(.tag(tag))
                    guard let (bodyEnd, endTag) = findEndRaw(from: i) else { throw error(tag.start, "missing {% endraw %}") }
                    if bodyEnd > i { raws.append(.text(start: i, end: bodyEnd)) }
                    raws.append(.tag(endTag))
                    i = skipTag(from: bodyEnd)
                    textStart = i
                    continue
                }
            }
            raws.append(.tag(tag))
            textStart = i
        }
        if textStart < n { raws.append(.text(start: textStart, end: n)) }
        return applyWhitespaceControl(raws)
    }

    private func findEndRaw(from start: Int) -> (Int, RawTag)? {
        var k = start
        while k + 1 < src.count {
            if src[k] == "{" && src[k + 1] == "%" {
                var j = k + 2
                var trimLeft = false
                if j < src.count && src[j] == "-" { trimLeft = true; j += 1 }
                while j < src.count && src[j] == " " { j += 1 }
                let word = "endraw".unicodeScalars
                if j + word.count <= src.count && Array(src[j..<(j + word.count)]) == Array(word) {
                    j += word.count
                    while j < src.count && src[j] == " " { j += 1 }
                    let trimRight = j < src.count && src[j] == "-"
                    return (k, RawTag(kind: .comment, tokens: [], trimLeft: trimLeft, plusLeft: false,
                                      trimRight: trimRight, start: k))
                }
            }
            k += 1
        }
        return nil
    }

    private func skipTag(from start: Int) -> Int {
        var k = start
        while k + 1 < src.count && !(src[k] == "%" && src[k + 1] == "}") { k += 1 }
        return min(k + 2, src.count)
    }

    private func applyWhitespaceControl(_ raws: [Raw]) -> [JinjaItem] {
        var items: [JinjaItem] = []
        for (idx, r) in raws.enumerated() {
            switch r {
            case let .tag(t):
                switch t.kind {
                case .comment: continue
                case .output: items.append(.output(t.tokens, pos(t.start), pos(t.end)))
                case .statement: items.append(.statement(t.tokens, pos(t.start), pos(t.end)))
                }
            case let .text(start, end):
                var a = start, b = end
                if idx > 0, case let .tag(prev) = raws[idx - 1] {
                    if prev.trimRight {
                        while a < b && isSpace(src[a]) { a += 1 }
                    } else if trimBlocks && prev.kind != .output {
                        if a < b && src[a] == "\n" { a += 1 } else if a + 1 < b && src[a] == "\r" && src[a + 1] == "\n" { a += 2 }
                    }
                }
                if idx + 1 < raws.count, case let .tag(next) = raws[idx + 1] {
                    if next.trimLeft {
                        while b > a && isSpace(src[b - 1]) { b -= 1 }
                    } else if lstripBlocks && next.kind != .output && !next.plusLeft {
                        var k = end
                        while k > start && (src[k - 1] == " " || src[k - 1] == "\t") { k -= 1 }
                        let atLineStart = k == start ? (k == 0 || src[k - 1] == "\n") : src[k - 1] == "\n"
                        if atLineStart && k < b { b = max(a, k) }
                    }
                }
                if b > a { items.append(.text(String(String.UnicodeScalarView(src[a..<b])))) }
            }
        }
        return items
    }

    private func isSpace(_ c: Unicode.Scalar) -> Bool { c.properties.isWhitespace }

    private static let ops2: Set<String> = ["==", "!=", "<=", ">=", "//", "**"]
    private static let ops1: Set<Unicode.Scalar> = ["+", "-", "*", "/", "%", "~", "<", ">", "=", "(", ")", "[", "]",
                                                     "{", "}", ",", ".", ":", "|"]

    /// Lexes one token at `i`; returns it and the offset after it.
    private func lexToken(_ i: Int) throws -> (JinjaToken, Int) {
        let c = src[i]
        let n = src.count
        if c == "\"" || c == "'" {
            var out = String.UnicodeScalarView()
            var j = i + 1
            while j < n && src[j] != c {
                if src[j] == "\\" && j + 1 < n {
                    let e = src[j + 1]
                    switch e {
                    case "n": out.append("\n")
                    case "t": out.append("\t")
                    case "r": out.append("\r")
                    case "\\": out.append("\\")
                    case "'": out.append("'")
                    case "\"": out.append("\"")
                    case "0": out.append("\0")
                    case "u" where j + 5 < n:
                        let hex = String(String.UnicodeScalarView(src[(j + 2)...(j + 5)]))
                        if let v = UInt32(hex, radix: 16), let s = Unicode.Scalar(v) { out.append(s); j += 4 } else { out.append("\\"); out.append(e) }
                    default:
                        out.append("\\")
                        out.append(e)
                    }
                    j += 2
                } else {
                    out.append(src[j])
                    j += 1
                }
            }
            guard j < n else { throw error(i, "unterminated string literal") }
            return (.string(String(out)), j + 1)
        }
        if c.properties.numericType != nil && c.value < 0x80 {
            var j = i
            while j < n && (src[j].value >= 0x30 && src[j].value <= 0x39 || src[j] == "_") { j += 1 }
            var isFloat = false
            if j + 1 < n && src[j] == "." && src[j + 1].value >= 0x30 && src[j + 1].value <= 0x39 {
                isFloat = true
                j += 1
                while j < n && src[j].value >= 0x30 && src[j].value <= 0x39 { j += 1 }
            }
            if j < n && (src[j] == "e" || src[j] == "E") {
                var k = j + 1
                if k < n && (src[k] == "+" || src[k] == "-") { k += 1 }
                if k < n && src[k].value >= 0x30 && src[k].value <= 0x39 {
                    isFloat = true
                    j = k
                    while j < n && src[j].value >= 0x30 && src[j].value <= 0x39 { j += 1 }
                }
            }
            let text = String(String.UnicodeScalarView(src[i..<j])).replacingOccurrences(of: "_", with: "")
            if isFloat, let d = Double(text) { return (.float(d), j) }
            if let v = Int(text) { return (.int(v), j) }
            throw error(i, "invalid number literal '\(text)'")
        }
        if c == "_" || c.properties.isAlphabetic {
            var j = i
            while j < n && (src[j] == "_" || src[j].properties.isAlphabetic || (src[j].value >= 0x30 && src[j].value <= 0x39)) { j += 1 }
            return (.name(String(String.UnicodeScalarView(src[i..<j]))), j)
        }
        if i + 1 < n {
            let two = String(String.UnicodeScalarView([c, src[i + 1]]))
            if JinjaLexer.ops2.contains(two) { return (.op(two), i + 2) }
        }
        if JinjaLexer.ops1.contains(c) { return (.op(String(c)), i + 1) }
        throw error(i, "unexpected character '\(c)' in tag")
    }
}
