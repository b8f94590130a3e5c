// synthetic-model kind, TinyModelFactory and StageSupport model resolution.
import Foundation
import XCTest
import Models
import Tokenizers
@testable import Study

final class StagesModelTests: XCTestCase {
    func testTinyTokenizerRoundTripsAndChatTemplate() throws {
        let dir = try SharedTinyModel.url()
        let m = try StageSupport.loadModel(path: dir)
        let tok = try m.requireTokenizer()
        let text = "Hello there, the thing you want: ünïcode ok"
        let ids = tok.encode(text, addSpecialTokens: false)
        XCTAssertEqual(tok.decode(ids), text)
        XCTAssertLessThan(ids.count, text.utf8.count, "merges shorten the encoding")
        let chat = try StageSupport.encodeChat(tok, prompt: "hi", response: "yo")
        XCTAssertEqual(tok.decode(chat), "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nyo<|im_end|>\n")
        let prompt = try StageSupport.encodePrompt(tok, prompt: "hi")
        XCTAssertEqual(tok.decode(prompt), "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
        XCTAssertEqual(prompt.first, TinyTokenizer.bosId)
        XCTAssertTrue(m.stopTokenIds.contains(TinyTokenizer.eosId))
        XCTAssertEqual(m.padTokenId, TinyTokenizer.padId)
    }

    func testEveryArchitectureReloadsAndRuns() throws {
        for arch in ["llama", "qwen2", "gemma2"] {
            var o = TinyModelOptions()
            o.architecture = Architecture(rawValue: arch)!
            o.hidden = 16; o.heads = 2; o.kvHeads = 1; o.intermediate = 24; o.layers = 2
            let dir = try TinyModelFactory.temporary(o)
            defer { try? FileManager.default.removeItem(at: dir) }
            let m = try StageSupport.loadModel(path: dir)
            XCTAssertEqual(m.checkpoint.config.architecture, o.architecture)
            XCTAssertEqual(m.checkpoint.missingWeights, [])
            let direct = try TinyModelFactory.model(o)
            let batch = TokenBatch(ids: [[1, 50, 60, 70]])
            let a = try m.model.forward(batch).logits!.scalars, b = try direct.forward(batch).logits!.scalars
            XCTAssertEqual(a, b, "\(arch): reloaded model differs from the in-memory one")
            XCTAssertTrue(a.allSatisfy(\.isFinite))
        }
    }

    func testSyntheticModelKindThroughPipeline() throws {
        let box = StageSandbox()
        try box.run("""
        stages:
          tiny:
            kind: synthetic-model
            params: {architecture: qwen2, hidden: 16, heads: 2, kv_heads: 1, intermediate: 24, layers: 3, seed: 3}
          cls:
            kind: synthetic-model
            params: {hidden: 16, heads: 2, kv_heads: 1, head: sequence-classification}
        """)
        let dir = try box.output("tiny")
        let m = try StageSupport.loadModel(path: dir)
        XCTAssertEqual(m.checkpoint.config.numLayers, 3)
        XCTAssertEqual(m.checkpoint.config.architecture, .qwen2)
        XCTAssertNotNil(m.tokenizer?.chatTemplate)
        let cls = try StageSupport.loadModel(path: try box.output("cls"))
        XCTAssertEqual(cls.checkpoint.config.head, .sequenceClassification)
        let r = try cls.model.forward(TokenBatch(ids: [[1, 40, 41]]))
        XCTAssertEqual(r.scores?.shape, [1, 1])
    }

    func testModelResolutionErrors() throws {
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("empty-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: empty) }
        XCTAssertThrowsError(try StageSupport.modelDirectory(empty)) { e in
            XCTAssertTrue("\(e)".contains("not a model"), "\(e)")
        }
        // A directory holding model/ resolves to it.
        let nested = empty.appendingPathComponent("model")
        try FileManager.default.copyItem(at: try SharedTinyModel.url(), to: nested)
        XCTAssertEqual(try StageSupport.modelDirectory(empty).lastPathComponent, "model")
    }
}
