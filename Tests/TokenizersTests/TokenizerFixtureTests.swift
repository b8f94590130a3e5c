import Foundation
import XCTest
@testable import Tokenizers

/// Compares encode/decode with HF tokenizers on the committed fixture tokenizers.
final class TokenizerFixtureTests: XCTestCase {
    static let names = ["gpt2", "gpt2_prefix", "llama3", "llama3_merges", "qwen2", "smollm2", "gemma", "llama2",
                        "metaspace", "gpt2_added",
                        "split_icu", "split_behaviors", "normalizers", "metaspace_split"]

    func check(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let tok = try Tokenizer.load(tokenizerJSON: Fixtures.url("tokenizers/\(name).json"), tokenizerConfigJSON: nil)
        let expected = try XCTUnwrap(Fixtures.json("tokenizers/\(name).expected.json") as? [String: Any])
        let cases = try XCTUnwrap(expected["cases"] as? [[String: Any]])
        XCTAssertGreaterThanOrEqual(cases.count, 50)
        var failures: [String] = []
        for c in cases {
            let text = c["text"] as? String ?? ""
            let ids = tok.encode(text, addSpecialTokens: true)
            let idsNo = tok.encode(text, addSpecialTokens: false)
            if ids != c["ids"] as? [Int] { failures.append("ids \(text.debugDescription): \(ids) != \(c["ids"]!)") }
            if idsNo != c["ids_no_special"] as? [Int] {
                failures.append("ids_no_special \(text.debugDescription): \(idsNo) != \(c["ids_no_special"]!)")
            }
            let expIds = c["ids"] as? [Int] ?? []
            let dec = tok.decode(expIds, skipSpecialTokens: false)
            if dec != c["decoded"] as? String {
                failures.append("decode \(text.debugDescription): \(dec.debugDescription) != \((c["decoded"] as? String ?? "").debugDescription)")
            }
            let decSkip = tok.decode(expIds, skipSpecialTokens: true)
            if decSkip != c["decoded_skip_special"] as? String {
                failures.append("decode skip \(text.debugDescription): \(decSkip.debugDescription) != \((c["decoded_skip_special"] as? String ?? "").debugDescription)")
            }
        }
        XCTAssert(failures.isEmpty, "\(name): \(failures.count) mismatches of \(cases.count * 4):\n" +
                  failures.prefix(12).joined(separator: "\n"), file: file, line: line)
    }

    func testGPT2() throws { try check("gpt2") }
    func testGPT2PrefixSpaceLegacyMerges() throws { try check("gpt2_prefix") }
    func testLlama3IgnoreMerges() throws { try check("llama3") }
    func testLlama3WithMerges() throws { try check("llama3_merges") }
    func testQwen2() throws { try check("qwen2") }
    func testSmolLM2() throws { try check("smollm2") }
    func testGemmaByteFallback() throws { try check("gemma") }
    func testLlama2PrependLegacyMerges() throws { try check("llama2") }
    func testMetaspace() throws { try check("metaspace") }
    func testAddedTokenOptions() throws { try check("gpt2_added") }
    func testSplitWithICURegex() throws { try check("split_icu") }
    func testSplitBehaviorsAndInvert() throws { try check("split_behaviors") }
    func testNormalizerSequence() throws { try check("normalizers") }
    func testMetaspaceSplitAlways() throws { try check("metaspace_split") }
}
