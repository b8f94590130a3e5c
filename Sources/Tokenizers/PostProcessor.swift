/// Post-processors of HF `tokenizer.json` (`post_processor`): special tokens added around a
/// single sequence when `addSpecialTokens` is true. ByteLevel only trims offsets (no id change).
indirect enum PostProcessor: Sendable {
    /// Ids before and after the sequence.
    case template(prefix: [Int], suffix: [Int])
    case none
    case sequence([PostProcessor])

    /// Parses a post-processor JSON object.
    static func parse(_ json: [String: Any], file: String) throws -> PostProcessor {
        let type = json["type"] as? String ?? ""
        switch type {
        case "ByteLevel": return .none
        case "TemplateProcessing":
            let single = json["single"] as? [[String: Any]] ?? []
            let specials = json["special_tokens"] as? [String: Any] ?? [:]
            var prefix: [Int] = [], suffix: [Int] = []
            var seenSequence = false
            for item in single {
                if item["Sequence"] != nil { seenSequence = true; continue }
                guard let st = item["SpecialToken"] as? [String: Any], let name = st["id"] as? String else {
                    throw TokenizerError.invalidKey(file: file, key: "post_processor.single", reason: "unknown item \(item)")
                }
                guard let entry = specials[name] as? [String: Any], let ids = entry["ids"] as? [Int] else {
                    throw TokenizerError.invalidKey(file: file, key: "post_processor.special_tokens.\(name)",
                                                    reason: "missing ids")
                }
                if seenSequence { suffix += ids } else { prefix += ids }
            }
            return .template(prefix: prefix, suffix: suffix)
        case "RobertaProcessing", "BertProcessing":
            guard let cls = json["cls"] as? [Any], let sep = json["sep"] as? [Any],
                  let clsId = cls.last as? Int, let sepId = sep.last as? Int else {
                throw TokenizerError.invalidKey(file: file, key: "post_processor.cls/sep", reason: "expected [token, id]")
            }
            return .template(prefix: [clsId], suffix: [sepId])
        case "Sequence":
            let list = json["processors"] as? [[String: Any]] ?? []
            return .sequence(try list.map { try parse($0, file: file) })
        default:
            throw TokenizerError.unsupported(file: file, key: "post_processor", value: type)
        }
    }

    /// Applies the post-processor to one encoded sequence.
    func apply(_ ids: [Int]) -> [Int] {
        switch self {
        case .none: return ids
        case let .template(prefix, suffix): return prefix + ids + suffix
        case let .sequence(list): return list.reduce(ids) { $1.apply($0) }
        }
    }
}
