import Foundation

/// Errors thrown by the Tokenizers module: loading tokenizer files, encoding setup and chat templates.
public enum TokenizerError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A file could not be read or parsed as JSON.
    case unreadableFile(path: String, reason: String)
    /// A required key is missing or has the wrong type.
    case invalidKey(file: String, key: String, reason: String)
    /// A component type (model, normalizer, pre-tokenizer, decoder, post-processor) is not supported.
    case unsupported(file: String, key: String, value: String)
    /// Bad input to a programmatic constructor (for example GGUF metadata).
    case invalidArgument(String)
    /// The tokenizer has no chat template.
    case noChatTemplate
    /// A Jinja template failed to parse or render.
    case template(line: Int, column: Int, message: String)
    /// The template called raise_exception(message).
    case templateRaised(message: String)

    public var description: String {
        switch self {
        case let .unreadableFile(path, reason):
            return "cannot read tokenizer file \(path): \(reason)"
        case let .invalidKey(file, key, reason):
            return "\(file): key '\(key)': \(reason)"
        case let .unsupported(file, key, value):
            return "\(file): unsupported \(key) '\(value)'; supported tokenizers are byte-level BPE and SentencePiece-style BPE"
        case let .invalidArgument(message):
            return "invalid tokenizer argument: \(message)"
        case .noChatTemplate:
            return "the tokenizer has no chat template (tokenizer_config.json 'chat_template' or GGUF 'tokenizer.chat_template')"
        case let .template(line, column, message):
            return "chat template \(line):\(column): \(message)"
        case let .templateRaised(message):
            return "chat template raised an exception: \(message)"
        }
    }
}
