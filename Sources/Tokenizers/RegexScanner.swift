import Foundation

/// Hand-coded scanners for the pre-tokenizer regexes of GPT-2, Llama-3 and Qwen2.
///
/// Each scanner reproduces, match for match, the leftmost-first alternation semantics of the
/// Oniguruma regex used by HF tokenizers:
/// - GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
/// - Llama-3: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
///   ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+` (Qwen2: `\p{N}` instead of `\p{N}{1,3}`)
/// Unknown patterns fall back to `NSRegularExpression` (ICU).
enum RegexScanner: Sendable {
    case gpt2
    case llama3(maxDigits: Int)
    case icu(NSRegularExpressionBox)

    static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let llama3Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// Returns the scanner for `pattern`: a hand-coded one for the known patterns, else ICU.
    static func forPattern(_ pattern: String) throws -> RegexScanner {
        switch pattern {
        case gpt2Pattern: return .gpt2
        case llama3Pattern: return .llama3(maxDigits: 3)
        case qwen2Pattern: return .llama3(maxDigits: 1)
        default:
            do {
                return .icu(NSRegularExpressionBox(try NSRegularExpression(pattern: pattern)))
            } catch {
                throw TokenizerError.invalidArgument("cannot compile pre-tokenizer regex \(pattern): \(error)")
            }
        }
    }

    /// Match ranges (in scalar offsets) of the pattern over `s`, left to right, non-overlapping.
    func matches(_ s: [Unicode.Scalar]) -> [Range<Int>] {
        switch self {
        case .gpt2: return RegexScanner.scan(s, llama: false, maxDigits: Int.max)
        case let .llama3(maxDigits): return RegexScanner.scan(s, llama: true, maxDigits: maxDigits)
        case let .icu(box): return box.matches(s)
        }
    }

    // MARK: character classes

    @inline(__always) static func isLetter(_ c: Unicode.Scalar) -> Bool {
        let v = c.value
        if v < 0x80 { return (v >= 0x41 && v <= 0x5A) || (v >= 0x61 && v <= 0x7A) }
        switch c.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    @inline(__always) static func isNumber(_ c: Unicode.Scalar) -> Bool {
        let v = c.value
        if v < 0x80 { return v >= 0x30 && v <= 0x39 }
        switch c.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    @inline(__always) static func isSpace(_ c: Unicode.Scalar) -> Bool {
        let v = c.value
        if v < 0x80 { return v == 0x20 || (v >= 0x09 && v <= 0x0D) }
        return c.properties.isWhitespace
    }

    @inline(__always) static func isOther(_ c: Unicode.Scalar) -> Bool {
        !isSpace(c) && !isLetter(c) && !isNumber(c)
    }

    @inline(__always) static func isNewline(_ c: Unicode.Scalar) -> Bool { c.value == 0x0A || c.value == 0x0D }

    /// Length of a contraction (`'s`, `'t`, `'re`, `'ve`, `'m`, `'ll`, `'d`) at `i`, or 0.
    static func contraction(_ s: [Unicode.Scalar], _ i: Int, caseInsensitive: Bool) -> Int {
        guard s[i] == "'", i + 1 < s.count else { return 0 }
        func lower(_ c: Unicode.Scalar) -> UInt32 {
            guard caseInsensitive else { return c.value }
            if c.value >= 0x41 && c.value <= 0x5A { return c.value + 32 }
            if c.value == 0x17F { return 0x73 }  // LATIN SMALL LETTER LONG S case-folds to 's'
            if c.value == 0x212A { return 0x6B }  // KELVIN SIGN case-folds to 'k'
            return c.value
        }
        let a = lower(s[i + 1])
        switch a {
        case 0x73, 0x74, 0x6D, 0x64: return 2  // s t m d
        case 0x72, 0x76:  // re ve
            if i + 2 < s.count && lower(s[i + 2]) == 0x65 { return 3 }
            return 0
        case 0x6C:  // ll
            if i + 2 < s.count && lower(s[i + 2]) == 0x6C { return 3 }
            return 0
        default: return 0
        }
    }

    static func scan(_ s: [Unicode.Scalar], llama: Bool, maxDigits: Int) -> [Range<Int>] {
        let n = s.count
        var out: [Range<Int>] = []
        out.reserveCapacity(n / 3 + 1)
        var i = 0
        while i < n {
            let end = matchAt(s, i, n, llama: llama, maxDigits: maxDigits)
            out.append(i..<end)
            i = end
        }
        return out
    }

    /// End of the match starting at `i` (every position starts a match for these patterns).
    @inline(__always)
    static func matchAt(_ s: [Unicode.Scalar], _ i: Int, _ n: Int, llama: Bool, maxDigits: Int) -> Int {
        let c = s[i]
        // 1. contractions
        if c == "'" {
            let k = contraction(s, i, caseInsensitive: llama)
            if k > 0 { return i + k }
        }
        if llama {
            // 2. [^\r\n\p{L}\p{N}]?\p{L}+
            var j = -1
            if isLetter(c) {
                j = i
            } else if !isNewline(c) && !isNumber(c) && i + 1 < n && isLetter(s[i + 1]) {
                j = i + 1
            }
            if j >= 0 {
                while j < n && isLetter(s[j]) { j += 1 }
                return j
            }
            // 3. \p{N}{1,maxDigits}
            if isNumber(c) {
                var j = i
                while j < n && j - i < maxDigits && isNumber(s[j]) { j += 1 }
                return j
            }
            // 4. ` ?[^\s\p{L}\p{N}]+[\r\n]*`
            var k = -1
            if isOther(c) { k = i } else if c == " " && i + 1 < n && isOther(s[i + 1]) { k = i + 1 }
            if k >= 0 {
                while k < n && isOther(s[k]) { k += 1 }
                while k < n && isNewline(s[k]) { k += 1 }
                return k
            }
            // 5. \s*[\r\n]+ ; 6. \s+(?!\S) ; 7. \s+
            var r = i
            var lastNewline = -1
            while r < n && isSpace(s[r]) {
                if isNewline(s[r]) { lastNewline = r }
                r += 1
            }
            if lastNewline >= 0 { return lastNewline + 1 }
            return whitespaceEnd(i, r, n)
        } else {
            // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`
            var start = i
            var cls = c
            if c == " " && i + 1 < n && !isSpace(s[i + 1]) { start = i + 1; cls = s[i + 1] }
            if isLetter(cls) {
                var j = start
                while j < n && isLetter(s[j]) { j += 1 }
                return j
            }
            if isNumber(cls) {
                var j = start
                while j < n && isNumber(s[j]) { j += 1 }
                return j
            }
            if !isSpace(cls) {
                var j = start
                while j < n && isOther(s[j]) { j += 1 }
                return j
            }
            var r = i
            while r < n && isSpace(s[r]) { r += 1 }
            return whitespaceEnd(i, r, n)
        }
    }

    /// `\s+(?!\S)|\s+` for the whitespace run [i, r).
    @inline(__always) static func whitespaceEnd(_ i: Int, _ r: Int, _ n: Int) -> Int {
        if r == n { return r }
        if r - i >= 2 { return r - 1 }
        return r
    }
}

/// Wraps an `NSRegularExpression` (immutable after creation, documented thread-safe) as Sendable.
final class NSRegularExpressionBox: @unchecked Sendable {
    let regex: NSRegularExpression
    init(_ regex: NSRegularExpression) { self.regex = regex }

    /// Match ranges in scalar offsets.
    func matches(_ s: [Unicode.Scalar]) -> [Range<Int>] {
        let string = String(String.UnicodeScalarView(s))
        let ns = string as NSString
        // Map UTF-16 offsets to scalar offsets.
        var utf16ToScalar = [Int](repeating: 0, count: ns.length + 1)
        var u = 0
        for (k, c) in s.enumerated() {
            let w = c.value > 0xFFFF ? 2 : 1
            for t in 0..<w { utf16ToScalar[u + t] = k }
            u += w
        }
        utf16ToScalar[ns.length] = s.count
        return regex.matches(in: string, range: NSRange(location: 0, length: ns.length)).compactMap { m in
            guard m.range.length > 0 else { return nil }
            return utf16ToScalar[m.range.location]..<utf16ToScalar[m.range.location + m.range.length]
        }
    }
}
