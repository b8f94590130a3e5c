import Foundation
import XCTest
@testable import Tokenizers

/// Unit behaviour: loading errors, BPE merge order, byte map, concurrency of the word cache.
final class TokenizerBehaviorTests: XCTestCase {
    func testByteMapIsABijection() {
        XCTAssertEqual(Set(ByteLevel.byteToScalar.map { $0.value }).count, 256)
        XCTAssertEqual(ByteLevel.byteToScalar[32], "\u{120}")  // space -> Ġ
        XCTAssertEqual(ByteLevel.byteToScalar[10], "\u{10A}")  // newline -> Ċ
        XCTAssertEqual(ByteLevel.byteToScalar[65], "A")
    }

    func testMergeOrderByRankThenLeftmost() throws {
        let vocab = ["a": 0, "b": 1, "aa": 2, "ab": 3, "aab": 4, "aaa": 5]
        let tok = try Tokenizer(family: .gpt2, tokens: vocab.sorted { $0.value < $1.value }.map { $0.key },
                                merges: [("a", "a"), ("a", "b"), ("aa", "b")], tokenTypes: [], bosId: nil, eosId: nil,
                                addBos: false, chatTemplate: nil)
        // "aaab": rank-0 merge (a,a) applies leftmost first -> aa a b -> (a,b) -> aa ab.
        XCTAssertEqual(tok.encode("aaab", addSpecialTokens: false), [2, 3])
        // "aab": aa b -> aab
        XCTAssertEqual(tok.encode("aab", addSpecialTokens: false), [4])
        XCTAssertEqual(tok.decode([2, 3]), "aaab")
    }

    func testLoadErrorsNameFileAndKey() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tokerr-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = dir.appendingPathComponent("nope.json")
        XCTAssertThrowsError(try Tokenizer.load(tokenizerJSON: missing, tokenizerConfigJSON: nil)) {
            guard case let TokenizerError.unreadableFile(path, _) = $0 else { return XCTFail("\($0)") }
            XCTAssertEqual(path, missing.path)
        }
        let bad = dir.appendingPathComponent("tokenizer.json")
        try Data("{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}".utf8).write(to: bad)
        XCTAssertThrowsError(try Tokenizer.load(tokenizerJSON: bad, tokenizerConfigJSON: nil)) {
            XCTAssertEqual($0 as? TokenizerError, .unsupported(file: "tokenizer.json", key: "model.type", value: "Unigram"))
            XCTAssert("\($0)".contains("tokenizer.json"))
        }
        try Data("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a b\"]}}".utf8).write(to: bad)
        XCTAssertThrowsError(try Tokenizer.load(tokenizerJSON: bad, tokenizerConfigJSON: nil)) {
            guard case let TokenizerError.invalidKey(file, key, reason) = $0 else { return XCTFail("\($0)") }
            XCTAssertEqual(file, "tokenizer.json")
            XCTAssertEqual(key, "model")
            XCTAssert(reason.contains("'a b'"), reason)
        }
        try Data("not json".utf8).write(to: bad)
        XCTAssertThrowsError(try Tokenizer.load(tokenizerJSON: bad, tokenizerConfigJSON: nil))
    }

    func testConcurrentEncodingIsConsistent() throws {
        let tok = try Tokenizer.load(tokenizerJSON: Fixtures.url("tokenizers/qwen2.json"), tokenizerConfigJSON: nil)
        let texts = (0..<64).map { "Sample \($0): The quick brown fox \($0 * 7919) jumps; café 😀 \($0 % 5)" }
        let expected = texts.map { tok.encode($0) }
        let results = ResultsBox(count: texts.count)
        DispatchQueue.concurrentPerform(iterations: texts.count) { i in
            results.set(i, tok.encode(texts[i]))
        }
        XCTAssertEqual(results.values, expected)
        XCTAssertEqual(texts.indices.map { tok.decode(expected[$0]) }, texts)
    }

    func testSpecialTokenAccessors() throws {
        let tok = try Tokenizer.load(tokenizerJSON: Fixtures.url("tokenizers/qwen2.json"), tokenizerConfigJSON: nil)
        XCTAssertEqual(tok.specialTokens, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
        XCTAssertEqual(tok.tokenToId("<|im_end|>"), 2)
        XCTAssertEqual(tok.idToToken(2), "<|im_end|>")
        XCTAssertTrue(tok.isSpecial(2))
        XCTAssertNil(tok.idToToken(-1))
        XCTAssertNil(tok.idToToken(1_000_000))
        XCTAssertEqual(tok.vocabSize, 902)
        XCTAssertEqual(tok.decode([1, 1_000_000, -5, 2], skipSpecialTokens: false), "<|im_start|><|im_end|>")
    }
}

/// Collects results from concurrent workers.
private final class ResultsBox: @unchecked Sendable {
    // @unchecked Sendable: all access goes through `lock`.
    private let lock = NSLock()
    private var storage: [[Int]]
    init(count: Int) { storage = Array(repeating: [], count: count) }
    func set(_ i: Int, _ v: [Int]) { lock.lock(); storage[i] = v; lock.unlock() }
    var values: [[Int]] { lock.lock(); defer { lock.unlock() }; return storage }
}
