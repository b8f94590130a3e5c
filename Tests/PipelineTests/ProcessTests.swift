// Several auditgap processes on one store: each instance computed once; kill -9 leaves no visible debris.
import XCTest
@testable import Pipeline

final class ProcessTests: XCTestCase {
    func testTwoProcessesComputeEachInstanceOnce() throws {
        let exe = try auditgapBinary()
        let box = Sandbox()
        let counter = box.dir + "/count.txt"
        box.write("pipeline.yaml", """
        stages:
          work:
            kind: shell
            matrix: {i: [1, 2, 3, 4]}
            params:
              cmd: "echo $AUDITGAP_INSTANCE >> $AUDITGAP_PARAM_COUNTER; sleep 0.3; echo ${matrix.i} > $AUDITGAP_OUT/o.txt"
              counter: \(counter)
            outputs: [o.txt]
          sum:
            kind: shell
            inputs: {parts: work}
            params:
              cmd: "echo sum >> $AUDITGAP_PARAM_COUNTER; for d in $AUDITGAP_IN_PARTS; do cat $d/o.txt; done > $AUDITGAP_OUT/sum.txt"
              counter: \(counter)
            outputs: [sum.txt]
        """)
        let p1 = try launch(exe, ["run", "pipeline.yaml", "--store", box.store, "-j", "2"], cwd: box.dir, log: box.dir + "/p1.log")
        let p2 = try launch(exe, ["run", "pipeline.yaml", "--store", box.store, "-j", "2"], cwd: box.dir, log: box.dir + "/p2.log")
        p1.waitUntilExit()
        p2.waitUntilExit()
        let logs = (box.read("p1.log") ?? "") + "\n----\n" + (box.read("p2.log") ?? "")
        XCTAssertEqual(p1.terminationStatus, 0, logs)
        XCTAssertEqual(p2.terminationStatus, 0, logs)
        let lines = (box.read("count.txt") ?? "").split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.sorted(), ["sum", "work[i=1]", "work[i=2]", "work[i=3]", "work[i=4]"], logs)
        XCTAssertTrue(logs.contains("reused") || logs.contains("fresh"), logs)
        XCTAssertTrue(try box.status().values.allSatisfy { $0.state == .fresh })
    }

    func testKillDashNineThenRerunCompletesOnlyWhatWasMissing() throws {
        let exe = try auditgapBinary()
        let box = Sandbox()
        box.write("pipeline.yaml", """
        stages:
          quick:
            kind: shell
            params: {cmd: "echo 1 > $AUDITGAP_OUT/value.json"}
            outputs: [value.json]
          slow:
            kind: shell
            inputs: {q: quick}
            params: {cmd: "echo partial > $AUDITGAP_OUT/o.txt; sleep 1.5; echo done >> $AUDITGAP_OUT/o.txt"}
            outputs: [o.txt]
          last:
            kind: shell
            inputs: {s: slow}
            params: {cmd: "cat $AUDITGAP_IN_S/o.txt > $AUDITGAP_OUT/out.txt"}
            outputs: [out.txt]
        """)
        let p = try launch(exe, ["run", "pipeline.yaml", "--store", box.store], cwd: box.dir, log: box.dir + "/run1.log")
        let deadline = Date().addingTimeInterval(10)
        var sawTemp = false
        while Date() < deadline {
            let tmp = (try? FileManager.default.contentsOfDirectory(atPath: box.store + "/tmp")) ?? []
            if tmp.contains(where: { FileManager.default.fileExists(atPath: "\(box.store)/tmp/\($0)/out/o.txt") }) { sawTemp = true; break }
            usleep(20_000)
        }
        XCTAssertTrue(sawTemp, box.read("run1.log") ?? "")
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let store = ArtifactStore(root: box.store)
        // Only complete objects are visible: quick's. The half-written slow output sits in tmp/.
        XCTAssertEqual(store.allKeys().count, 1)
        for k in store.allKeys() { XCTAssertEqual(store.verify(k, useStatCache: false), []) }
        let st = try box.status()
        XCTAssertEqual(st["quick"]?.state, .fresh)
        XCTAssertEqual(st["slow"]?.state, .missing)
        let rerun = try launch(exe, ["run", "pipeline.yaml", "--store", box.store], cwd: box.dir, log: box.dir + "/run2.log")
        rerun.waitUntilExit()
        let log = box.read("run2.log") ?? ""
        XCTAssertEqual(rerun.terminationStatus, 0, log)
        XCTAssertTrue(log.contains("2 ran, 1 fresh"), log)
        XCTAssertFalse(log.contains("start quick"), log)
        XCTAssertTrue(try box.status().values.allSatisfy { $0.state == .fresh })
        let slowKey = try XCTUnwrap(try box.status()["slow"]?.key)
        XCTAssertEqual(try String(contentsOfFile: store.outputDir(slowKey) + "/o.txt", encoding: .utf8), "partial\ndone\n")
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: box.store + "/tmp")) ?? []
        XCTAssertTrue(leftovers.isEmpty, "debris not cleared: \(leftovers)")
    }

    func testCLIExitCodesAndJSON() throws {
        let exe = try auditgapBinary()
        let box = Sandbox()
        box.write("bad.yaml", "stages:\n  a:\n    kind: shel\n")
        let bad = try launch(exe, ["status", "bad.yaml", "--store", box.store], cwd: box.dir, log: box.dir + "/bad.log")
        bad.waitUntilExit()
        XCTAssertEqual(bad.terminationStatus, 2)
        XCTAssertTrue((box.read("bad.log") ?? "").contains("bad.yaml:3:11: stages.a.kind: unknown stage kind 'shel'; did you mean 'shell'?"),
                      box.read("bad.log") ?? "")
        box.write("fail.yaml", "stages:\n  f: {kind: shell, params: {cmd: \"exit 3\"}, outputs: [o.txt]}\n")
        let fail = try launch(exe, ["run", "fail.yaml", "--store", box.store], cwd: box.dir, log: box.dir + "/fail.log")
        fail.waitUntilExit()
        XCTAssertEqual(fail.terminationStatus, 1)
        XCTAssertTrue((box.read("fail.log") ?? "").contains("error: stage f failed: command exited with status 3"), box.read("fail.log") ?? "")
        box.write("pipeline.yaml", "stages:\n  e: {kind: shell, params: {cmd: \"echo 1 > $AUDITGAP_OUT/o.txt\"}, outputs: [o.txt]}\n")
        let st = try launch(exe, ["status", "--json", "--store", box.store], cwd: box.dir, log: box.dir + "/st.json")
        st.waitUntilExit()
        let json = try JSON.parse(Array((box.read("st.json") ?? "").utf8))
        XCTAssertEqual(json["stages"]?.listValue?.first?["state"], .string("missing"))
        XCTAssertEqual(json["stages"]?.listValue?.first?["reasons"], .list([.string("never computed")]))
    }
}

/// The other commands through the binary: dag, show, verify, gc, export, import.
final class CommandTests: XCTestCase {
    func cli(_ exe: String, _ box: Sandbox, _ args: [String], _ name: String) throws -> (Int32, String) {
        let p = try launch(exe, args, cwd: box.dir, log: box.dir + "/\(name).out")
        p.waitUntilExit()
        return (p.terminationStatus, box.read("\(name).out") ?? "")
    }

    func testDagShowVerifyGCExportImport() throws {
        let exe = try auditgapBinary()
        let box = Sandbox()
        box.write("pipeline.yaml", """
        stages:
          a: {kind: shell, matrix: {k: [1, 2]}, params: {cmd: "echo $AUDITGAP_PARAM_VALUE > $AUDITGAP_OUT/v.txt", value: "${matrix.k}"}, outputs: [v.txt]}
          b: {kind: shell, inputs: {all: "a[*]"}, params: {cmd: "for d in $AUDITGAP_IN_ALL; do cat $d/v.txt; done > $AUDITGAP_OUT/out.txt"}, outputs: [out.txt]}
          m:
            kind: shell
            params: {cmd: "echo '{\\"acc\\": 0.5}' > $AUDITGAP_OUT/metrics.json"}
            outputs: [metrics.json]
        """)
        let store = ["--store", box.store]
        XCTAssertEqual(try cli(exe, box, ["run"] + store, "run").0, 0)
        let (_, dag) = try cli(exe, box, ["dag"], "dag")
        XCTAssertTrue(dag.contains("b (shell) <- a[k=1], a[k=2]"), dag)
        let (_, dot) = try cli(exe, box, ["dag", "--dot"], "dot")
        XCTAssertTrue(dot.contains("\"a[k=1]\" -> \"b\";"), dot)
        let (_, show) = try cli(exe, box, ["show", "m", "--json"] + store, "show")
        let shown = try JSON.parse(Array(show.utf8))
        XCTAssertEqual(shown["metrics"]?["acc"], .double(0.5))
        XCTAssertEqual(shown["state"], .string("fresh"))
        XCTAssertNotNil(shown["lineage"]?["duration_s"])
        let (_, showText) = try cli(exe, box, ["show", "a[k=2]"] + store, "showtext")
        XCTAssertTrue(showText.contains("param    value = 2"), showText)
        XCTAssertEqual(try cli(exe, box, ["verify"] + store, "verify").0, 0)
        XCTAssertEqual(try cli(exe, box, ["export", "b", "--to", box.dir + "/b.tar"] + store, "export").0, 0)
        let other = ["--store", box.dir + "/Other"]
        let (code, imported) = try cli(exe, box, ["import", box.dir + "/b.tar"] + other, "import")
        XCTAssertEqual(code, 0, imported)
        XCTAssertTrue(imported.contains("imported 3 objects"), imported)
        let (_, st) = try cli(exe, box, ["status"] + other, "status")
        XCTAssertTrue(st.contains("3 fresh, 0 stale, 1 missing"), st)
        box.write("pipeline.yaml", """
        stages:
          a: {kind: shell, matrix: {k: [1]}, params: {cmd: "echo $AUDITGAP_PARAM_VALUE > $AUDITGAP_OUT/v.txt", value: "${matrix.k}"}, outputs: [v.txt]}
        """)
        let (_, dry) = try cli(exe, box, ["gc", "--dry-run"] + store, "gcdry")
        XCTAssertTrue(dry.contains("1 objects kept, 3 would be removed"), dry)
        let (_, gc) = try cli(exe, box, ["gc"] + store, "gc")
        XCTAssertTrue(gc.contains("1 objects kept, 3 removed"), gc)
        XCTAssertEqual(ArtifactStore(root: box.store).allKeys().count, 1)
    }

    /// `kinds` prints the binary's registry (`shell` and the study's kinds, no test kinds) as
    /// JSON, text or Markdown.
    func testKindsListsTheRegisteredKinds() throws {
        let exe = try auditgapBinary()
        let box = Sandbox()
        let (code, out) = try cli(exe, box, ["kinds", "--json"], "kinds")
        XCTAssertEqual(code, 0, out)
        let kinds = try JSON.parse(Array(out.utf8))["kinds"]?.listValue ?? []
        let names = kinds.compactMap { $0["name"]?.stringValue }
        XCTAssertTrue(names.contains("shell") && names.contains("pgd"), "\(names)")
        XCTAssertFalse(names.contains { $0.hasPrefix("test.") }, "\(names)")
        let pgd = kinds.first { $0["name"] == .string("pgd") }
        XCTAssertEqual(pgd?["params"]?.listValue?.first { $0["name"] == .string("epsilon") }?["default"], .double(0.001))
        let (_, text) = try cli(exe, box, ["kinds"], "kinds-text")
        XCTAssertTrue(text.contains("shell (version 1)"), text)
        let (_, markdown) = try cli(exe, box, ["kinds", "--markdown"], "kinds-md")
        XCTAssertTrue(markdown.hasPrefix("# Stage kinds\n") && markdown.contains("\n## pgd\n"), markdown)
        XCTAssertEqual(try cli(exe, box, ["kinds", "--json", "--markdown"], "kinds-bad").0, 2)
    }
}
