// The data, judge, probe and behaviour kinds are registered, versioned, and carry the paper's defaults.
import Foundation
import XCTest
import Pipeline
@testable import Study

final class StagesRegistryTests: XCTestCase {
    func testKindsRegisteredWithPaperDefaults() throws {
        let registry = StageSandbox.registry
        let names = ["synthetic-model", "load-prompts", "prepare-eval", "contrast-triples", "refusal-filter", "synthetic-refusals",
                     "generate", "judge", "features", "probe", "probe-eval", "behavior"]
        for n in names {
            let k = try XCTUnwrap(registry.kind(named: n), n)
            XCTAssertEqual(k.version, "1", n)
        }
        func d(_ kind: String, _ param: String) -> Value? { registry.kind(named: kind)?.paramsSchema.spec(param)?.defaultValue }
        // Appendix B, Table 3.
        XCTAssertEqual(d("probe", "projection"), .int(512))
        XCTAssertEqual(d("probe", "learning_rate"), .double(3e-4))
        XCTAssertEqual(d("probe", "weight_decay"), .double(1e-4))
        XCTAssertEqual(d("probe", "batch_size"), .int(32))
        XCTAssertEqual(d("probe", "epochs"), .int(30))
        XCTAssertEqual(d("probe", "train_fraction"), .double(0.8))
        XCTAssertEqual(d("probe", "standardize"), .bool(false))
        XCTAssertEqual(d("features", "max_tokens"), .int(512))
        // Appendix A.2, A.4, A.5.
        XCTAssertEqual(d("prepare-eval", "min_length"), .int(10))
        XCTAssertEqual(d("prepare-eval", "train_fraction"), .double(0.9))
        XCTAssertEqual(d("refusal-filter", "min_length"), .int(10))
        XCTAssertEqual(d("generate", "chat_template"), .bool(true))
        XCTAssertNil(d("generate", "temperature"), "greedy by default")
    }
}
