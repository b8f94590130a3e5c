// GGUFTokenizerFile: tokenizer metadata of a GGUF checkpoint survives the JSON round trip, and a
// directory holding it loads a tokenizer.
import Foundation
import XCTest
@testable import Models

final class GGUFTokenizerFileTests: XCTestCase {
    func testRoundTripKeepsTokenizerEntriesOnly() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ggtok-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let meta: [String: GGUFValue] = [
            "tokenizer.ggml.model": .string("gpt2"),
            "tokenizer.ggml.tokens": .array([.string("a"), .string("b"), .string("<|im_end|>")]),
            "tokenizer.ggml.token_type": .array([.int32(1), .int32(1), .int32(3)]),
            "tokenizer.ggml.scores": .array([.float32(0.5), .float32(-1.25), .float32(0)]),
            "tokenizer.ggml.eos_token_id": .uint32(2),
            "tokenizer.ggml.add_bos_token": .bool(false),
            "tokenizer.chat_template": .string("{{ messages }}"),
            "llama.block_count": .uint32(30),
        ]
        try GGUFTokenizerFile.write(meta, to: dir)
        let back = try GGUFTokenizerFile.read(dir.appendingPathComponent(GGUFTokenizerFile.fileName))
        XCTAssertNil(back["llama.block_count"], "non-tokenizer metadata must not be written")
        XCTAssertEqual(back.count, meta.count - 1)
        XCTAssertEqual(back["tokenizer.ggml.tokens"]?.strings, ["a", "b", "<|im_end|>"])
        XCTAssertEqual(back["tokenizer.ggml.token_type"]?.ints, [1, 1, 3])
        XCTAssertEqual(back["tokenizer.ggml.scores"]?.doubles, [0.5, -1.25, 0])
        XCTAssertEqual(back["tokenizer.ggml.eos_token_id"]?.int, 2)
        XCTAssertEqual(back["tokenizer.ggml.add_bos_token"]?.bool, false)
        XCTAssertEqual(back["tokenizer.chat_template"]?.string, "{{ messages }}")
    }

    func testMalformedFileIsAnError() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ggtok-bad-\(UUID().uuidString).json")
        try Data(#"{"tokenizer.ggml.model": {"t": "nope", "v": 1}}"#.utf8).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        XCTAssertThrowsError(try GGUFTokenizerFile.read(url))
    }
}
