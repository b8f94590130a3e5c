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

    /// Threads used by the runtime's own parallel kernels (default `defaultCount`). Set it
    /// only at start-up or between runs (e.g. a benchmark comparing 1 vs N threads):
    /// `nonisolated(unsafe)` because it is a plain configuration value read by kernels.
    nonisolated(unsafe) public static var kernelThreads: Int = defaultCount

    /// Work (elements x relative cost) below which kernels stay on the calling thread.
    /// Measured on the shared 2-core development VM (docs/BENCHMARKS.md): a memory-bound
    /// add gains little from a second core, and when the machine is busy a helper thread
    /// that is preempted mid-chunk stalls the caller for a scheduling round (milliseconds).
    /// So only work that takes several milliseconds serially is split: 4M adds, 512K
    /// transcendental maps (cost 8), or softmax / cross-entropy rows over large vocabularies.
    public static let parallelThreshold = 1 << 22

    /// Runs `body` over `0..<n` split into contiguous chunks, in parallel across
    /// `kernelThreads` threads when `n * costPerItem >= parallelThreshold`, else inline.
    /// `body` must only write disjoint memory for disjoint ranges.
    ///
    /// The calling thread claims chunks itself and never waits for a helper that has not
    /// started yet (on a busy shared machine a woken helper can be late by milliseconds);
    /// it only waits for chunks a helper has already claimed.
    @inlinable
    public static func parallelChunks(_ n: Int, costPerItem: Int = 1, _ body: (Range<Int>) -> Void) {
        let threads = kernelThreads
        if threads <= 1 || n < 2 || n &* max(1, costPerItem) < parallelThreshold {
            if n > 0 { body(0..<n) }
            return
        }
        let minItems = Swift.max(1, parallelThreshold / (4 * Swift.max(1, costPerItem)))
        let chunks = Swift.max(1, Swift.min(threads * 4, n / minItems))
        let per = (n + chunks - 1) / chunks
        withoutActuallyEscaping(body) { escapable in
            let work = ChunkedWork(chunks: chunks) { c in
                let lo = c * per, hi = Swift.min(n, lo + per)
                if lo < hi { escapable(lo..<hi) }
            }
            for _ in 1..<threads {
                DispatchQueue.global(qos: .userInitiated).async { work.help() }
            }
            work.help()
            work.finish()
        }
    }
}

/// Chunks of one parallel loop, claimed under a mutex by the caller and by helpers.
/// `@unchecked Sendable`: every mutable field is guarded by `mutex`; the body is dropped
/// in `finish()` before `parallelChunks` returns, and helpers that start later find no
/// chunk to claim and never touch it.
@usableFromInline
final class ChunkedWork: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var done = pthread_cond_t()
    private var next = 0, running = 0
    private let chunks: Int
    private var body: ((Int) -> Void)?

    @usableFromInline
    init(chunks: Int, body: @escaping (Int) -> Void) {
        self.chunks = chunks
        self.body = body
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&done, nil)
    }

    deinit {
        pthread_mutex_destroy(&mutex)
        pthread_cond_destroy(&done)
    }

    /// Claims and runs chunks until none is left.
    @usableFromInline
    func help() {
        while true {
            pthread_mutex_lock(&mutex)
            guard next < chunks, body != nil else { pthread_mutex_unlock(&mutex); return }
            var fn = body
            let c = next
            next += 1
            running += 1
            pthread_mutex_unlock(&mutex)
            fn?(c)
            fn = nil  // release our reference before reporting the chunk done
            pthread_mutex_lock(&mutex)
            running -= 1
            if running == 0 { pthread_cond_broadcast(&done) }
            pthread_mutex_unlock(&mutex)
        }
    }

    /// Waits for claimed chunks still running, then drops the body.
    @usableFromInline
    func finish() {
        // Chunks are short, so yield-spin rather than sleep: a sleeping caller on a busy
        // machine may wait a whole scheduling round to wake up again.
        pthread_mutex_lock(&mutex)
        while running > 0 {
            pthread_mutex_unlock(&mutex)
            sched_yield()
            pthread_mutex_lock(&mutex)
        }
        body = nil
        pthread_mutex_unlock(&mutex)
    }
}
