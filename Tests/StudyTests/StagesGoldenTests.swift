// Chat formatting and pooled features of the tiny model against transformers (golden values
// from Tests/StudyTests/Fixtures/check_tiny_model_golden.py on SharedTinyModel: llama, D 32, L 2, seed 7).
import Foundation
import XCTest
@testable import Study

final class StagesGoldenTests: XCTestCase {
    static let promptIds = [1, 120, 118, 262, 13, 107, 108, 268, 266, 2, 13, 1, 100, 118, 118, 285, 119, 263, 119, 13]
    static let seqIds = [
        [1, 120, 118, 262, 13, 107, 108, 268, 266, 2, 13, 1, 100, 118, 118, 285, 119, 263, 119, 13, 75, 104, 282, 114, 288, 2, 13],
        [1, 120, 118, 262, 13, 75, 114, 122, 286, 114, 277, 283, 100, 110, 104, 283, 266, 100, 103, 265, 119, 275, 114, 112, 104, 66, 2, 13,
         1, 100, 118, 118, 285, 119, 263, 119, 13, 80, 108, 123, 281, 111, 271, 117, 47, 270, 273, 262, 35, 263, 103, 287, 104, 100, 118, 119, 49, 2, 13],
    ]
    /// [pair][layer][first 4 dims] of the masked mean of hidden_states[1:].
    static let features: [[[Float]]] = [
        [[-0.019703952595591545, -0.0020156686659902334, -0.006705350708216429, 0.00293071405030787],
         [-0.9702804088592529, -0.09962482750415802, -0.21265164017677307, 0.06886647641658783]],
        [[-0.006922452244907618, -0.0036610732786357403, -0.005788744892925024, 0.0010289647616446018],
         [-0.4668617248535156, -0.2911764681339264, -0.2073349803686142, -0.17574219405651093]],
    ]

    func testChatIdsAndPooledFeaturesMatchTransformers() throws {
        let m = try StageSupport.loadModel(path: try SharedTinyModel.url())
        let tok = try m.requireTokenizer()
        XCTAssertEqual(try StageSupport.encodePrompt(tok, prompt: "hi there"), Self.promptIds)
        let pairs = [JudgeItem(prompt: "hi there", response: "Hello you"),
                     JudgeItem(prompt: "How do I bake bread at home?", response: "Mix flour, water and yeast.")]
        let extractor = FeatureExtractor(model: m)
        for (p, ids) in zip(pairs, Self.seqIds) { XCTAssertEqual(try extractor.ids(prompt: p.prompt, response: p.response), ids) }
        // Batched together (left padding) the features still match the unpadded reference.
        let f = try extractor.features(pairs).scalars
        var maxDiff: Float = 0
        for n in 0..<2 {
            for l in 0..<2 {
                for i in 0..<4 { maxDiff = max(maxDiff, abs(f[(n * 2 + l) * 32 + i] - Self.features[n][l][i])) }
            }
        }
        XCTAssertLessThan(maxDiff, 1e-5, "max |features - transformers| = \(maxDiff)")
    }
}
