// Small in-process stage kinds that pipeline tests run: they echo, concatenate, fail and count.
import Foundation
@testable import Pipeline

extension KindRegistry {
    /// The built-in kinds plus the test kinds (`test.echo`, `test.concat`, `test.fail`, `test.loop`).
    static var testing: KindRegistry {
        var r = KindRegistry.builtin()
        for k in TestKinds.all { r.register(k) }
        return r
    }
}

/// Small in-process kinds for pipeline tests.
enum TestKinds {
    static let all: [any StageKind] = [Echo(), Concat(), Fail(), Loop()]

    /// `test.echo`: writes `value` (any param value) as JSON to `value.json`.
    struct Echo: StageKind {
        var name: String { "test.echo" }
        var version: String { "1" }
        var paramsSchema: ParamsSchema { ParamsSchema([ParamSpec("value", .any, required: true)]) }
        var outputs: OutputsDeclaration { .fixed(["value.json"]) }
        func run(_ context: StageContext) throws {
            try Data(try context.params.value("value").canonicalJSON.utf8).write(to: context.output("value.json"))
        }
    }

    /// `test.concat`: concatenates every input file (directories: their files in path order) into `out.txt`.
    struct Concat: StageKind {
        var name: String { "test.concat" }
        var version: String { "1" }
        var paramsSchema: ParamsSchema { ParamsSchema([ParamSpec("prefix", .string, default: .string(""))]) }
        var outputs: OutputsDeclaration { .fixed(["out.txt"]) }
        func run(_ context: StageContext) throws {
            var out = Data(try context.params.string("prefix").utf8)
            for name in context.inputNames {
                for url in try context.inputs(name) {
                    for file in FileTree.files(under: url) where !file.hasSuffix("metrics.json") {
                        out.append(FileManager.default.contents(atPath: file) ?? Data())
                    }
                }
            }
            try out.write(to: context.output("out.txt"))
        }
    }

    /// `test.fail`: always fails with `message`.
    struct Fail: StageKind {
        var name: String { "test.fail" }
        var version: String { "1" }
        var paramsSchema: ParamsSchema { ParamsSchema([ParamSpec("message", .string, default: .string("failed on purpose"))]) }
        var outputs: OutputsDeclaration { .fixed([]) }
        func run(_ context: StageContext) throws {
            throw PipelineError.stageFailed(instance: context.instanceName, message: try context.params.string("message"),
                                            log: context.logger.path)
        }
    }

    /// `test.loop`: counts to `steps` with a progress reporter and writes the count to `count.txt`.
    struct Loop: StageKind {
        var name: String { "test.loop" }
        var version: String { "1" }
        var paramsSchema: ParamsSchema { ParamsSchema([ParamSpec("steps", .int, default: .int(10))]) }
        var outputs: OutputsDeclaration { .fixed(["count.txt"]) }
        func run(_ context: StageContext) throws {
            let steps = try context.params.int("steps")
            let p = context.progress("loop", total: steps)
            for _ in 0..<steps { p.advance() }
            p.finish()
            try Data(String(steps).utf8).write(to: context.output("count.txt"))
        }
    }
}
