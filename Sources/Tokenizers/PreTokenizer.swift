import Foundation

/// A piece of text during pre-tokenization, as Unicode scalars.
struct Piece {
    var scalars: [Unicode.Scalar]
    /// Whether the piece begins at offset 0 of the original input (Metaspace `prepend_scheme: first`).
    var atOrigin: Bool
}

/// How `Split` treats the matched delimiters (HF `SplitDelimiterBehavior`).
enum SplitBehavior: String, Sendable {
    case removed = "Removed", isolated = "Isolated", mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext", contiguous = "Contiguous"
}

/// Pre-tokenizers of HF `tokenizer.json` (`pre_tokenizer`).
indirect enum PreTokenizer: Sendable {
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    case split(scanner: RegexScanner, literal: [Unicode.Scalar]?, behavior: SplitBehavior, invert: Bool)
    case digits(individual: Bool)
    case metaspace(replacement: Unicode.Scalar, prependScheme: String, split: Bool)
    case whitespaceSplit
    case sequence([PreTokenizer])

    /// Parses a pre-tokenizer JSON object.
    static func parse(_ json: [String: Any], file: String) throws -> PreTokenizer {
        let type = json["type"] as? String ?? ""
        switch type {
        case "ByteLevel":
            return .byteLevel(addPrefixSpace: json["add_prefix_space"] as? Bool ?? false,
                              useRegex: json["use_regex"] as? Bool ?? true)
        case "Split":
            let pattern = json["pattern"] as? [String: Any] ?? [:]
            let behaviorName = json["behavior"] as? String ?? "Isolated"
            guard let behavior = SplitBehavior(rawValue: behaviorName) else {
                throw TokenizerError.unsupported(file: file, key: "pre_tokenizer.behavior", value: behaviorName)
            }
            let invert = json["invert"] as? Bool ?? false
            if let r = pattern["Regex"] as? String {
                return .split(scanner: try RegexScanner.forPattern(r), literal: nil, behavior: behavior, invert: invert)
            }
            if let s = pattern["String"] as? String {
                return .split(scanner: .gpt2, literal: Array(s.unicodeScalars), behavior: behavior, invert: invert)
            }
            throw TokenizerError.invalidKey(file: file, key: "pre_tokenizer.pattern", reason: "expected String or Regex")
        case "Digits":
            return .digits(individual: json["individual_digits"] as? Bool ?? false)
        case "Metaspace":
            let rep = (json["replacement"] as? String ?? "\u{2581}").unicodeScalars.first ?? "\u{2581}"
            var scheme = json["prepend_scheme"] as? String ?? "always"
            if json["prepend_scheme"] == nil, let add = json["add_prefix_space"] as? Bool, !add { scheme = "never" }
            return .metaspace(replacement: rep, prependScheme: scheme, split: json["split"] as? Bool ?? true)
        case "WhitespaceSplit":
            return .whitespaceSplit
        case "Sequence":
            let list = json["pretokenizers"] as? [[String: Any]] ?? []
            return .sequence(try list.map { try parse($0, file: file) })
        default:
            throw TokenizerError.unsupported(file: file, key: "pre_tokenizer", value: type)
        }
    }

    /// Applies the pre-tokenizer to every piece.
    func apply(_ pieces: [Piece]) -> [Piece] {
        switch self {
        case let .sequence(list):
            return list.reduce(pieces) { $1.apply($0) }
        case let .byteLevel(addPrefixSpace, useRegex):
            var out: [Piece] = []
            for var p in pieces {
                if addPrefixSpace && p.scalars.first != " " { p.scalars.insert(" ", at: 0) }
                let parts = useRegex
                    ? PreTokenizer.splitRanges(p, RegexScanner.gpt2.matches(p.scalars), .isolated)
                    : [p]
                for part in parts {
                    out.append(Piece(scalars: ByteLevel.encode(part.scalars), atOrigin: part.atOrigin))
                }
            }
            return out
        case let .split(scanner, literal, behavior, invert):
            var out: [Piece] = []
            for p in pieces {
                let ranges: [Range<Int>]
                if let lit = literal {
                    ranges = PreTokenizer.literalMatches(p.scalars, lit)
                } else {
                    ranges = scanner.matches(p.scalars)
                }
                out += PreTokenizer.splitRanges(p, ranges, behavior, invert: invert)
            }
            return out
        case let .digits(individual):
            var out: [Piece] = []
            for p in pieces {
                var ranges: [Range<Int>] = []
                var i = 0
                let s = p.scalars
                while i < s.count {
                    if RegexScanner.isNumber(s[i]) {
                        var j = i + 1
                        if !individual { while j < s.count && RegexScanner.isNumber(s[j]) { j += 1 } }
                        ranges.append(i..<j)
                        i = j
                    } else {
                        i += 1
                    }
                }
                out += PreTokenizer.splitRanges(p, ranges, individual ? .isolated : .contiguous)
            }
            return out
        case let .metaspace(rep, scheme, split):
            var out: [Piece] = []
            for p in pieces {
                var s = p.scalars.map { $0 == " " ? rep : $0 }
                let startsWithRep = s.first == rep
                if (scheme == "always" && !startsWithRep) || (scheme == "first" && !startsWithRep && p.atOrigin) {
                    s.insert(rep, at: 0)
                }
                let q = Piece(scalars: s, atOrigin: p.atOrigin)
                if split {
                    var ranges: [Range<Int>] = []
                    for (k, c) in s.enumerated() where c == rep { ranges.append(k..<(k + 1)) }
                    out += PreTokenizer.splitRanges(q, ranges, .mergedWithNext)
                } else {
                    out.append(q)
                }
            }
            return out
        case .whitespaceSplit:
            var out: [Piece] = []
            for p in pieces {
                var cur: [Unicode.Scalar] = []
                var first = true
                for c in p.scalars {
                    if c.properties.isWhitespace {
                        if !cur.isEmpty { out.append(Piece(scalars: cur, atOrigin: p.atOrigin && first)); first = false }
                        cur = []
                    } else {
                        cur.append(c)
                    }
                }
                if !cur.isEmpty { out.append(Piece(scalars: cur, atOrigin: p.atOrigin && first)) }
            }
            return out
        }
    }

    /// Non-overlapping occurrences of `lit` in `s`.
    static func literalMatches(_ s: [Unicode.Scalar], _ lit: [Unicode.Scalar]) -> [Range<Int>] {
        guard !lit.isEmpty, lit.count <= s.count else { return [] }
        var out: [Range<Int>] = []
        var i = 0
        while i + lit.count <= s.count {
            if s[i] == lit[0] && Array(s[i..<(i + lit.count)]) == lit {
                out.append(i..<(i + lit.count))
                i += lit.count
            } else {
                i += 1
            }
        }
        return out
    }

    /// Splits a piece given match ranges, following HF `SplitDelimiterBehavior`.
    static func splitRanges(_ p: Piece, _ matches: [Range<Int>], _ behavior: SplitBehavior,
                            invert: Bool = false) -> [Piece] {
        let s = p.scalars
        // (range, isMatch) covering the whole piece.
        var spans: [(Range<Int>, Bool)] = []
        var last = 0
        for m in matches {
            if m.lowerBound > last { spans.append((last..<m.lowerBound, invert)) }
            spans.append((m, !invert))
            last = m.upperBound
        }
        if last < s.count { spans.append((last..<s.count, invert)) }
        var ranges: [Range<Int>] = []
        switch behavior {
        case .isolated:
            ranges = spans.map { $0.0 }
        case .removed:
            ranges = spans.filter { !$0.1 }.map { $0.0 }
        case .mergedWithPrevious:
            var prevWasMatch = false
            for (r, isMatch) in spans {
                if isMatch, !prevWasMatch, let l = ranges.last {
                    ranges[ranges.count - 1] = l.lowerBound..<r.upperBound
                } else {
                    ranges.append(r)
                }
                prevWasMatch = isMatch
            }
        case .mergedWithNext:
            var pendingStart: Int? = nil
            for (r, isMatch) in spans {
                if isMatch {
                    if let ps = pendingStart { ranges.append(ps..<r.lowerBound) }
                    pendingStart = r.lowerBound
                } else {
                    ranges.append((pendingStart ?? r.lowerBound)..<r.upperBound)
                    pendingStart = nil
                }
            }
            if let ps = pendingStart { ranges.append(ps..<s.count) }
        case .contiguous:
            var prevMatch = false
            for (r, isMatch) in spans {
                if isMatch && prevMatch, let l = ranges.last {
                    ranges[ranges.count - 1] = l.lowerBound..<r.upperBound
                } else {
                    ranges.append(r)
                }
                prevMatch = isMatch
            }
        }
        return ranges.filter { !$0.isEmpty }.map {
            Piece(scalars: Array(s[$0]), atOrigin: p.atOrigin && $0.lowerBound == 0)
        }
    }
}
