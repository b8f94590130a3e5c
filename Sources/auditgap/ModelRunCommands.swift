// `auditgap model forward` and `auditgap model generate` (DESIGN.md section 2).
// Dispatch: ModelCommand.run routes "forward" to ModelForwardCommand.run and "generate" to
// ModelGenerateCommand.run.
import Foundation
import Models
import Numerics
import Tokenizers

/// Shared helpers of the run commands.
enum ModelRunSupport {
    /// Parses "1,2,3" into ids.
    static func parseIds(_ raw: String) throws -> [Int] {
        let parts = raw.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let ids = parts.compactMap { Int($0) }
        guard !ids.isEmpty, ids.count == parts.count else {
            throw UsageError("--ids needs comma-separated integers, got '\(raw)'")
        }
        return ids
    }

    /// Loads (through the checkpoint cache) and builds the model.
    static func loadModel(_ path: String) throws -> (TransformerModel, Checkpoint) {
        let ckpt = try Checkpoint.cached(path: path)
        return (try TransformerModel(checkpoint: ckpt), ckpt)
    }

    /// The tokenizer of a checkpoint; a usage error when it has none (pass --ids instead).
    static func tokenizer(_ ckpt: Checkpoint) throws -> Tokenizer {
        do { return try ckpt.makeTokenizer() } catch let e as ModelError {
            throw UsageError("\(e.description); pass token ids with --ids")
        }
    }

    static func printJSON(_ object: Any) throws {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        FileHandle.standardOutput.write(data)
        FileHandle.standardOutput.write(Data("\n".utf8))
    }

    /// Rows of a [T, X] (or [1, T, X]) tensor as nested arrays of Double (JSON-safe).
    static func rows(_ t: Tensor, width: Int) -> [[Double]] {
        let s = t.scalars
        return stride(from: 0, to: s.count, by: width).map { start in
            s[start..<(start + width)].map { Double($0) }
        }
    }
}

/// `model forward --model PATH --ids 1,2,3 [--hidden] [--json]`.
enum ModelForwardCommand {
    static let usage = "auditgap model forward --model PATH --ids 1,2,3 [--hidden] [--json]"

    static func run(_ argv: [String]) throws -> Int32 {
        let args = try Arguments(argv, valued: ["--model", "--ids"], knownFlags: ["--hidden", "--json"])
        guard let path = args.value("--model"), let rawIds = args.value("--ids") else {
            throw UsageError("model forward needs --model PATH and --ids. Usage: \(usage)")
        }
        let ids = try ModelRunSupport.parseIds(rawIds)
        Threading.configure()
        let (model, _) = try ModelRunSupport.loadModel(path)
        let wantHidden = args.flag("--hidden")
        let out = try model.forward(TokenBatch(ids: [ids]), options: ForwardOptions(hidden: wantHidden ? .all : .none))
        let c = model.config
        if args.flag("--json") {
            var obj: [String: Any] = [:]
            if let logits = out.logits { obj["logits"] = ModelRunSupport.rows(logits, width: c.vocabSize) }
            if let scores = out.scores { obj["scores"] = ModelRunSupport.rows(scores, width: c.numLabels) }
            if wantHidden {
                obj["hidden"] = out.hidden.map { h in h.map { ModelRunSupport.rows($0, width: c.hiddenSize) } ?? [] }
            }
            try ModelRunSupport.printJSON(obj)
            return 0
        }
        print("model   \(path) (\(c.architecture.rawValue), \(c.numLayers) layers, hidden \(c.hiddenSize))")
        print("tokens  \(ids.count)")
        if let logits = out.logits {
            let last = Array(logits.scalars.suffix(c.vocabSize))
            let top = last.indices.sorted { last[$0] > last[$1] }.prefix(5)
            print("logits  [\(ids.count), \(c.vocabSize)]; top-5 next ids: " +
                  top.map { "\($0) (\(String(format: "%.3f", last[$0])))" }.joined(separator: ", "))
        }
        if let scores = out.scores { print("scores  \(scores.scalars)") }
        if wantHidden {
            for (i, h) in out.hidden.enumerated() {
                guard let h else { continue }
                let s = h.scalars
                let maxAbs = s.map { abs($0) }.max() ?? 0
                print("hidden[\(i)] [\(ids.count), \(c.hiddenSize)] max|h| \(String(format: "%.4f", maxAbs))")
            }
        }
        return 0
    }
}

/// `model generate --model PATH (--prompt T | --ids 1,2,3) [--chat] [--max-new-tokens N]
/// [--temperature X --top-k K --top-p P --seed S] [--json]`; greedy unless a temperature is given.
enum ModelGenerateCommand {
    static let usage = "auditgap model generate --model PATH (--prompt T | --ids 1,2,3) [--chat] [--max-new-tokens N] [--temperature X] [--top-k K] [--top-p P] [--seed S] [--json]"

    static func run(_ argv: [String]) throws -> Int32 {
        let args = try Arguments(argv, valued: ["--model", "--prompt", "--ids", "--max-new-tokens", "--temperature",
                                                "--top-k", "--top-p", "--seed"],
                                 knownFlags: ["--chat", "--json"])
        guard let path = args.value("--model") else { throw UsageError("model generate needs --model PATH. Usage: \(usage)") }
        Threading.configure()
        let (model, ckpt) = try ModelRunSupport.loadModel(path)
        var tokenizer: Tokenizer?
        let ids: [Int]
        if let raw = args.value("--ids") {
            ids = try ModelRunSupport.parseIds(raw)
            tokenizer = try? ModelRunSupport.tokenizer(ckpt)
        } else if let prompt = args.value("--prompt") {
            let tok = try ModelRunSupport.tokenizer(ckpt)
            tokenizer = tok
            if args.flag("--chat") {
                let text = try tok.applyChatTemplate(messages: [ChatMessage(role: "user", content: prompt)],
                                                     addGenerationPrompt: true)
                ids = tok.encode(text, addSpecialTokens: false)
            } else {
                ids = tok.encode(prompt)
            }
        } else {
            throw UsageError("model generate needs --prompt TEXT or --ids 1,2,3. Usage: \(usage)")
        }
        var sampling: Sampling?
        if let raw = args.value("--temperature") {
            guard let t = Float(raw), t > 0 else { throw UsageError("--temperature needs a positive number, got '\(raw)'") }
            var topP: Float?
            if let p = args.value("--top-p") {
                guard let v = Float(p), v > 0, v <= 1 else { throw UsageError("--top-p needs a number in (0, 1], got '\(p)'") }
                topP = v
            }
            sampling = Sampling(temperature: t, topK: try args.int("--top-k"), topP: topP,
                                seed: UInt64(max(0, try args.int("--seed") ?? 0)))
        }
        let maxNew = try args.int("--max-new-tokens") ?? 64
        guard maxNew >= 0 else { throw UsageError("--max-new-tokens must be >= 0") }
        let result = try model.generate(prompts: [ids], options: GenerationOptions(maxNewTokens: maxNew, sampling: sampling))
        let newIds = result.tokens[0]
        let text = tokenizer?.decode(newIds, skipSpecialTokens: true)
        if args.flag("--json") {
            var obj: [String: Any] = ["ids": newIds]
            obj["text"] = text ?? NSNull()
            try ModelRunSupport.printJSON(obj)
        } else {
            print(text ?? newIds.map(String.init).joined(separator: ","))
        }
        return 0
    }
}
