// `resources:` parsing, validation with positions, precedence and job grouping; Slurm CLI errors without a cluster.
import Foundation
import XCTest
@testable import Pipeline

final class SlurmResourceTests: XCTestCase {
    func testResourcesPrecedenceAndArrayGrouping() throws {
        let box = Sandbox()
        let graph = try box.graph("""
        resources:
          shell: {cpus: 2, mem: 4G, time: "1:00:00", sbatch_args: ["--qos=normal"]}
        stages:
          a: {kind: shell, params: {cmd: "true"}, outputs: [o]}
          pgd:
            kind: shell
            matrix: {model: [small, big], eps: [0.1, 0.2]}
            params: {cmd: "true"}
            outputs: [o]
            resources:
              mem: 8G
              partition: gpu
              gres: "gpu:a100:1"
              instances:
                "model=big": {mem: 64G, time: 2-00:00:00}
                "[model=big,eps=0.2]": {cpus: 8}
        """)
        var options = SlurmOptions(executable: "/bin/true")
        options.defaults = SlurmResources(time: "30", account: "proj")
        let ex = SlurmExecutor(planner: Planner(graph: graph, store: ArtifactStore(root: box.store)), options: options)
        let byName = Dictionary(uniqueKeysWithValues: graph.instances.indices.map { (graph.instances[$0].name, ex.resources(of: $0)) })
        XCTAssertEqual(byName["a"], SlurmResources(cpus: 2, mem: "4G", time: "1:00:00", account: "proj", sbatchArgs: ["--qos=normal"]))
        XCTAssertEqual(byName["pgd[eps=0.1,model=small]"],
                       SlurmResources(cpus: 2, mem: "8G", time: "1:00:00", partition: "gpu", account: "proj", gres: "gpu:a100:1", sbatchArgs: ["--qos=normal"]))
        XCTAssertEqual(byName["pgd[eps=0.1,model=big]"]?.mem, "64G")
        XCTAssertEqual(byName["pgd[eps=0.1,model=big]"]?.time, "2-00:00:00")
        XCTAssertEqual(byName["pgd[eps=0.1,model=big]"]?.cpus, 2)
        XCTAssertEqual(byName["pgd[eps=0.2,model=big]"]?.cpus, 8)
        XCTAssertEqual(byName["pgd[eps=0.2,model=big]"]?.sbatchOptions,
                       ["--cpus-per-task=8", "--mem=64G", "--time=2-00:00:00", "--partition=gpu", "--account=proj", "--gres=gpu:a100:1", "--qos=normal"])
        // One job for `a`; pgd splits into arrays by distinct resources: small x2, big/0.1, big/0.2.
        let plans = ex.jobPlans(Set(graph.instances.indices))
        XCTAssertEqual(plans.map(\.stage), ["a", "pgd", "pgd", "pgd"])
        XCTAssertEqual(plans.map(\.array), [false, true, true, true])
        XCTAssertEqual(plans.map { $0.instances.map { graph.instances[$0].name } },
                       [["a"], ["pgd[eps=0.1,model=small]", "pgd[eps=0.2,model=small]"], ["pgd[eps=0.1,model=big]"], ["pgd[eps=0.2,model=big]"]])
        // Arrays larger than MaxArraySize are split.
        var small = options
        small.maxArrayTasks = 1
        let split = SlurmExecutor(planner: ex.planner, options: small).jobPlans(Set(graph.instances.indices))
        XCTAssertEqual(split.map(\.instances.count), [1, 1, 1, 1, 1])
    }

    func testKindDefaultResourcesSitBetweenCommandLineAndYAML() throws {
        struct Heavy: StageKind {
            var name: String { "heavy" }
            var version: String { "1" }
            var paramsSchema: ParamsSchema { ParamsSchema([]) }
            var outputs: OutputsDeclaration { .fixed(["o"]) }
            var defaultResources: SlurmResources { SlurmResources(cpus: 8, mem: "16G") }
            func run(_ context: StageContext) throws {}
        }
        var registry = KindRegistry.testing
        registry.register(Heavy())
        let box = Sandbox()
        let graph = try box.graph("""
        resources: {heavy: {mem: 32G}}
        stages:
          h: {kind: heavy}
        """, registry: registry)
        var options = SlurmOptions(executable: "/bin/true")
        options.defaults = SlurmResources(cpus: 1, mem: "1G", time: "10")
        let ex = SlurmExecutor(planner: Planner(graph: graph, store: ArtifactStore(root: box.store)), options: options)
        XCTAssertEqual(ex.resources(of: 0), SlurmResources(cpus: 8, mem: "32G", time: "10"))
    }

    func testInvalidResourcesAreSpecErrorsWithPositions() throws {
        let cases: [(String, String, String)] = [
            ("cpus: 0", "stages.s.resources.cpus", "positive integer"),
            ("cpus: two", "stages.s.resources.cpus", "positive integer"),
            ("mem: 4 GB", "stages.s.resources.mem", "expected memory like 4G"),
            ("mem: 0G", "stages.s.resources.mem", "expected memory like 4G"),
            ("time: \"1:75:00\"", "stages.s.resources.time", "expected a time limit"),
            ("time: 1h", "stages.s.resources.time", "expected a time limit"),
            ("time: 0", "stages.s.resources.time", "zero"),
            ("gres: \"gpu::1\"", "stages.s.resources.gres", "gpu:1"),
            ("partition: \"a b\"", "stages.s.resources.partition", "without spaces"),
            ("sbatch_args: [\"--array=0-3\"]", "stages.s.resources.sbatch_args", "set by the Slurm executor"),
            ("sbatch_args: [qos]", "stages.s.resources.sbatch_args", "sbatch option"),
            ("cpu: 4", "stages.s.resources.cpu", "did you mean 'cpus'"),
            ("instances: {\"model\": {mem: 1G}}", "stages.s.resources.instances.model", "matrix selector"),
            ("instances: {\"a=1\": {instances: {}}}", "stages.s.resources.instances.a=1.instances", "unknown resources key"),
        ]
        for (text, key, message) in cases {
            let box = Sandbox()
            box.write("pipeline.yaml", "stages:\n  s:\n    kind: shell\n    params: {cmd: \"true\"}\n    resources:\n      \(text)\n")
            XCTAssertThrowsError(try PipelineSpec.load(path: box.pipeline), text) { error in
                guard case let PipelineError.spec(_, loc, k, m) = error else { return XCTFail("\(text): \(error)") }
                XCTAssertEqual(k, key, text)
                XCTAssertTrue(m.contains(message), "\(text): \(m)")
                XCTAssertEqual(loc.line, 6, "\(text): \(error)")
                XCTAssertGreaterThanOrEqual(loc.column, 7, "\(text): \(error)")
            }
        }
        // Top level: per-kind resources, and the wrong shape.
        let box = Sandbox()
        box.write("pipeline.yaml", "resources:\n  pgd: {time: \"99:99\"}\nstages: {}\n")
        XCTAssertThrowsError(try PipelineSpec.load(path: box.pipeline)) { error in
            XCTAssertTrue("\(error)".contains("pipeline.yaml:2:15: resources.pgd.time: expected a time limit"), "\(error)")
        }
        box.write("pipeline.yaml", "resources: [1]\nstages: {}\n")
        XCTAssertThrowsError(try PipelineSpec.load(path: box.pipeline)) { error in
            XCTAssertTrue("\(error)".contains("pipeline.yaml:1:12: resources: expected a map of kind names"), "\(error)")
        }
    }

    func testTimeAndMemoryFormats() {
        for ok in ["30", "5:00", "1:30:00", "100:00:00", "2-0", "2-12", "2-12:30", "2-12:30:15", "UNLIMITED"] {
            XCTAssertNil(SlurmResources.timeProblem(ok), ok)
        }
        for bad in ["", "-1", "1:2:3:4", "1:60", "1-24:00:00", "x", "1-", "0:00:00", "1.5"] {
            XCTAssertNotNil(SlurmResources.timeProblem(bad), bad)
        }
        for ok in ["500", "500M", "4G", "4g", "1T", "1024K"] { XCTAssertNil(SlurmResources.memoryProblem(ok), ok) }
        for bad in ["", "G", "4GB", "-1G", "0", "1.5G", "4 G"] { XCTAssertNotNil(SlurmResources.memoryProblem(bad), bad) }
    }

    func testLocalRunIgnoresResources() throws {
        let box = Sandbox()
        let (summary, _) = try box.run("""
        resources: {test.echo: {cpus: 4}}
        stages:
          a: {kind: test.echo, params: {value: 1}, resources: {mem: 1G, time: 10}}
        """)
        XCTAssertEqual(summary.ran, ["a"])
    }

    func testCommandLineErrorsWithoutACluster() throws {
        let exe = try auditgapBinary()
        let box = Sandbox()
        box.write("pipeline.yaml", """
        stages:
          a: {kind: shell, params: {cmd: "echo 1 > $AUDITGAP_OUT/o.txt"}, outputs: [o.txt]}
          b: {kind: shell, matrix: {i: [1, 2]}, params: {cmd: "echo ${matrix.i} > $AUDITGAP_OUT/o.txt"}, outputs: [o.txt]}
        """)
        // No sbatch on PATH.
        let empty = box.dir + "/emptybin"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        let r = runTool(exe, ["run", "--executor", "slurm", "--store", box.store], cwd: box.dir, timeout: 30, env: ["PATH": empty])
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertTrue(r.output.contains("sbatch not found on PATH (\(empty))"), r.output)
        // Dry run: the submissions it would make, without Slurm.
        let dry = runTool(exe, ["run", "--executor", "slurm", "--dry-run", "--slurm-time", "10", "--store", box.store], cwd: box.dir, timeout: 30, env: ["PATH": empty])
        XCTAssertEqual(dry.status, 0, dry.output)
        XCTAssertTrue(dry.output.contains("would submit array of 2 b [time=10]: b[i=1], b[i=2]"), dry.output)
        XCTAssertTrue(dry.output.contains("3 to run in 2 submissions"), dry.output)
        // Usage errors.
        let u1 = runTool(exe, ["run", "--slurm-partition", "gpu", "--store", box.store], cwd: box.dir, timeout: 30)
        XCTAssertEqual(u1.status, 2, u1.output)
        XCTAssertTrue(u1.output.contains("--slurm-partition needs --executor slurm"), u1.output)
        let u2 = runTool(exe, ["run", "--executor", "slurm", "--slurm-mem", "lots", "--store", box.store], cwd: box.dir, timeout: 30)
        XCTAssertEqual(u2.status, 2, u2.output)
        XCTAssertTrue(u2.output.contains("--slurm-mem: expected memory like 4G"), u2.output)
        let u3 = runTool(exe, ["run", "--executor", "kubernetes", "--store", box.store], cwd: box.dir, timeout: 30)
        XCTAssertEqual(u3.status, 2, u3.output)
    }
}
