// `auditgap bench ...`: speed figures of the runtime (see docs/BENCHMARKS.md).
import CBLAS
import Foundation
import Numerics

enum BenchCommand {
    static let usage = "auditgap bench [matmul|forward|train|lora|pgd|generate|pipeline] [--json]"

    static func run(_ argv: [String]) throws -> Int32 {
        let args = try Arguments(argv, valued: ["--repeats"], knownFlags: ["--json"])
        let which = args.positionals.first ?? "matmul"
        switch which {
        case "matmul":
            return MatmulBench.run(json: args.flag("--json"), repeats: try args.int("--repeats") ?? 5)
        default:
            throw UsageError("unknown benchmark '\(which)'; available now: matmul. Usage: \(usage)")
        }
    }
}

/// Median wall time of `body` over `repeats` runs after one warm-up.
func medianSeconds(repeats: Int, _ body: () -> Void) -> Double {
    body()
    var times: [Double] = []
    for _ in 0..<max(1, repeats) {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
    times.sort()
    return times[times.count / 2]
}

enum MatmulBench {
    static func run(json: Bool, repeats: Int) -> Int32 {
        Threading.configure()
        var rows: [[String: Any]] = []
        if !json {
            print("matmul, threads \(Threading.blasThreads), median of \(repeats)")
            print("size   runtime GFLOP/s   raw sgemm GFLOP/s   ratio")
        }
        for n in [256, 512, 1024, 2048] {
            var rng = SplitMix64(seed: 42)
            let a = Tensor(shape: [n, n]) { p in for i in p.indices { p[i] = rng.nextFloat() - 0.5 } }
            let b = Tensor(shape: [n, n]) { p in for i in p.indices { p[i] = rng.nextFloat() - 0.5 } }
            let flops = 2.0 * Double(n) * Double(n) * Double(n)
            let reps = n >= 2048 ? max(1, repeats / 2) : repeats
            let tRuntime = medianSeconds(repeats: reps) { _ = Tensor.matmul(a, b) }
            var c = [Float](repeating: 0, count: n * n)
            let tRaw = medianSeconds(repeats: reps) {
                a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1,
                                pa.baseAddress, Int32(n), pb.baseAddress, Int32(n), 0, pc.baseAddress, Int32(n))
                } } }
            }
            let g1 = flops / tRuntime / 1e9, g2 = flops / tRaw / 1e9
            rows.append(["size": n, "runtime_gflops": g1, "sgemm_gflops": g2, "ratio": g1 / g2])
            if !json { print(String(format: "%-6d %17.1f %19.1f %7.3f", n, g1, g2, g1 / g2)) }
        }
        // Bandwidth of a large elementwise add: reads 2 x N floats, writes N.
        let n = 16 << 20
        let x = Tensor(shape: [n], repeating: 1), y = Tensor(shape: [n], repeating: 2)
        let tAdd = medianSeconds(repeats: repeats) { _ = Kernels.add(x, y) }
        let gbs = Double(3 * n * 4) / tAdd / 1e9
        if json {
            let obj: [String: Any] = ["benchmark": "matmul", "threads": Threading.blasThreads,
                                      "matmul": rows, "elementwise_add_gbps": gbs]
            if let data = try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]),
               let s = String(data: data, encoding: .utf8) { print(s) }
        } else {
            print(String(format: "elementwise add (%d floats): %.2f GB/s", n, gbs))
        }
        return 0
    }
}
