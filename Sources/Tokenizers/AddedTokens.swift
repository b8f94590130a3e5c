/// One entry of `added_tokens` in `tokenizer.json`.
public struct AddedToken: Sendable, Equatable {
    public var id: Int
    public var content: String
    public var special: Bool
    public var normalized: Bool
    public var lstrip: Bool
    public var rstrip: Bool
    public var singleWord: Bool

    public init(id: Int, content: String, special: Bool, normalized: Bool = false, lstrip: Bool = false,
                rstrip: Bool = false, singleWord: Bool = false) {
        self.id = id
        self.content = content
        self.special = special
        self.normalized = normalized
        self.lstrip = lstrip
        self.rstrip = rstrip
        self.singleWord = singleWord
    }
}

/// A segment of input after added-token extraction.
enum Segment {
    case text([Unicode.Scalar], atOrigin: Bool)
    case token(Int)
}

/// Finds added tokens in text with leftmost-longest matching (as HF's Aho-Corasick split).
struct AddedTokenMatcher: Sendable {
    private final class Node: @unchecked Sendable {
        // @unchecked Sendable: nodes are built once in init and never mutated afterwards.
        var children: [UInt32: Node] = [:]
        var token: AddedToken?
    }
    private let root = Node()
    let isEmpty: Bool

    init(_ tokens: [AddedToken]) {
        for t in tokens where !t.content.isEmpty {
            var node = root
            for s in t.content.unicodeScalars {
                if let c = node.children[s.value] {
                    node = c
                } else {
                    let c = Node()
                    node.children[s.value] = c
                    node = c
                }
            }
            node.token = t
        }
        isEmpty = tokens.isEmpty
    }

    /// Splits `s` into text and token segments.
    func split(_ s: [Unicode.Scalar], atOrigin: Bool) -> [Segment] {
        if isEmpty || s.isEmpty { return [.text(s, atOrigin: atOrigin)] }
        var out: [Segment] = []
        var textStart = 0
        var i = 0
        let n = s.count
        while i < n {
            var node = root
            var best: (AddedToken, Int)? = nil
            var j = i
            while j < n, let c = node.children[s[j].value] {
                node = c
                j += 1
                if let t = node.token { best = (t, j) }
            }
            guard let (tok, end) = best else { i += 1; continue }
            if tok.singleWord {
                let before = i > 0 ? s[i - 1] : nil
                let after = end < n ? s[end] : nil
                if let b = before, AddedTokenMatcher.isWordChar(b) { i += 1; continue }
                if let a = after, AddedTokenMatcher.isWordChar(a) { i += 1; continue }
            }
            var start = i
            var stop = end
            if tok.lstrip { while start > textStart && s[start - 1].properties.isWhitespace { start -= 1 } }
            if tok.rstrip { while stop < n && s[stop].properties.isWhitespace { stop += 1 } }
            if start > textStart {
                out.append(.text(Array(s[textStart..<start]), atOrigin: atOrigin && textStart == 0))
            }
            out.append(.token(tok.id))
            textStart = stop
            i = stop
        }
        if textStart < n { out.append(.text(Array(s[textStart..<n]), atOrigin: atOrigin && textStart == 0)) }
        return out
    }

    static func isWordChar(_ c: Unicode.Scalar) -> Bool {
        c == "_" || c.properties.isAlphabetic || c.properties.numericType != nil
    }
}
