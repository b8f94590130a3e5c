// TinyTokenizer: a small byte-level BPE tokenizer (Hugging Face tokenizers format) for synthetic models.
//
// Vocabulary: 0 <|endoftext|> (pad), 1 <|im_start|> (bos), 2 <|im_end|> (eos), then the 256
// byte-level symbols (id 3 + byte), then one token per merge. Chat template: ChatML as in
// SmolLM2, without SmolLM2's default system message.
import Foundation
import Tokenizers

/// Builds tokenizer.json / tokenizer_config.json text for a tiny byte-level BPE tokenizer.
public enum TinyTokenizer {
    /// Special tokens in id order.
    public static let specialTokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    public static let padId = 0, bosId = 1, eosId = 2
    /// Id of the first byte token.
    public static let byteOffset = 3

    /// ChatML template (SmolLM2's, minus its default system message).
    public static let chatTemplate = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

    /// Merges over byte-level symbols (`Ġ` is the space byte), in rank order; every merge's parts
    /// exist before it.
    public static let merges: [(String, String)] = [
        ("Ġ", "t"), ("h", "e"), ("i", "n"), ("e", "r"), ("a", "n"), ("o", "n"), ("Ġ", "a"), ("r", "e"),
        ("Ġ", "s"), ("Ġt", "he"), ("in", "g"), ("Ġ", "w"), ("o", "u"), ("e", "s"), ("a", "t"), ("o", "r"),
        ("Ġ", "h"), ("Ġ", "c"), ("Ġ", "I"), ("Ġ", "o"), ("e", "n"), ("Ġ", "m"), ("Ġ", "f"), ("l", "l"),
        ("Ġ", "b"), ("Ġ", "p"), ("i", "s"), ("Ġ", "d"), ("Ġ", "y"), ("Ġy", "ou"),
    ]

    /// Number of ids (specials + bytes + merges).
    public static var vocabSize: Int { byteOffset + 256 + merges.count }

    /// Token string -> id.
    public static var vocab: [String: Int] {
        var v: [String: Int] = [:]
        for (i, s) in specialTokens.enumerated() { v[s] = i }
        for b in 0..<256 { v[String(ByteLevel.byteToScalar[b])] = byteOffset + b }
        for (i, m) in merges.enumerated() { v[m.0 + m.1] = byteOffset + 256 + i }
        return v
    }

    /// The tokenizer.json document.
    public static func tokenizerJSON() throws -> Data {
        let added: [[String: Any]] = specialTokens.enumerated().map { i, s in
            ["id": i, "content": s, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true]
        }
        let byteLevel: [String: Any] = ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true]
        let model: [String: Any] = [
            "type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
            "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": merges.map { [$0.0, $0.1] },
        ]
        let root: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": added,
            "normalizer": NSNull(), "pre_tokenizer": byteLevel, "post_processor": byteLevel, "decoder": byteLevel,
            "model": model,
        ]
        return try JSONSerialization.data(withJSONObject: root, options: [.sortedKeys, .prettyPrinted])
    }

    /// The tokenizer_config.json document (special tokens, chat template).
    public static func tokenizerConfigJSON(maxLength: Int) throws -> Data {
        var decoder: [String: Any] = [:]
        for (i, s) in specialTokens.enumerated() {
            decoder[String(i)] = ["content": s, "single_word": false, "lstrip": false, "rstrip": false,
                                  "normalized": false, "special": true]
        }
        let root: [String: Any] = [
            "add_bos_token": false, "add_eos_token": false, "add_prefix_space": false,
            "added_tokens_decoder": decoder, "bos_token": specialTokens[bosId], "eos_token": specialTokens[eosId],
            "pad_token": specialTokens[padId], "unk_token": specialTokens[padId], "chat_template": chatTemplate,
            "clean_up_tokenization_spaces": false, "model_max_length": maxLength, "tokenizer_class": "GPT2Tokenizer",
        ]
        return try JSONSerialization.data(withJSONObject: root, options: [.sortedKeys, .prettyPrinted])
    }
}
