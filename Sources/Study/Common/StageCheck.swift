// Plan-time checks shared by the study kinds (`StageKind.check`): run when a pipeline is
// read, before any stage runs, so a mistake in the config of a late stage fails at once.
import Foundation
import Pipeline

enum StageCheck {
    /// Runs `body`, turning the configuration errors the param readers throw
    /// ("params.judges[0].kind: unknown judge kind ...") into `StageCheckFailure`s with that key.
    static func run(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let StudyError.invalidConfiguration(message) {
            if message.hasPrefix("params.") || message.hasPrefix("inputs"), let colon = message.range(of: ": ") {
                throw StageCheckFailure(key: String(message[..<colon.lowerBound]), message: String(message[colon.upperBound...]))
            }
            throw StageCheckFailure(key: "params", message: message)
        }
    }

    /// Checks input names: every `required` one given, none outside `required + optional`.
    static func inputs(_ names: [String], kind: String, required: [String], optional: [String]) throws {
        let known = required + optional.filter { !required.contains($0) }
        for name in names where !known.contains(name) {
            throw StageCheckFailure(key: "inputs.\(name)", message: "unknown input '\(name)' for kind '\(kind)' with these params"
                                        + Suggest.hint(name, known) + "; expected: " + known.joined(separator: ", "))
        }
        for name in required where !names.contains(name) {
            throw StageCheckFailure(key: "inputs", message: "missing required input '\(name)' for kind '\(kind)'")
        }
    }

    /// Judges and the stage's inputs: each input known (`required`, `optional` or read by a
    /// judge; a typo is reported as such first), the required ones given, then each judge's
    /// other needs (`JudgeSetup.check`). Returns the judges' plan.
    static func judgesAndInputs(_ maps: [ParamMap], inputNames: [String], kind: String,
                                required: [String], optional: [String]) throws -> JudgeSetup.Plan {
        let plan = try JudgeSetup.check(maps, inputNames: nil)
        try inputs(inputNames, kind: kind, required: required, optional: optional + plan.inputs)
        _ = try JudgeSetup.check(maps, inputNames: inputNames)
        return plan
    }

    /// A training kind's config (built from the params, then `validate()`d) and a model.
    static func training(_ params: StageParams, inputNames: [String], kind: String,
                         _ config: () throws -> any TrainingSettings) throws {
        try run {
            try config().validate()
            try model(params, inputNames: inputNames, kind: kind)
        }
    }

    /// A model from param `model` or input `model`, as `StageSupport.loadModel(context)` reads it.
    static func model(_ params: StageParams, inputNames: [String], kind: String) throws {
        guard params.has("model") || inputNames.contains("model") else {
            throw StageCheckFailure(key: "inputs", message: "kind '\(kind)' needs a model: set param 'model' (a path) or give an input 'model'")
        }
    }
}
