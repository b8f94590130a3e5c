import Foundation
import XCTest
@testable import Models
import Numerics

/// Writes saved models for scripts/check_saved_models.py (transformers / PEFT load them).
/// Runs only when AUDITGAP_EXPORT_DIR is set.
final class ExportForPythonTests: XCTestCase {
    func testExportSavedModels() throws {
        guard let path = ProcessInfo.processInfo.environment["AUDITGAP_EXPORT_DIR"] else {
            throw XCTSkip("set AUDITGAP_EXPORT_DIR to export saved models for the Python check")
        }
        let root = URL(fileURLWithPath: path)
        let base = try ArchFixture("llama"), lora = try ArchFixture("llama_lora")
        let model = try base.model()
        try model.loadLoRA(directory: lora.dir)
        // One SGD step on the adapters so the saved adapter differs from the fixture's.
        let batch = base.batch
        let targets = TransformerModel.nextTokenTargets(batch)
        _ = try model.trainingBackward(batch) { Ops.crossEntropy(logits: $0.logits!, targets: targets) }
        let sgd = SGD(parameters: model.trainableParameters.map(\.variable), learningRate: 0.5)
        sgd.step()
        try model.saveLoRA(to: root.appendingPathComponent("llama_adapter"))
        try model.saveHF(to: root.appendingPathComponent("llama_merged"), sourceDirectory: base.dir)
        let logits = try XCTUnwrap(try model.forward(batch).logits)
        var arrays = ["llama_lora.logits": logits]
        for name in ["qwen2", "gemma2", "gpt2", "gpt2cls"] {
            let fx = try ArchFixture(name)
            let m = try fx.model()
            try m.saveHF(to: root.appendingPathComponent(name + "_generated"))
            let out = try m.forward(fx.batch)
            arrays[name + ".out"] = name == "gpt2cls" ? try XCTUnwrap(out.scores) : try XCTUnwrap(out.logits)
        }
        try SafeTensors.write(arrays, to: root.appendingPathComponent("swift_outputs.safetensors"))
        let ids = try JSONSerialization.data(withJSONObject: ["ids": base.intRows("ids"), "mask": base.intRows("mask")])
        try ids.write(to: root.appendingPathComponent("inputs.json"))
    }
}
