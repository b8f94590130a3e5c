import XCTest
@testable import Models
import Numerics

/// Batches, positions, layer references and input validation.
final class ForwardTypesTests: XCTestCase {
    func testLeftPaddingAndPositions() {
        let b = TokenBatch.leftPadded([[5, 6, 7], [9]], padId: 0)
        XCTAssertEqual(b.ids, [5, 6, 7, 0, 0, 9])
        XCTAssertEqual(b.mask, [1, 1, 1, 0, 0, 1])
        XCTAssertEqual(b.positions(.fromMask), [0, 1, 2, 0, 0, 0])
        XCTAssertEqual(b.positions(.sequential), [0, 1, 2, 0, 1, 2])
    }

    func testLayerRefs() {
        XCTAssertEqual(LayerRef("embedding"), .embedding)
        XCTAssertEqual(LayerRef("mid")?.blockIndex(layers: 30), 15)
        XCTAssertEqual(LayerRef("last")?.blockIndex(layers: 30), 29)
        XCTAssertEqual(LayerRef("7"), .block(7))
        XCTAssertNil(LayerRef("seven"))
        XCTAssertEqual(LayerRef.embedding.hiddenIndex(layers: 4), 0)
        XCTAssertEqual(LayerRef.last.hiddenIndex(layers: 4), 4)
    }

    func testBadInputsThrow() throws {
        let model = try ArchFixture("llama").model()
        XCTAssertThrowsError(try model.forward(TokenBatch(ids: [[1, 999]])))
        XCTAssertThrowsError(try model.generate(prompts: [[]]))
        XCTAssertThrowsError(try model.prefix(TokenBatch(ids: [[1, 2]]), upTo: .block(9)))
        var weights = try readSafeTensors(ArchFixture("llama").dir.appendingPathComponent("model.safetensors"))
        weights["model.layers.1.mlp.up_proj.weight"] = nil
        XCTAssertThrowsError(try TransformerModel(config: try XCTUnwrap(ArchFixture("llama").config), weights: weights)) { e in
            XCTAssertEqual(e as? ModelError, .missingWeight(name: "model.layers.1.mlp.up_proj.weight", source: "llama model"))
        }
    }

    func testNextTokenTargetsSkipPadding() {
        let b = TokenBatch.leftPadded([[5, 6, 7], [9, 8]], padId: 0)
        XCTAssertEqual(TransformerModel.nextTokenTargets(b), [6, 7, -100, -100, 8, -100])
    }
}
