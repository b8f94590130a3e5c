// `auditgap bench pipeline`: no-op `status` and `run` on a generated matrix pipeline (docs/BENCHMARKS.md).
import Foundation
import Pipeline

enum PipelineBench {
    /// Writes a pipeline of `2 * a * b` shell instances: `gen[a,b]` and `copy[a,b]` consuming it.
    static func pipelineYAML(a: Int, b: Int) -> String {
        """
        params:
          greeting: hello
        stages:
          gen:
            kind: shell
            matrix:
              a: [\((1...a).map(String.init).joined(separator: ", "))]
              b: [\((1...b).map(String.init).joined(separator: ", "))]
            params:
              cmd: echo ${params.greeting} ${matrix.a} ${matrix.b} > $AUDITGAP_OUT/out.txt
            outputs: [out.txt]
          copy:
            kind: shell
            matrix:
              a: [\((1...a).map(String.init).joined(separator: ", "))]
              b: [\((1...b).map(String.init).joined(separator: ", "))]
            inputs:
              src: gen[a=${matrix.a},b=${matrix.b}]/out.txt
            params:
              cmd: cp $AUDITGAP_IN_SRC $AUDITGAP_OUT/out.txt
            outputs: [out.txt]

        """
    }

    static func run(_ argv: [String]) throws -> Int32 {
        let args = try Arguments(argv, valued: ["--repeats", "--instances", "--dir"], knownFlags: ["--json"])
        let repeats = try args.int("--repeats") ?? 7
        let instances = try args.int("--instances") ?? 500
        let b = 10
        let a = max(1, instances / (2 * b))
        let dir = args.value("--dir") ?? NSTemporaryDirectory() + "auditgap-bench-pipeline-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { if args.value("--dir") == nil { try? FileManager.default.removeItem(atPath: dir) } }
        let yaml = dir + "/pipeline.yaml"
        try Data(pipelineYAML(a: a, b: b).utf8).write(to: URL(fileURLWithPath: yaml))
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let store = dir + "/Artifacts"
        let json = args.flag("--json")
        if !json { print("pipeline bench: \(2 * a * b) instances (shell), store \(store)") }
        let t0 = DispatchTime.now().uptimeNanoseconds
        let first = spawn(exe, ["run", yaml, "--store", store, "-j", "2"])
        let firstRun = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        guard first == 0 else {
            FileHandle.standardError.write(Data("error: first run failed (exit \(first))\n".utf8))
            return 1
        }
        let (status, statusCPU) = measure(repeats) { spawn(exe, ["status", yaml, "--store", store]) }
        let (run, runCPU) = measure(repeats) { spawn(exe, ["run", yaml, "--store", store]) }
        if json {
            let obj: Value = .map(["benchmark": .string("pipeline"), "instances": .int(2 * a * b), "repeats": .int(repeats),
                                   "first_run_s": .double(firstRun), "noop_status_ms": .double(status * 1000), "noop_run_ms": .double(run * 1000),
                                   "noop_status_cpu_ms": .double(statusCPU * 1000), "noop_run_cpu_ms": .double(runCPU * 1000)])
            print(obj.canonicalJSON)
        } else {
            print(String(format: "first run (-j 2):   %8.2f s", firstRun))
            print(String(format: "no-op status:       %8.1f ms wall, %6.1f ms CPU (medians of %d, whole process)", status * 1000, statusCPU * 1000, repeats))
            print(String(format: "no-op run:          %8.1f ms wall, %6.1f ms CPU (medians of %d, whole process)", run * 1000, runCPU * 1000, repeats))
        }
        return 0
    }

    /// Median wall time and median child CPU time (user + system) of `body` after one warm-up.
    static func measure(_ repeats: Int, _ body: () -> Int32) -> (Double, Double) {
        _ = body()
        var walls: [Double] = [], cpus: [Double] = []
        for _ in 0..<max(1, repeats) {
            let c0 = childCPU()
            let t0 = DispatchTime.now().uptimeNanoseconds
            _ = body()
            walls.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
            cpus.append(childCPU() - c0)
        }
        return (walls.sorted()[walls.count / 2], cpus.sorted()[cpus.count / 2])
    }

    static func childCPU() -> Double {
        var u = rusage()
        getrusage(RUSAGE_CHILDREN.rawValue, &u)
        return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) / 1e6 + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) / 1e6
    }

    /// Runs the binary with output discarded; returns its exit status.
    /// Runs `exe` with output discarded and waits with waitpid: Foundation's
    /// `Process.waitUntilExit` polls its run loop every 50 ms, which rounded a 55 ms child up
    /// to 100 ms.
    static func spawn(_ exe: String, _ arguments: [String]) -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv: [UnsafeMutablePointer<CChar>?] = ([exe] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, exe, &actions, nil, argv, environ) == 0 else { return -1 }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return -1 }
        }
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : -1
    }
}
