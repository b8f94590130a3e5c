// Thread-count control shared by BLAS and the runtime's own parallel kernels.
import CBLAS
import Foundation

/// Process-wide threading settings.
public enum Threading {
    /// Threads used by BLAS and parallel kernels: `AUDITGAP_THREADS` if set, else all cores.
    public static let defaultCount: Int = {
        if let raw = ProcessInfo.processInfo.environment["AUDITGAP_THREADS"], let n = Int(raw), n > 0 { return n }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()

    /// Sets the thread count for BLAS (and records it for the runtime's kernels).
    public static func configure(threads: Int = defaultCount) {
        openblas_set_num_threads(Int32(max(1, threads)))
    }

    /// Threads BLAS currently uses.
    public static var blasThreads: Int { Int(openblas_get_num_threads()) }
}
