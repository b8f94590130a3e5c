/// Decoders of HF `tokenizer.json` (`decoder`), mapping token strings back to text.
indirect enum Decoder: Sendable {
    case byteLevel
    case replace(pattern: String, content: String)
    case byteFallback
    case fuse
    case strip(content: Unicode.Scalar, start: Int, stop: Int)
    case metaspace(replacement: Unicode.Scalar, prependScheme: String)
    case sequence([Decoder])

    /// Parses a decoder JSON object.
    static func parse(_ json: [String: Any], file: String) throws -> Decoder {
        let type = json["type"] as? String ?? ""
        switch type {
        case "ByteLevel": return .byteLevel
        case "Replace":
            let pattern = json["pattern"] as? [String: Any] ?? [:]
            guard let s = pattern["String"] as? String else {
                throw TokenizerError.unsupported(file: file, key: "decoder.Replace.pattern", value: "\(pattern)")
            }
            return .replace(pattern: s, content: json["content"] as? String ?? "")
        case "ByteFallback": return .byteFallback
        case "Fuse": return .fuse
        case "Strip":
            let c = (json["content"] as? String ?? " ").unicodeScalars.first ?? " "
            return .strip(content: c, start: json["start"] as? Int ?? 0, stop: json["stop"] as? Int ?? 0)
        case "Metaspace":
            let rep = (json["replacement"] as? String ?? "\u{2581}").unicodeScalars.first ?? "\u{2581}"
            var scheme = json["prepend_scheme"] as? String ?? "always"
            if json["prepend_scheme"] == nil, let add = json["add_prefix_space"] as? Bool, !add { scheme = "never" }
            return .metaspace(replacement: rep, prependScheme: scheme)
        case "Sequence":
            let list = json["decoders"] as? [[String: Any]] ?? []
            return .sequence(try list.map { try parse($0, file: file) })
        default:
            throw TokenizerError.unsupported(file: file, key: "decoder", value: type)
        }
    }

    /// Applies the decoder to a list of token strings (HF `decode_chain`).
    func decodeChain(_ tokens: [String]) -> [String] {
        switch self {
        case .byteLevel:
            var bytes: [UInt8] = []
            for t in tokens {
                var tokenBytes: [UInt8] = []
                var ok = true
                for s in t.unicodeScalars {
                    guard let b = ByteLevel.scalarToByte[s.value] else { ok = false; break }
                    tokenBytes.append(b)
                }
                if ok { bytes += tokenBytes } else { bytes += Array(t.utf8) }
            }
            return [String(decoding: bytes, as: UTF8.self)]
        case let .replace(pattern, content):
            return tokens.map { Normalizer.replaceLiteral($0, pattern, content) }
        case .byteFallback:
            var out: [String] = []
            var pending: [UInt8] = []
            func flush() {
                guard !pending.isEmpty else { return }
                let s = String(decoding: pending, as: UTF8.self)
                if Array(s.utf8) == pending {
                    out.append(s)
                } else {
                    out += Array(repeating: "\u{FFFD}", count: pending.count)
                }
                pending = []
            }
            for t in tokens {
                let u = Array(t.utf8)
                if u.count == 6, t.hasPrefix("<0x"), t.hasSuffix(">"),
                   let b = UInt8(String(decoding: u[3..<5], as: UTF8.self), radix: 16) {
                    pending.append(b)
                } else {
                    flush()
                    out.append(t)
                }
            }
            flush()
            return out
        case .fuse:
            return [tokens.joined()]
        case let .strip(content, start, stop):
            return tokens.map { t in
                var s = Array(t.unicodeScalars)
                var a = 0
                while a < start && a < s.count && s[a] == content { a += 1 }
                var b = 0
                while b < stop && b < s.count - a && s[s.count - 1 - b] == content { b += 1 }
                s = Array(s[a..<(s.count - b)])
                return String(String.UnicodeScalarView(s))
            }
        case let .metaspace(rep, scheme):
            return tokens.enumerated().map { i, t in
                var s = String.UnicodeScalarView()
                for c in t.unicodeScalars {
                    if c == rep {
                        if i == 0 && scheme != "never" { continue }
                        s.append(" ")
                    } else {
                        s.append(c)
                    }
                }
                return String(s)
            }
        case let .sequence(list):
            return list.reduce(tokens) { $1.decodeChain($0) }
        }
    }
}
