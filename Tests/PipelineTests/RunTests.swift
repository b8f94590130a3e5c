// Scheduler behaviour: failures, --keep-going, --force, --only, -j, corruption, verify/gc/export/import.
import XCTest
@testable import Pipeline

final class RunTests: XCTestCase {
    static let branches = """
    stages:
      ok1: {kind: test.echo, params: {value: 1}}
      bad: {kind: test.fail, params: {message: "boom here"}}
      after_bad: {kind: test.concat, inputs: {x: bad}}
      ok2: {kind: test.concat, inputs: {x: ok1}}
    """

    func testFailureStopsAndKeepsLogButPublishesNothing() throws {
        let box = Sandbox()
        let r = try box.run(Self.branches)
        XCTAssertEqual(r.summary.exitCode, 1)
        XCTAssertEqual(r.summary.failed.map(\.name), ["bad"])
        XCTAssertEqual(r.summary.failed.first?.message, "boom here")
        XCTAssertTrue(r.summary.skipped.contains("after_bad"))
        XCTAssertTrue(r.lines.contains { $0.contains("FAILED bad: boom here") && $0.contains("log: ") }, "\(r.lines)")
        let st = try box.status()
        let key = try XCTUnwrap(st["bad"]?.key)
        XCTAssertFalse(FileManager.default.fileExists(atPath: ArtifactStore(root: box.store).objectDir(key)))
        let log = try XCTUnwrap(box.read("Artifacts/logs/\(key).log"))
        XCTAssertTrue(log.contains("FAILED: boom here"))
        XCTAssertTrue((try FileManager.default.contentsOfDirectory(atPath: box.store + "/tmp")).isEmpty)
    }

    func testKeepGoingRunsIndependentBranches() throws {
        let box = Sandbox()
        let r = try box.run(Self.branches) { $0.keepGoing = true }
        XCTAssertEqual(Set(r.summary.ran), ["ok1", "ok2"])
        XCTAssertEqual(r.summary.skipped, ["after_bad"])
        XCTAssertTrue(r.lines.contains("skipped after_bad (upstream bad failed)"), "\(r.lines)")
    }

    func testParallelRunsEverythingOnce() throws {
        let box = Sandbox()
        let yaml = """
        stages:
          s:
            kind: shell
            matrix: {i: [1, 2, 3, 4]}
            params: {cmd: "date +%s%N > $AUDITGAP_OUT/t0; sleep 0.3; date +%s%N > $AUDITGAP_OUT/t1; echo ${matrix.i} > $AUDITGAP_OUT/o.txt"}
            outputs: [o.txt]
          all: {kind: test.concat, inputs: {x: "s/o.txt"}}
        """
        let r = try box.run(yaml) { $0.jobs = 4 }
        XCTAssertEqual(r.summary.ran.count, 5)
        let st = try box.status()
        let store = ArtifactStore(root: box.store)
        // The four sleeps overlap: some instance starts before another one ends.
        let spans: [(Int, Int)] = try (1...4).map { i in
            let dir = store.outputDir(st["s[i=\(i)]"]!.key!)
            func read(_ f: String) throws -> Int { Int(try String(contentsOfFile: dir + "/" + f, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 }
            return (try read("t0"), try read("t1"))
        }
        let overlapping = spans.enumerated().contains { i, a in spans.enumerated().contains { j, b in i != j && b.0 < a.1 && a.0 < b.1 } }
        XCTAssertTrue(overlapping, "no two instances ran at once with -j 4: \(spans)")
        let out = try String(contentsOfFile: store.outputDir(st["all"]!.key!) + "/out.txt", encoding: .utf8)
        XCTAssertEqual(out, "1\n2\n3\n4\n")
    }

    func testForceAndOnly() throws {
        let box = Sandbox()
        let yaml = """
        stages:
          a: {kind: test.echo, matrix: {k: [x, y]}, params: {value: "${matrix.k}"}}
          b: {kind: test.concat, inputs: {i: "a[k=x]"}}
        """
        try box.run(yaml)
        let forced = try box.run { $0.force = ["a[k=x]"] }
        XCTAssertEqual(forced.summary.ran, ["a[k=x]"])
        XCTAssertEqual(forced.summary.cutoff, ["b"])
        // --only runs just the named instance; an upstream that is not fresh is an error.
        let changed = yaml.replacingOccurrences(of: "\"${matrix.k}\"", with: "\"${matrix.k}!\"")
        XCTAssertThrowsError(try box.run(changed) { $0.only = ["b"] }) { e in
            XCTAssertTrue("\(e)".contains("upstream a[k=x] is stale"), "\(e)")
        }
        let only = try box.run(changed) { $0.only = ["a[k=y]"] }
        XCTAssertEqual(only.summary.ran, ["a[k=y]"])
        XCTAssertEqual(try box.status()["a[k=x]"]?.state, .stale)
        XCTAssertThrowsError(try box.run { $0.only = ["nope"] }) { e in XCTAssertTrue("\(e)".contains("no stage or instance 'nope'")) }
    }

    func testDryRunPrintsPlanAndRunsNothing() throws {
        let box = Sandbox()
        let r = try box.run(RunTests.branches) { $0.dryRun = true }
        XCTAssertTrue(r.lines.contains("would run ok1: never computed"), "\(r.lines)")
        XCTAssertTrue(r.summary.ran.isEmpty)
        XCTAssertEqual(try box.status()["ok1"]?.state, .missing)
    }

    func testCorruptedObjectIsReportedAndRecomputed() throws {
        let box = Sandbox()
        let yaml = "stages:\n  a: {kind: test.echo, params: {value: 12345}}\n  b: {kind: test.concat, inputs: {x: a}}\n"
        try box.run(yaml)
        let store = ArtifactStore(root: box.store)
        let keyA = try XCTUnwrap(try box.status()["a"]?.key)
        // Same size, different bytes: only a re-hash can tell.
        try Data("54321".utf8).write(to: URL(fileURLWithPath: store.outputDir(keyA) + "/value.json"))
        let (checked, problems) = store.verifyAll()
        XCTAssertEqual(checked, 2)
        XCTAssertEqual(problems.map(\.key), [keyA])
        XCTAssertTrue(problems[0].problems[0].contains("value.json: sha256 mismatch"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: store.objectDir(keyA)), "verify never deletes")
        // A missing file is caught by status's cheap check.
        let keyB = try XCTUnwrap(try box.status()["b"]?.key)
        try FileManager.default.removeItem(atPath: store.outputDir(keyB) + "/out.txt")
        let st = try box.status()
        XCTAssertEqual(st["b"]?.state, .stale)
        XCTAssertTrue(st["b"]?.reasons.first?.contains("corrupted (out.txt missing)") ?? false, "\(st["b"]!.reasons)")
        // Running b reads a: a is re-hashed, quarantined and recomputed; b recomputed.
        let r = try box.run()
        XCTAssertEqual(Set(r.summary.ran), ["a", "b"])
        XCTAssertTrue(r.lines.contains { $0.hasPrefix("corrupted a") }, "\(r.lines)")
        XCTAssertEqual(store.verifyAll().problems.count, 0)
        XCTAssertEqual(try String(contentsOfFile: store.outputDir(keyB) + "/out.txt", encoding: .utf8), "12345")
    }

    func testGCRemovesUnreferencedObjects() throws {
        let box = Sandbox()
        try box.run("stages:\n  a: {kind: test.echo, params: {value: 1}}\n")
        try box.run("stages:\n  a: {kind: test.echo, params: {value: 2}}\n")
        let store = ArtifactStore(root: box.store)
        XCTAssertEqual(store.allKeys().count, 2)
        let keep = try store.referencedKeys([try box.planner()])
        let dry = try store.gc(keeping: keep, dryRun: true)
        XCTAssertEqual(dry.removed.count, 1)
        XCTAssertEqual(store.allKeys().count, 2)
        let real = try store.gc(keeping: keep, dryRun: false)
        XCTAssertEqual(real.removed, dry.removed)
        XCTAssertEqual(store.allKeys(), Array(keep))
        XCTAssertEqual(try box.status()["a"]?.state, .fresh)
    }

    func testExportImportBetweenStores() throws {
        let box = Sandbox()
        let yaml = "stages:\n  a: {kind: test.echo, params: {value: 1}}\n  b: {kind: test.concat, inputs: {x: a}}\n"
        try box.run(yaml)
        let src = ArtifactStore(root: box.store)
        let st = try box.status()
        let tar = box.dir + "/out.tar"
        try src.export(keys: [st["a"]!.key!, st["b"]!.key!], to: tar)
        let other = ArtifactStore(root: box.dir + "/Other")
        let r = try other.importArchive(tar)
        XCTAssertEqual(r.imported.count, 2)
        XCTAssertTrue(r.corrupted.isEmpty)
        XCTAssertEqual(try other.importArchive(tar).alreadyPresent.count, 2)
        let planner = Planner(graph: try box.graph(), store: other)
        XCTAssertTrue(try planner.status().allSatisfy { $0.state == .fresh })
        XCTAssertNotNil(try? JSON.read(other.objectDir(st["b"]!.key!) + "/lineage.json")["inputs"])
    }

    func testStageContextAccessorsGiveClearErrors() throws {
        let p = StageParams(["n": .int(3), "s": .string("x"), "l": .list([.string("a"), .int(1)])], instance: "st[k=1]")
        XCTAssertEqual(try p.int("n"), 3)
        XCTAssertEqual(try p.double("n"), 3)
        XCTAssertThrowsError(try p.int("s")) { XCTAssertEqual("\($0)", "stage st[k=1]: params.s: expected an integer, got string x") }
        XCTAssertThrowsError(try p.string("m")) { XCTAssertTrue("\($0)".contains("params.m: missing parameter"), "\($0)") }
        XCTAssertThrowsError(try p.strings("l")) { XCTAssertTrue("\($0)".contains("found integer 1"), "\($0)") }
        XCTAssertEqual(try p.int("absent", default: 7), 7)
    }
}

final class ReadOnlyStoreTests: XCTestCase {
    func testReadOnlyStoreServesReadsAndFreshRuns() throws {
        let box = Sandbox()
        let yaml = "stages:\n  a: {kind: test.echo, params: {value: 1}}\n"
        try box.run(yaml)
        let before = try FileManager.default.contentsOfDirectory(atPath: box.store + "/logs")
        let ro = ArtifactStore(root: box.store, readOnly: true)
        XCTAssertFalse(ro.writable)
        let planner = Planner(graph: try box.graph(), store: ro)
        XCTAssertEqual(try planner.status().map(\.state), [.fresh])
        var options = RunOptions()
        options.progress = .silent
        XCTAssertEqual(try Scheduler(planner: planner, output: { _ in }).run(options).exitCode, 0)
        let stale = Planner(graph: try box.graph("stages:\n  a: {kind: test.echo, params: {value: 2}}\n"), store: ro)
        XCTAssertThrowsError(try Scheduler(planner: stale, output: { _ in }).run(options)) {
            XCTAssertTrue("\($0)".contains("read-only"), "\($0)")
        }
        XCTAssertEqual(ro.verifyAll().problems.count, 0)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: box.store + "/logs"), before)
    }
}

/// A fan-in kind that labels each input artifact with its producer's matrix values.
struct TableKind: StageKind {
    var name: String { "test.table" }
    var version: String { "1" }
    var paramsSchema: ParamsSchema { .empty }
    var inputs: InputsDeclaration { .named([InputSpec("rows", multiple: true)]) }
    var outputs: OutputsDeclaration { .fixed(["table.txt"]) }
    func run(_ context: StageContext) throws {
        var text = ""
        for a in try context.artifacts("rows") {
            let value = String(decoding: FileManager.default.contents(atPath: a.url.path + "/value.json") ?? Data(), as: UTF8.self)
            text += "\(a.instance ?? "-") eps=\(a.matrix["eps"]?.description ?? "?") \(value)\n"
        }
        try Data(text.utf8).write(to: context.output("table.txt"))
    }
}

final class StageAPITests: XCTestCase {
    func testFanInArtifactsCarryProducerMatrix() throws {
        let box = Sandbox()
        var registry = KindRegistry.testing
        registry.register(TableKind())
        let yaml = """
        stages:
          pgd: {kind: test.echo, matrix: {eps: [0.1, 0.2]}, params: {value: "${matrix.eps}"}}
          table: {kind: test.table, inputs: {rows: "pgd[*]"}}
        """
        XCTAssertEqual(try box.run(yaml, registry: registry).summary.exitCode, 0)
        let key = try XCTUnwrap(try box.status(registry: registry)["table"]?.key)
        let table = try String(contentsOfFile: ArtifactStore(root: box.store).outputDir(key) + "/table.txt", encoding: .utf8)
        XCTAssertEqual(table, "pgd[eps=0.1] eps=0.1 0.1\npgd[eps=0.2] eps=0.2 0.2\n")
        // The declared inputs are validated before anything runs.
        XCTAssertThrowsError(try box.graph("stages:\n  t: {kind: test.table, inputs: {rowz: file:pipeline.yaml}}\n", registry: registry)) {
            XCTAssertTrue("\($0)".contains("unknown input 'rowz' for kind 'test.table'; did you mean 'rows'?"), "\($0)")
        }
    }
}
