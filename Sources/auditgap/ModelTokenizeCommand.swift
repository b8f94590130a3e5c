// `auditgap model tokenize`: token ids of a text, or of a one-message chat rendered with the
// checkpoint's chat template (DESIGN.md section 2 JSON shape: {"ids": [...], "text": ...}).
import Foundation
import Models
import Tokenizers

enum ModelTokenizeCommand {
    static let usage = "auditgap model tokenize --model PATH (--text T | --chat T) [--json]"

    static func run(_ argv: [String]) throws -> Int32 {
        let args = try Arguments(argv, valued: ["--model", "--text", "--chat"], knownFlags: ["--json"])
        guard let path = args.value("--model") else { throw UsageError("model tokenize needs --model PATH. Usage: \(usage)") }
        let text = args.value("--text"), chat = args.value("--chat")
        guard (text == nil) != (chat == nil) else {
            throw UsageError("model tokenize needs exactly one of --text and --chat. Usage: \(usage)")
        }
        let ckpt = try Checkpoint.cached(path: path)
        let tokenizer = try ModelRunSupport.tokenizer(ckpt)
        var object: [String: Any] = [:]
        let ids: [Int]
        if let chat {
            let rendered = try tokenizer.applyChatTemplate(messages: [ChatMessage(role: "user", content: chat)],
                                                           addGenerationPrompt: true)
            ids = tokenizer.encode(rendered, addSpecialTokens: false)
            object["text"] = rendered
        } else {
            ids = tokenizer.encode(text ?? "", addSpecialTokens: true)
        }
        object["ids"] = ids
        if args.flag("--json") {
            try ModelRunSupport.printJSON(object)
        } else {
            if let rendered = object["text"] as? String { print(rendered) }
            print(ids.map(String.init).joined(separator: " "))
            print(ids.map { tokenizer.idToToken($0) ?? "?" }.joined(separator: " | "))
        }
        return 0
    }
}
