import Foundation

/// One chat message for `applyChatTemplate`.
public struct ChatMessage: Sendable, Equatable {
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }

    var jinjaValue: JinjaValue { .dict([("role", .string(role)), ("content", .string(content))]) }
}

extension Tokenizer {
    /// Renders the chat template as transformers' `apply_chat_template(messages, tokenize=False,
    /// add_generation_prompt:)` does. Template variables: `messages`, `add_generation_prompt`,
    /// `bos_token`, `eos_token`, `unk_token`, `pad_token` and any other `*_token` string from
    /// tokenizer_config.json, `tools` and `documents` (none, as transformers passes them), plus
    /// `extraContext` (e.g. `tools`, `date_string`), which overrides all of these.
    public func applyChatTemplate(messages: [ChatMessage], addGenerationPrompt: Bool,
                                  extraContext: [String: JinjaValue] = [:], template: String? = nil) throws -> String {
        try renderChat(messages: .array(messages.map { $0.jinjaValue }), addGenerationPrompt: addGenerationPrompt,
                       extraContext: extraContext, template: template)
    }

    /// Same as `applyChatTemplate(messages:...)` with messages as dictionaries (keys kept in order
    /// role, content, then the rest sorted).
    public func applyChatTemplate(messages: [[String: String]], addGenerationPrompt: Bool,
                                  extraContext: [String: JinjaValue] = [:]) throws -> String {
        let values: [JinjaValue] = messages.map { m in
            var pairs: [(String, JinjaValue)] = []
            for k in ["role", "content"] { if let v = m[k] { pairs.append((k, .string(v))) } }
            for (k, v) in m.sorted(by: { $0.key < $1.key }) where k != "role" && k != "content" {
                pairs.append((k, .string(v)))
            }
            return .dict(pairs)
        }
        return try renderChat(messages: .array(values), addGenerationPrompt: addGenerationPrompt,
                              extraContext: extraContext, template: nil)
    }

    /// Same as `applyChatTemplate(messages:...)` with arbitrary message values (e.g. messages
    /// with `tool_calls`, or content lists), built with `JinjaValue.dict`.
    public func applyChatTemplate(messageValues: [JinjaValue], addGenerationPrompt: Bool,
                                  extraContext: [String: JinjaValue] = [:]) throws -> String {
        try renderChat(messages: .array(messageValues), addGenerationPrompt: addGenerationPrompt,
                       extraContext: extraContext, template: nil)
    }

    /// Renders the chat template and encodes it without adding special tokens, as transformers'
    /// `apply_chat_template(messages, tokenize=True)` does (the template itself writes BOS).
    public func encodeChat(messages: [ChatMessage], addGenerationPrompt: Bool,
                           extraContext: [String: JinjaValue] = [:]) throws -> [Int] {
        encode(try applyChatTemplate(messages: messages, addGenerationPrompt: addGenerationPrompt,
                                     extraContext: extraContext), addSpecialTokens: false)
    }

    private func renderChat(messages: JinjaValue, addGenerationPrompt: Bool, extraContext: [String: JinjaValue],
                            template: String?) throws -> String {
        let parsed: JinjaTemplate
        if let template {
            parsed = try JinjaTemplate(template)
        } else if let cached = parsedChatTemplate {
            parsed = try cached.get()
        } else {
            throw TokenizerError.noChatTemplate
        }
        var context: [String: JinjaValue] = [:]
        for (k, v) in templateSpecials { context[k] = .string(v) }
        context["messages"] = messages
        context["add_generation_prompt"] = .bool(addGenerationPrompt)
        // transformers always passes these (None unless given).
        context["tools"] = JinjaValue.none
        context["documents"] = JinjaValue.none
        for (k, v) in extraContext { context[k] = v }
        return try parsed.render(context)
    }
}
