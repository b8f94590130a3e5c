// `auditgap bench ...`: speed figures of the runtime (see docs/BENCHMARKS.md).
import CBLAS
import Foundation
import Numerics

enum BenchCommand {
    static let usage = "auditgap bench [matmul|forward|train|lora|pgd|generate|pipeline|hash] [--json]"

    static func run(_ argv: [String]) throws -> Int32 {
        // Benchmarks with options of their own parse their arguments themselves.
        switch argv.first {
        case "forward": return try ModelBench.forward(Array(argv.dropFirst()))
        case "generate": return try ModelBench.generate(Array(argv.dropFirst()))
        case "train": return try TrainBench.run(Array(argv.dropFirst()), lora: false)
        case "lora": return try TrainBench.run(Array(argv.dropFirst()), lora: true)
        case "pgd": return try PGDBench.run(Array(argv.dropFirst()))
        case "hash": return try HashBench.run(Array(argv.dropFirst()))
        default: break
        }
        let args = try Arguments(argv, valued: ["--repeats"], knownFlags: ["--json"])
        let which = args.positionals.first ?? "matmul"
        switch which {
        case "matmul":
            return MatmulBench.run(json: args.flag("--json"), repeats: try args.int("--repeats") ?? 5)
        default:
            throw UsageError("unknown benchmark '\(which)'; available: matmul, forward, generate, train, lora, pgd, pipeline, hash. Usage: \(usage)")
        }
    }
}

/// Median wall time of `body` over `repeats` runs after one warm-up.
func medianSeconds(repeats: Int, _ body: () -> Void) -> Double {
    withoutActuallyEscaping(body) { medianSecondsInterleaved(repeats: repeats, [$0])[0] }
}

/// Median wall times of several bodies measured in alternation (A B A B ...) after one
/// warm-up each, so load changes on a shared machine affect them alike.
func medianSecondsInterleaved(repeats: Int, _ bodies: [() -> Void]) -> [Double] {
    secondsInterleaved(repeats: repeats, bodies).map { t in t.sorted()[t.count / 2] }
}

/// Median of the per-round ratios times[1][r] / times[0][r] (robust to load drift).
func medianPairRatio(_ times: [[Double]]) -> Double {
    let r = zip(times[0], times[1]).map { $1 / $0 }.sorted()
    return r[r.count / 2]
}

/// Wall times of several bodies measured in alternation, one array per body.
func secondsInterleaved(repeats: Int, _ bodies: [() -> Void]) -> [[Double]] {
    for body in bodies { body() }
    var times = [[Double]](repeating: [], count: bodies.count)
    for _ in 0..<max(1, repeats) {
        for (i, body) in bodies.enumerated() {
            let start = DispatchTime.now().uptimeNanoseconds
            body()
            times[i].append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
    }
    return times
}

/// `auditgap bench matmul`: the runtime's `Tensor.matmul` (fresh output tensor per call)
/// against raw cblas_sgemm into a reused buffer, and elementwise-add bandwidth.
enum MatmulBench {
    static func run(json: Bool, repeats: Int) -> Int32 {
        Threading.configure()
        var rows: [[String: Any]] = []
        if !json {
            print("matmul, threads \(Threading.blasThreads), medians over 4 alternating blocks (baseline: OpenBLAS's own threads)")
            print("size   runtime GFLOP/s   raw sgemm GFLOP/s   ratio (median of per-round runtime/raw speed)")
        }
        for n in [256, 512, 1024, 2048] {
            var rng = SplitMix64(seed: 42)
            let a = Tensor.randomUniform(shape: [n, n], low: -0.5, high: 0.5, rng: &rng)
            let b = Tensor.randomUniform(shape: [n, n], low: -0.5, high: 0.5, rng: &rng)
            let flops = 2.0 * Double(n) * Double(n) * Double(n)
            let reps = n >= 2048 ? repeats : (n <= 512 ? repeats * 4 : repeats * 2)
            var c = [Float](repeating: 0, count: n * n)
            // The baseline is OpenBLAS's own threading, the way other programs call it. Its
            // worker threads spin for a while after each call and would steal the cores from
            // the runtime's threads if the two were interleaved call by call, so the two run
            // in alternating blocks with a pause after each baseline block.
            let raw = {
                a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1,
                                pa.baseAddress, Int32(n), pb.baseAddress, Int32(n), 0, pc.baseAddress, Int32(n))
                } } }
            }
            var times: [[Double]] = [[], []]
            let block = max(1, reps / 4)
            for _ in 0..<4 {
                times[0] += secondsInterleaved(repeats: block, [{ _ = Tensor.matmul(a, b) }])[0]
                openblas_set_num_threads(Int32(Threading.kernelThreads))
                times[1] += secondsInterleaved(repeats: block, [raw])[0]
                openblas_set_num_threads(1)
                usleep(300_000)
            }
            let t = times.map { $0.sorted()[$0.count / 2] }
            let g1 = flops / t[0] / 1e9, g2 = flops / t[1] / 1e9, ratio = medianPairRatio(times)
            rows.append(["size": n, "runtime_gflops": g1, "sgemm_gflops": g2, "ratio": ratio])
            if !json { print(String(format: "%-6d %17.1f %19.1f %7.3f", n, g1, g2, ratio)) }
        }
        // Bandwidth of elementwise add (reads 2 x N floats, writes N) at several sizes: the
        // runtime kernel on one thread and on all kernel threads, and a plain single-threaded
        // loop into a preallocated buffer as the reference.
        var addRows: [[String: Any]] = []
        if !json { print("elementwise add   serial-loop GB/s   runtime 1-thread GB/s   runtime \(Threading.kernelThreads)-thread GB/s") }
        let threads = Threading.kernelThreads
        for n in [1 << 16, 1 << 18, 1 << 20, 1 << 22, 1 << 24] {
            let x = Tensor(shape: [n], repeating: 1), y = Tensor(shape: [n], repeating: 2)
            var z = [Float](repeating: 0, count: n)
            let reps = max(repeats, (1 << 26) / n / 4)
            let t = medianSecondsInterleaved(repeats: reps, [
                {
                    x.withUnsafeBufferPointer { px in y.withUnsafeBufferPointer { py in z.withUnsafeMutableBufferPointer { pz in
                        for i in 0..<n { pz[i] = px[i] + py[i] }
                    } } }
                },
                { Threading.kernelThreads = 1; _ = Kernels.add(x, y); Threading.kernelThreads = threads },
                { _ = Kernels.add(x, y) },
            ])
            let gb = t.map { Double(3 * n * 4) / $0 / 1e9 }
            addRows.append(["floats": n, "serial_loop_gbps": gb[0], "runtime_1thread_gbps": gb[1], "runtime_gbps": gb[2]])
            if !json { print(String(format: "%-17d %16.2f %23.2f %23.2f", n, gb[0], gb[1], gb[2])) }
        }
        let packedRows = packedWeights(json: json, repeats: repeats)
        if json {
            let obj: [String: Any] = ["benchmark": "matmul", "threads": Threading.blasThreads,
                                      "matmul": rows, "elementwise_add": addRows, "packed_weights": packedRows]
            if let data = try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]),
               let s = String(data: data, encoding: .utf8) { print(s) }
        }
        return 0
    }

    /// Frozen-weight products on SmolLM2-135M's linear shapes: `PackedMatrix` (weights packed
    /// once) against `sgemm` (OpenBLAS, which packs the weight on every call), for x W^T and
    /// dy W, with M rows of activations. Between calls a 64 MB buffer is swept so the
    /// weights come from memory, as they do in a pass over 30 layers.
    static func packedWeights(json: Bool, repeats: Int) -> [[String: Any]] {
        var out: [[String: Any]] = []
        if !json { print("frozen weight [R, K] x M rows   product    sgemm GFLOP/s   packed GFLOP/s   ratio (median of per-round packed/sgemm speed)") }
        var sweep = [Float](repeating: 1, count: 16 << 20)
        func evict() { sweep.withUnsafeMutableBufferPointer { p in for i in stride(from: 0, to: p.count, by: 16) { p[i] += 1 } } }
        for (r, k) in [(960, 576), (576, 576), (3072, 576), (576, 1536)] {
            var rng = SplitMix64(seed: 7)
            let w = Tensor.randomUniform(shape: [r, k], low: -0.5, high: 0.5, rng: &rng)
            let packed = PackedMatrix(w)
            let pw = UnsafeMutablePointer<Float>.allocate(capacity: r * k)
            defer { pw.deallocate() }
            w.withUnsafeBufferPointer { pw.update(from: $0.baseAddress!, count: r * k) }
            for m in [4, 68, 512] {
                let x = UnsafeMutablePointer<Float>.allocate(capacity: m * k), y = UnsafeMutablePointer<Float>.allocate(capacity: m * r)
                let dy = UnsafeMutablePointer<Float>.allocate(capacity: m * r), dx = UnsafeMutablePointer<Float>.allocate(capacity: m * k)
                defer { x.deallocate(); y.deallocate(); dy.deallocate(); dx.deallocate() }
                for i in 0..<(m * k) { x[i] = rng.nextFloat() - 0.5 }
                for i in 0..<(m * r) { dy[i] = rng.nextFloat() - 0.5 }
                let flops = 2.0 * Double(m * r * k)
                let reps = Swift.max(repeats * 4, 20)
                for backward in [false, true] {
                    let times = secondsInterleaved(repeats: reps, [
                        { evict() },
                        {
                            evict()
                            if backward {
                                sgemm(transA: false, transB: false, m: m, n: k, k: r, a: dy, lda: r, b: pw, ldb: k, c: dx, ldc: k)
                            } else {
                                sgemm(transA: false, transB: true, m: m, n: r, k: k, a: x, lda: k, b: pw, ldb: k, c: y, ldc: r)
                            }
                        },
                        {
                            evict()
                            if backward {
                                packed.transposedProduct(dy: dy, m: m, lddy: r, dx: dx, lddx: k)
                            } else {
                                packed.product(x: x, m: m, ldx: k, y: y, ldy: r)
                            }
                        },
                    ])
                    // Subtract the sweep's own time (measured alone in the same rounds).
                    let sweepT = times[0].sorted()[times[0].count / 2]
                    let tb = times[1].map { Swift.max($0 - sweepT, 1e-9) }, tp = times[2].map { Swift.max($0 - sweepT, 1e-9) }
                    let gb = flops / tb.sorted()[tb.count / 2] / 1e9, gp = flops / tp.sorted()[tp.count / 2] / 1e9
                    let ratio = medianPairRatio([tp, tb])
                    let name = backward ? "dy W" : "x W^T"
                    out.append(["rows": r, "cols": k, "m": m, "product": name, "sgemm_gflops": gb, "packed_gflops": gp,
                                "ratio": ratio])
                    if !json {
                        print(String(format: "[%4d, %4d] x %-4d              %-8@ %15.1f %16.1f %7.2f", r, k, m, name as NSString, gb, gp, ratio))
                    }
                }
            }
        }
        return out
    }
}
