// Every class of spec error names file:line:column, the key, and what is expected.
import XCTest
@testable import Pipeline

final class SpecErrorTests: XCTestCase {
    /// Loads `yaml` as pipeline.yaml (plus extra files) and returns the spec error thrown.
    func specError(_ yaml: String, files: [String: String] = [:], registry: KindRegistry = .testing,
                   file: StaticString = #filePath, line: UInt = #line) -> PipelineError? {
        let box = Sandbox()
        for (k, v) in files { box.write(k, v) }
        do {
            _ = try box.graph(yaml, registry: registry)
            XCTFail("expected a spec error", file: file, line: line)
            return nil
        } catch let e as PipelineError {
            return e
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
            return nil
        }
    }

    func check(_ e: PipelineError?, _ kind: SpecErrorKind, line: Int, column: Int, contains parts: [String],
               file: StaticString = #filePath, sourceLine: UInt = #line) {
        guard let e else { return }
        XCTAssertEqual(e.specKind, kind, "\(e)", file: file, line: sourceLine)
        XCTAssertEqual(e.location?.line, line, "\(e)", file: file, line: sourceLine)
        XCTAssertEqual(e.location?.column, column, "\(e)", file: file, line: sourceLine)
        XCTAssertTrue(e.description.contains("pipeline.yaml:\(line):\(column)"), "\(e)", file: file, line: sourceLine)
        for p in parts { XCTAssertTrue(e.description.contains(p), "'\(p)' not in: \(e)", file: file, line: sourceLine) }
    }

    func testYAMLSyntaxError() {
        check(specError("stages:\n  a:\n    kind: [shell\n  b: 1\n"), .yamlSyntax, line: 4, column: 4,
              contains: ["YAML syntax error", "flow sequence", "did not find expected ',' or ']'"])
        check(specError("stages:\n  a: {kind: test.echo, params: {value: \"x}\n"), .yamlSyntax, line: 3, column: 1,
              contains: ["quoted scalar", "unexpected end of stream"])
    }

    func testUnknownTopLevelKey() {
        check(specError("params: {}\nstagez:\n  a: {kind: shell}\n"), .unknownKey, line: 2, column: 1,
              contains: ["stagez", "did you mean 'stages'", "expected one of"])
    }

    func testUnknownStageKey() {
        check(specError("stages:\n  a:\n    kind: test.echo\n    parms: {value: 1}\n"), .unknownKey, line: 4, column: 5,
              contains: ["stages.a.parms", "did you mean 'params'"])
    }

    func testWrongParamType() {
        check(specError("stages:\n  a:\n    kind: test.loop\n    params:\n      steps: many\n"), .wrongType, line: 5, column: 14,
              contains: ["stages.a.params.steps", "expected integer", "got string \"many\""])
    }

    func testWrongStructureType() {
        check(specError("stages:\n  a:\n    kind: test.echo\n    inputs: [x]\n"), .wrongType, line: 4, column: 13,
              contains: ["stages.a.inputs", "expected a map"])
    }

    func testUnknownStageKind() {
        check(specError("stages:\n  a:\n    kind: shel\n"), .unknownStageKind, line: 3, column: 11,
              contains: ["stages.a.kind", "unknown stage kind 'shel'", "did you mean 'shell'", "available:"])
    }

    func testDefaultsForUnknownKind() {
        check(specError("defaults:\n  shel: {cmd: x}\nstages: {}\n"), .unknownStageKind, line: 2, column: 3,
              contains: ["defaults.shel", "did you mean 'shell'"])
    }

    func testUnknownParamInDefaults() {
        check(specError("defaults:\n  test.loop: {stepz: 2}\nstages:\n  l: {kind: test.loop}\n"), .unknownKey, line: 2, column: 15,
              contains: ["stages.l.params.stepz", "did you mean 'steps'"])
    }

    func testUnknownParamForKind() {
        check(specError("stages:\n  a:\n    kind: test.loop\n    params:\n      stepz: 3\n"), .unknownKey, line: 5, column: 7,
              contains: ["stages.a.params.stepz", "did you mean 'steps'"])
    }

    func testMissingRequiredParam() {
        check(specError("stages:\n  a:\n    kind: shell\n    outputs: []\n"), .missingKey, line: 2, column: 3,
              contains: ["stages.a.params", "missing required param 'cmd'"])
    }

    func testMissingStageReference() {
        check(specError("stages:\n  prep:\n    kind: test.echo\n    params: {value: 1}\n  b:\n    kind: test.concat\n    inputs:\n      x: prepp\n"),
              .missingReference, line: 8, column: 10, contains: ["stages.b.inputs.x", "missing stage 'prepp'", "did you mean 'prep'"])
    }

    func testMissingOutput() {
        check(specError("stages:\n  prep:\n    kind: test.echo\n    params: {value: 1}\n  b:\n    kind: test.concat\n    inputs:\n      x: prep/valu.json\n"),
              .missingOutput, line: 8, column: 10, contains: ["stages.b.inputs.x", "no output 'valu.json'", "did you mean 'value.json'"])
    }

    func testUnknownMatrixKeyInSelector() {
        check(specError("stages:\n  a:\n    kind: test.echo\n    matrix: {eps: [1, 2]}\n    params: {value: 1}\n  b:\n    kind: test.concat\n    inputs:\n      x: a[epz=1]\n"),
              .missingReference, line: 9, column: 10, contains: ["no matrix key 'epz'", "did you mean 'eps'"])
    }

    func testDuplicateStageName() {
        check(specError("stages:\n  a:\n    kind: test.echo\n    params: {value: 1}\n  a:\n    kind: test.echo\n    params: {value: 2}\n"),
              .duplicateName, line: 5, column: 3, contains: ["duplicate key", "first defined at ", "pipeline.yaml:2:3)"])
    }

    func testDuplicateStageAcrossInclude() {
        let e = specError("include: [common.yaml]\nstages:\n  a:\n    kind: test.echo\n    params: {value: 1}\n",
                          files: ["common.yaml": "stages:\n  a:\n    kind: test.echo\n    params: {value: 2}\n"])
        check(e, .duplicateName, line: 3, column: 3, contains: ["stages.a", "duplicate stage name", "common.yaml:2:3"])
    }

    func testCycle() {
        let yaml = """
        stages:
          a:
            kind: test.concat
            inputs: {x: c}
          b:
            kind: test.concat
            inputs: {x: a}
          c:
            kind: test.concat
            inputs: {x: b}
        """
        check(specError(yaml), .cycle, line: 7, column: 17, contains: ["dependency cycle: a -> c -> b -> a"])
    }

    func testUnknownInterpolation() {
        check(specError("params: {eps: 0.1}\nstages:\n  a:\n    kind: test.echo\n    params:\n      value: ${params.epz}\n"),
              .unknownInterpolation, line: 6, column: 14, contains: ["stages.a.params.value", "params.epz", "did you mean 'eps'", "known: eps"])
        check(specError("stages:\n  a:\n    kind: test.echo\n    params:\n      value: \"x ${matrix.k}\"\n"),
              .unknownInterpolation, line: 5, column: 14, contains: ["matrix.k", "no matrix"])
    }

    func testMissingFileInput() {
        check(specError("stages:\n  a:\n    kind: test.concat\n    inputs:\n      data: file:nope.txt\n"), .fileNotFound, line: 5, column: 13,
              contains: ["stages.a.inputs.data", "input file 'nope.txt' not found"])
    }

    func testOutputsRequiredForShell() {
        check(specError("stages:\n  a:\n    kind: shell\n    params: {cmd: 'true'}\n"), .missingKey, line: 2, column: 3,
              contains: ["stages.a.outputs", "needs 'outputs'"])
    }

    func testMatrixValuesMustBeAList() {
        check(specError("stages:\n  a:\n    kind: test.echo\n    matrix: {eps: 3}\n    params: {value: 1}\n"), .wrongType, line: 4, column: 19,
              contains: ["stages.a.matrix.eps", "expected a list"])
    }

    func testChoicesAndDidYouMeanDistance() {
        XCTAssertEqual(Suggest.closest(to: "stagez", in: ["params", "stages"]), "stages")
        XCTAssertNil(Suggest.closest(to: "zzzzzz", in: ["params", "stages"]))
    }

    /// A kind whose plan-time check fails in the ways `StageKind.check` may.
    struct CheckedKind: StageKind {
        struct Odd: Error {}
        var name: String { "test.checked" }
        var version: String { "1" }
        var paramsSchema: ParamsSchema { ParamsSchema([ParamSpec("limit", .int, default: .int(1)), ParamSpec("note", .string)]) }
        var outputs: OutputsDeclaration { .fixed(["out.txt"]) }
        func check(_ params: StageParams, inputNames: [String]) throws {
            let limit = try params.int("limit")
            if limit < 0 { throw StageCheckFailure(key: "params.limit", message: "must be >= 0, got \(limit)") }
            if limit == 99 { throw Odd() }
            if params.has("note") { _ = try params.int("note") }  // PipelineError.stageInput from the params reader
            if let bad = inputNames.first(where: { $0.hasPrefix("bad") }) { throw StageCheckFailure(key: "inputs.\(bad)", message: "not wanted") }
            if !inputNames.contains("data") { throw StageCheckFailure(key: "inputs", message: "missing required input 'data'") }
        }
        func run(_ context: StageContext) throws {}
    }

    func testKindChecksRunWhenThePipelineIsReadAndPointAtTheKey() {
        var registry = KindRegistry.testing
        registry.register(CheckedKind())
        let up = "stages:\n  up:\n    kind: test.echo\n    params: {value: 1}\n"
        // A param: its value's place, also when it comes from `defaults:` and in a matrix instance.
        check(specError(up + "  a:\n    kind: test.checked\n    inputs: {data: up}\n    params:\n      limit: -2\n", registry: registry),
              .invalidValue, line: 9, column: 14, contains: ["stages.a.params.limit", "must be >= 0, got -2"])
        check(specError("defaults:\n  test.checked: {limit: -1}\n" + up + "  a:\n    kind: test.checked\n    inputs: {data: up}\n", registry: registry),
              .invalidValue, line: 2, column: 25, contains: ["stages.a.params.limit", "got -1"])
        check(specError(up + "  a:\n    kind: test.checked\n    matrix: {limit: [1, -3]}\n    params: {limit: \"${matrix.limit}\"}\n    inputs: {data: up}\n",
                        registry: registry),
              .invalidValue, line: 8, column: 21, contains: ["stages.a.params.limit", "got -3"])
        // An input: its place; a missing input or an error without a key: the stage's place.
        check(specError(up + "  a:\n    kind: test.checked\n    inputs: {data: up, bad_one: up}\n", registry: registry),
              .invalidValue, line: 7, column: 24, contains: ["stages.a.inputs.bad_one", "not wanted"])
        check(specError(up + "  a:\n    kind: test.checked\n    inputs: {other: up}\n", registry: registry),
              .invalidValue, line: 5, column: 3, contains: ["stages.a.inputs", "missing required input 'data'"])
        check(specError(up + "  a:\n    kind: test.checked\n    inputs: {data: up}\n    params: {limit: 99}\n", registry: registry),
              .invalidValue, line: 5, column: 3, contains: ["stages.a:", "Odd"])
        // The params readers' own error names the param.
        check(specError(up + "  a:\n    kind: test.checked\n    inputs: {data: up}\n    params: {note: many}\n", registry: registry),
              .invalidValue, line: 8, column: 20, contains: ["stages.a.params.note", "expected an integer"])
    }

    /// The place of a nested key: the deepest node along `[index]` and `.key` steps.
    func testYAMLDescendantFollowsIndexesAndKeys() throws {
        let text = "sources:\n  - {name: a, schema: harmbench}\n  - name: b\n    schema:\n      prompt: text\n"
        let root = try XCTUnwrap(try YAMLParser.parse(text, file: "p.yaml"))
        let sources = try XCTUnwrap(root.pairs?.first?.value)
        func place(_ path: String) -> String { let l = sources.descendant(Substring(path)).location; return "\(l.line):\(l.column)" }
        XCTAssertEqual(place("[0].schema"), "2:23")
        XCTAssertEqual(place("[1].schema.prompt"), "5:15")
        XCTAssertEqual(place("[1]"), "3:5")
        // A step that does not exist stops at the last one that does.
        XCTAssertEqual(place("[1].missing"), "3:5")
        XCTAssertEqual(place("[7].schema"), place(""))
    }
}
