// Invalidation semantics: exactly the changed instances and their descendants rerun.
import XCTest
@testable import Pipeline

/// A kind whose version tests can bump.
struct VersionedKind: StageKind {
    var version: String
    var name: String { "test.versioned" }
    var paramsSchema: ParamsSchema { ParamsSchema([ParamSpec("x", .int, default: .int(0))]) }
    var outputs: OutputsDeclaration { .fixed(["x.txt"]) }
    func run(_ context: StageContext) throws {
        try Data("\(try context.params.int("x")) v\(version)".utf8).write(to: context.output("x.txt"))
    }
}

final class InvalidationTests: XCTestCase {
    static let chain = """
    params:
      scale: 2
    stages:
      a:
        kind: test.echo
        params: {value: 1}
      b:
        kind: test.concat
        inputs: {in: a}
        params: {prefix: "${params.scale}"}
      c:
        kind: test.concat
        inputs: {in: b}
      d:
        kind: test.echo
        params: {value: independent}
    """

    func testMiddleParamChangeRerunsOnlyItAndDescendants() throws {
        let box = Sandbox()
        XCTAssertEqual(Set(try box.run(Self.chain).summary.ran), ["a", "b", "c", "d"])
        let changed = Self.chain.replacingOccurrences(of: "scale: 2", with: "scale: 3")
        let st = try box.status(changed)
        XCTAssertEqual(st["a"]?.state, .fresh)
        XCTAssertEqual(st["d"]?.state, .fresh)
        XCTAssertEqual(st["b"]?.state, .stale)
        XCTAssertEqual(st["b"]?.reasons, ["param prefix changed \"2\" -> \"3\""])
        XCTAssertEqual(st["c"]?.state, .stale)
        XCTAssertEqual(st["c"]?.reasons, ["upstream b will rerun"])
        let r = try box.run(changed)
        XCTAssertEqual(r.summary.ran, ["b", "c"])
        XCTAssertEqual(r.summary.fresh, 2)
        XCTAssertEqual(try box.run(changed).summary.ran, [])
    }

    func testReorderingKeysAndFormattingRerunsNothing() throws {
        let box = Sandbox()
        try box.run(Self.chain)
        let reordered = """
        stages:
          d: {params: {value: "independent"}, kind: test.echo}
          c:
            inputs:
              in: [b]
            kind: test.concat
          b: {params: {prefix: "${params.scale}"}, inputs: {in: "a"}, kind: "test.concat"}
          a:
            params:
              value: 1   # same value
            kind: test.echo
        params: {scale: 2}
        """
        XCTAssertTrue(try box.status(reordered).values.allSatisfy { $0.state == .fresh })
        XCTAssertEqual(try box.run(reordered).summary.ran, [])
    }

    func testChangedInputFileRerunsExactlyItsConsumers() throws {
        let box = Sandbox()
        box.write("one.txt", "1")
        box.write("two.txt", "2")
        let yaml = """
        stages:
          u1: {kind: test.concat, inputs: {f: "file:one.txt"}}
          u2: {kind: test.concat, inputs: {f: ["file:one.txt", "file:two.txt"]}}
          v:  {kind: test.concat, inputs: {f: "file:two.txt"}}
          w:  {kind: test.concat, inputs: {x: u1}}
        """
        XCTAssertEqual(try box.run(yaml).summary.ran.count, 4)
        box.write("one.txt", "one changed")
        let st = try box.status()
        XCTAssertEqual(st["u1"]?.reasons, ["input f changed (file one.txt)"])
        XCTAssertEqual(st["w"]?.reasons, ["upstream u1 will rerun"])
        XCTAssertEqual(st["v"]?.state, .fresh)
        XCTAssertEqual(Set(try box.run().summary.ran), ["u1", "u2", "w"])
        // Touching a file without changing its content reruns nothing.
        box.write("two.txt", "2")
        XCTAssertEqual(try box.run().summary.ran, [])
    }

    func testMatrixAddingOneValueRunsOnlyNewInstances() throws {
        let box = Sandbox()
        let yaml = """
        params: {epsilons: [0.1, 0.2]}
        stages:
          attack:
            kind: test.echo
            matrix: {eps: "${params.epsilons}", layer: [emb, mid]}
            params: {value: "${matrix.eps}-${matrix.layer}"}
          table:
            kind: test.concat
            inputs: {all: "attack[*]"}
          pick:
            kind: test.concat
            inputs: {one: "attack[eps=0.1,layer=mid]"}
        """
        XCTAssertEqual(try box.run(yaml).summary.ran.count, 6)
        let grown = yaml.replacingOccurrences(of: "[0.1, 0.2]", with: "[0.1, 0.2, 0.4]")
        let before = try box.status(grown)
        XCTAssertEqual(before["table"]?.reasons, ["input all: added attack[eps=0.4,layer=emb], attack[eps=0.4,layer=mid]",
                                                  "upstream attack[eps=0.4,layer=emb] will rerun", "upstream attack[eps=0.4,layer=mid] will rerun"])
        XCTAssertEqual(before["attack[eps=0.4,layer=emb]"]?.state, .missing)
        let r = try box.run(grown)
        XCTAssertEqual(Set(r.summary.ran), ["attack[eps=0.4,layer=emb]", "attack[eps=0.4,layer=mid]", "table"])
        let st = try box.status()
        XCTAssertEqual(st.count, 8)
        XCTAssertTrue(st.values.allSatisfy { $0.state == .fresh })
    }

    func testEarlyCutoffWhenOutputBytesAreUnchanged() throws {
        let box = Sandbox()
        let yaml = """
        stages:
          a:
            kind: shell
            params: {cmd: "echo same > $AUDITGAP_OUT/o.txt", note: first}
            outputs: [o.txt]
          b: {kind: test.concat, inputs: {x: a}}
        """
        try box.run(yaml)
        let r = try box.run(yaml.replacingOccurrences(of: "note: first", with: "note: second"))
        XCTAssertEqual(r.summary.ran, ["a"])
        XCTAssertEqual(r.summary.cutoff, ["b"])
        XCTAssertTrue(r.lines.contains { $0.contains("fresh b (upstream outputs unchanged)") }, "\(r.lines)")
    }

    func testKindVersionBumpAndSeedAreReported() throws {
        let box = Sandbox()
        var r1 = KindRegistry.testing
        r1.register(VersionedKind(version: "1"))
        let yaml = "seed: 1\nstages:\n  v: {kind: test.versioned, params: {x: 4}}\n  w: {kind: test.concat, inputs: {i: v}}\n"
        try box.run(yaml, registry: r1)
        var r2 = KindRegistry.testing
        r2.register(VersionedKind(version: "2"))
        let st = try box.status(registry: r2)
        XCTAssertEqual(st["v"]?.reasons, ["kind version 1 -> 2"])
        XCTAssertEqual(st["w"]?.state, .stale)
        let st2 = try box.status(yaml.replacingOccurrences(of: "seed: 1", with: "seed: 2"), registry: r1)
        XCTAssertEqual(st2["v"]?.reasons, ["seed 1 -> 2"])
    }

    func testIncludesAndDefaults() throws {
        let box = Sandbox()
        box.write("common.yaml", "params: {value: 5, steps: 3}\ndefaults:\n  test.loop: {steps: \"${params.steps}\"}\n")
        let yaml = """
        include: common.yaml
        params: {value: 6}
        stages:
          e: {kind: test.echo, params: {value: "${params.value}"}}
          l1: {kind: test.loop}
          l2: {kind: test.loop, params: {steps: 4}}
        """
        let g = try box.graph(yaml)
        XCTAssertEqual(g.instances[g.index["e"]!].params["value"], .int(6))
        XCTAssertEqual(g.instances[g.index["l1"]!].params["steps"], .int(3))
        XCTAssertEqual(g.instances[g.index["l2"]!].params["steps"], .int(4))
        try box.run()
        XCTAssertTrue(try box.status().values.allSatisfy { $0.state == .fresh })
    }

    func testCanonicalKeyIgnoresMapOrder() {
        let a = KeyMaterial(kind: "k", kindVersion: "1", params: ["x": .int(1), "y": .map(["p": .bool(true), "q": .null])],
                            inputs: [:], labels: [:], seed: 0, outputs: [])
        let b = KeyMaterial(kind: "k", kindVersion: "1", params: ["y": .map(["q": .null, "p": .bool(true)]), "x": .int(1)],
                            inputs: [:], labels: [:], seed: 0, outputs: [])
        XCTAssertEqual(a.key, b.key)
        var c = a
        c.params["x"] = .double(1)
        XCTAssertNotEqual(a.key, c.key, "1 and 1.0 are different params")
    }
}
