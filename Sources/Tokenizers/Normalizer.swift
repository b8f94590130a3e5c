import Foundation

/// Text normalizers of HF `tokenizer.json` (`normalizer`), applied to text outside added tokens.
indirect enum Normalizer: Sendable {
    case nfc, nfd, nfkc, nfkd, lowercase
    case prepend(String)
    case replace(pattern: String, content: String)
    case replaceRegex(NSRegularExpressionBox, content: String)
    case strip(left: Bool, right: Bool)
    case sequence([Normalizer])

    /// Parses a normalizer JSON object.
    static func parse(_ json: [String: Any], file: String) throws -> Normalizer {
        let type = json["type"] as? String ?? ""
        switch type {
        case "NFC": return .nfc
        case "NFD": return .nfd
        case "NFKC": return .nfkc
        case "NFKD": return .nfkd
        case "Lowercase": return .lowercase
        case "Prepend":
            guard let p = json["prepend"] as? String else {
                throw TokenizerError.invalidKey(file: file, key: "normalizer.prepend", reason: "expected a string")
            }
            return .prepend(p)
        case "Replace":
            let content = json["content"] as? String ?? ""
            let pattern = json["pattern"] as? [String: Any] ?? [:]
            if let s = pattern["String"] as? String { return .replace(pattern: s, content: content) }
            if let r = pattern["Regex"] as? String {
                do {
                    return .replaceRegex(NSRegularExpressionBox(try NSRegularExpression(pattern: r)), content: content)
                } catch {
                    throw TokenizerError.invalidKey(file: file, key: "normalizer.pattern.Regex", reason: "\(error)")
                }
            }
            throw TokenizerError.invalidKey(file: file, key: "normalizer.pattern", reason: "expected String or Regex")
        case "Strip":
            return .strip(left: json["strip_left"] as? Bool ?? true, right: json["strip_right"] as? Bool ?? true)
        case "Sequence":
            let list = json["normalizers"] as? [[String: Any]] ?? []
            return .sequence(try list.map { try parse($0, file: file) })
        default:
            throw TokenizerError.unsupported(file: file, key: "normalizer", value: type)
        }
    }

    /// Applies the normalizer.
    func apply(_ text: String) -> String {
        switch self {
        case .nfc: return text.precomposedStringWithCanonicalMapping
        case .nfd: return text.decomposedStringWithCanonicalMapping
        case .nfkc: return text.precomposedStringWithCompatibilityMapping
        case .nfkd: return text.decomposedStringWithCompatibilityMapping
        case .lowercase: return text.lowercased()
        case let .prepend(p): return text.isEmpty ? text : p + text
        case let .replace(pattern, content):
            guard !pattern.isEmpty else { return text }
            return Normalizer.replaceLiteral(text, pattern, content)
        case let .replaceRegex(box, content):
            let ns = text as NSString
            let template = NSRegularExpression.escapedTemplate(for: content)
            return box.regex.stringByReplacingMatches(in: text, range: NSRange(location: 0, length: ns.length),
                                                      withTemplate: template)
        case let .strip(left, right):
            var scalars = Array(text.unicodeScalars)
            if right { while let l = scalars.last, l.properties.isWhitespace { scalars.removeLast() } }
            if left {
                var k = 0
                while k < scalars.count && scalars[k].properties.isWhitespace { k += 1 }
                scalars.removeFirst(k)
            }
            return String(String.UnicodeScalarView(scalars))
        case let .sequence(list):
            return list.reduce(text) { $1.apply($0) }
        }
    }

    /// Replaces every occurrence of `pattern` by `content`, scalar by scalar (no grapheme matching).
    static func replaceLiteral(_ text: String, _ pattern: String, _ content: String) -> String {
        let s = Array(text.unicodeScalars)
        let p = Array(pattern.unicodeScalars)
        let c = Array(content.unicodeScalars)
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(s.count)
        var i = 0
        while i < s.count {
            if i + p.count <= s.count && s[i] == p[0] && Array(s[i..<(i + p.count)]) == p {
                out.append(contentsOf: c)
                i += p.count
            } else {
                out.append(s[i])
                i += 1
            }
        }
        return String(String.UnicodeScalarView(out))
    }
}
