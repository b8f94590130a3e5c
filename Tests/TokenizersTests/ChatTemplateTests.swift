import Foundation
import XCTest
@testable import Tokenizers

/// Real chat templates (Llama-3.1, Qwen2.5, Gemma-2, SmolLM2) against transformers' apply_chat_template.
final class ChatTemplateTests: XCTestCase {
    func testRealTemplatesMatchTransformers() throws {
        let cases = try XCTUnwrap(Fixtures.json("chat_expected.json") as? [[String: Any]])
        XCTAssertGreaterThanOrEqual(cases.count, 60)
        var tokenizers: [String: Tokenizer] = [:]
        var failures: [String] = []
        for c in cases {
            let tname = c["template"] as? String ?? ""
            let tokName = c["tokenizer"] as? String ?? ""
            let template = try String(contentsOf: Fixtures.url("templates/\(tname).jinja"), encoding: .utf8)
            if tokenizers[tokName] == nil {
                tokenizers[tokName] = try Tokenizer.load(tokenizerJSON: Fixtures.url("tokenizers/\(tokName).json"),
                                                         tokenizerConfigJSON: nil)
            }
            let tok = try XCTUnwrap(tokenizers[tokName])
            let messages = (c["messages"] as? [[String: String]] ?? []).map {
                ChatMessage(role: $0["role"] ?? "", content: $0["content"] ?? "")
            }
            var extra: [String: JinjaValue] = [:]
            if let b = c["bos_token"] as? String { extra["bos_token"] = .string(b) }
            if let e = c["eos_token"] as? String { extra["eos_token"] = .string(e) }
            if let tools = c["tools"] { extra["tools"] = JinjaTests.value(tools) }
            if let more = c["extra"] as? [String: Any] { for (k, v) in more { extra[k] = JinjaValue.fromJSON(v) } }
            let agp = c["add_generation_prompt"] as? Bool ?? false
            let label = "\(tname)/\(c["conversation"] ?? "")/agp=\(agp)"
            do {
                let out = try tok.applyChatTemplate(messages: messages, addGenerationPrompt: agp, extraContext: extra,
                                                    template: template)
                if let expected = c["text"] as? String {
                    if out != expected { failures.append("\(label): \(out.debugDescription) != \(expected.debugDescription)") }
                } else {
                    failures.append("\(label): expected error \(c["error"] ?? ""), got \(out.debugDescription)")
                }
            } catch let TokenizerError.templateRaised(message) {
                if let expectedError = c["error"] as? String {
                    XCTAssertEqual(message, expectedError, label)
                } else {
                    failures.append("\(label): unexpected raise_exception(\(message))")
                }
            }
        }
        XCTAssert(failures.isEmpty, "\(failures.count) of \(cases.count) chat renders differ:\n" + failures.joined(separator: "\n"))
    }

    func testTemplateVariablesFromTokenizerConfig() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tok-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(at: Fixtures.url("tokenizers/llama3.json"),
                                         to: dir.appendingPathComponent("tokenizer.json"))
        let template = try String(contentsOf: Fixtures.url("templates/llama31.jinja"), encoding: .utf8)
        let config: [String: Any] = ["bos_token": "<|begin_of_text|>",
                                     "eos_token": ["content": "<|eot_id|>", "special": true],
                                     "chat_template": template]
        try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("tokenizer_config.json"))
        let tok = try Tokenizer.load(directory: dir)
        XCTAssertEqual(tok.bosToken, "<|begin_of_text|>")
        XCTAssertEqual(tok.eosToken, "<|eot_id|>")
        XCTAssertEqual(tok.eosTokenId, tok.tokenToId("<|eot_id|>"))
        let text = try tok.applyChatTemplate(messages: [["role": "user", "content": "Hi"]], addGenerationPrompt: true)
        XCTAssertEqual(text, "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: "
                       + "December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>"
                       + "\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
        // The rendered prompt starts with the BOS text, so encoding without special tokens keeps one BOS.
        let ids = tok.encode(text, addSpecialTokens: false)
        XCTAssertEqual(ids.first, tok.bosTokenId)
        XCTAssertEqual(ids.filter { $0 == tok.bosTokenId }.count, 1)
    }

    func testEncodeChatKeepsOneBOS() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tokg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(at: Fixtures.url("tokenizers/gemma.json"), to: dir.appendingPathComponent("tokenizer.json"))
        let template = try String(contentsOf: Fixtures.url("templates/gemma2.jinja"), encoding: .utf8)
        let config: [String: Any] = ["bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "chat_template": template]
        try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("tokenizer_config.json"))
        let tok = try Tokenizer.load(directory: dir)
        let ids = try tok.encodeChat(messages: [ChatMessage(role: "user", content: "Hello there")], addGenerationPrompt: true)
        XCTAssertEqual(ids.first, tok.bosTokenId)
        XCTAssertEqual(ids.filter { $0 == tok.bosTokenId }.count, 1)
        XCTAssertEqual(tok.padTokenId, 0)
        XCTAssertEqual(tok.decode(ids), "<bos><start_of_turn>user\nHello there<end_of_turn>\n<start_of_turn>model\n")
        XCTAssertEqual(tok.decode(ids, skipSpecialTokens: true), "user\nHello there\nmodel\n")
        // A broken template is reported when used, with its position.
        let broken = try Tokenizer(family: .gpt2, tokens: ["a"], merges: [], tokenTypes: [1], bosId: nil, eosId: nil,
                                   addBos: false, chatTemplate: "{% if %}")
        XCTAssertThrowsError(try broken.applyChatTemplate(messages: [], addGenerationPrompt: false)) {
            guard case let TokenizerError.template(line, column, _) = $0 else { return XCTFail("\($0)") }
            XCTAssertEqual([line, column], [1, 7])
        }
    }

    func testToolCallMessagesAsValues() throws {
        let template = try String(contentsOf: Fixtures.url("templates/qwen25.jinja"), encoding: .utf8)
        let tok = try Tokenizer(family: .qwen2, tokens: ["a"], merges: [], tokenTypes: [1], bosId: nil, eosId: nil,
                                addBos: false, chatTemplate: template)
        let call = JinjaValue.dict([("type", .string("function")), ("function", .dict([
            ("name", .string("get_weather")), ("arguments", .dict([("city", .string("Paris"))]))]))])
        let messages: [JinjaValue] = [
            .dict([("role", .string("user")), ("content", .string("Weather in Paris?"))]),
            .dict([("role", .string("assistant")), ("content", .string("")), ("tool_calls", .array([call]))]),
            .dict([("role", .string("tool")), ("content", .string("sunny"))]),
        ]
        let out = try tok.applyChatTemplate(messageValues: messages, addGenerationPrompt: true)
        XCTAssertEqual(out, "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
                       + "<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n<tool_call>\n"
                       + "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n"
                       + "<|im_start|>user\n<tool_response>\nsunny\n</tool_response><|im_end|>\n<|im_start|>assistant\n")
    }

    func testMissingTemplateThrows() throws {
        let tok = try Tokenizer.load(tokenizerJSON: Fixtures.url("tokenizers/gpt2.json"), tokenizerConfigJSON: nil)
        XCTAssertThrowsError(try tok.applyChatTemplate(messages: [ChatMessage(role: "user", content: "x")],
                                                       addGenerationPrompt: true)) {
            XCTAssertEqual($0 as? TokenizerError, .noChatTemplate)
        }
    }
}
