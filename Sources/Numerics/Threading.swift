// Thread-count control shared by BLAS and the runtime's own parallel kernels.
//
// Dimension legend: N element (or work item) count.
import CBLAS
import Dispatch
import Foundation

/// Process-wide threading settings.
public enum Threading {
    /// Threads used by BLAS and parallel kernels: `AUDITGAP_THREADS` if set, else all cores.
    public static let defaultCount: Int = {
        if let raw = ProcessInfo.processInfo.environment["AUDITGAP_THREADS"], let n = Int(raw), n > 0 { return n }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()

    /// Sets the thread count for BLAS (the runtime's kernels use `defaultCount`).
    public static func configure(threads: Int = defaultCount) {
        openblas_set_num_threads(Int32(max(1, threads)))
    }

    /// Threads BLAS currently uses.
    public static var blasThreads: Int { Int(openblas_get_num_threads()) }

    /// Element count below which elementwise kernels stay on the calling thread (measured:
    /// spawning work on 2 cores only pays off from a few hundred thousand floats).
    public static let parallelThreshold = 1 << 18

    /// Runs `body` over `0..<n` split into contiguous chunks, in parallel across
    /// `defaultCount` threads when `n * costPerItem >= parallelThreshold`, else inline.
    /// `body` must only write disjoint memory for disjoint ranges.
    @inlinable
    public static func parallelChunks(_ n: Int, costPerItem: Int = 1, _ body: (Range<Int>) -> Void) {
        let threads = defaultCount
        if threads <= 1 || n < 2 || n &* max(1, costPerItem) < parallelThreshold {
            if n > 0 { body(0..<n) }
            return
        }
        let chunks = min(threads, n)
        let per = (n + chunks - 1) / chunks
        withoutActuallyEscaping(body) { escapable in
            let box = UncheckedSendableBox(escapable)
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                let lo = c * per, hi = min(n, lo + per)
                if lo < hi { box.value(lo..<hi) }
            }
        }
    }
}

/// Carries a non-Sendable value into `concurrentPerform`. Justified: callers of
/// `parallelChunks` promise that chunks touch disjoint memory, and the closure does not
/// outlive the call (concurrentPerform returns only after every iteration finished).
@usableFromInline
struct UncheckedSendableBox<T>: @unchecked Sendable {
    @usableFromInline let value: T
    @usableFromInline init(_ value: T) { self.value = value }
}
