// BLASCore: which kernels OpenBLAS picked for this CPU, and the core to ask for when it fell
// back to generic ones.
//
// OpenBLAS chooses its kernels from the CPU model when the library loads. A release older
// than the CPU does not know the model and falls back to its Prescott (SSE3) kernels:
// Debian 12's OpenBLAS 0.3.21 does so on Intel Xeon model 207 (Emerald Rapids), where its
// sgemm then runs at a fraction of the AVX-512 kernels' speed (a PGD step on four prompts
// took 0.74 s per prompt instead of 0.25; docs/BENCHMARKS.md). The choice can only be
// changed before the library loads, through OPENBLAS_CORETYPE, so the command-line tool
// restarts itself once with it set (`auditgap` main).
import CBLAS
import Foundation

public enum BLASCore {
    /// The kernel set OpenBLAS uses in this process (e.g. "Haswell", "SkylakeX", "Prescott").
    public static var name: String {
        guard let p = openblas_get_corename() else { return "unknown" }
        return String(cString: p)
    }

    /// Cores whose kernels use AVX2 or AVX-512: nothing to improve on.
    static let vectorCores: Set<String> = ["haswell", "zen", "skylakex", "cooperlake", "sapphirerapids", "excavator"]

    /// The OPENBLAS_CORETYPE for a CPU with `flags` (from /proc/cpuinfo) when OpenBLAS runs
    /// `core`: "SkylakeX" on AVX-512 (F, CD, BW, DQ, VL), "Haswell" on AVX2 + FMA, and nil
    /// when OpenBLAS already uses vector kernels or the CPU has neither.
    public static func override(core: String, flags: Set<String>) -> String? {
        guard !vectorCores.contains(core.lowercased()) else { return nil }
        if ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains) { return "SkylakeX" }
        if ["avx2", "fma"].allSatisfy(flags.contains) { return "Haswell" }
        return nil
    }

    /// The override for this process's CPU and OpenBLAS (nil off Linux or when not needed).
    public static func overrideForThisMachine() -> String? {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        return override(core: name, flags: Set(line.split(separator: " ").map(String.init)))
    }
}
