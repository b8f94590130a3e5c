// Thread-count control shared by BLAS and the runtime's own parallel kernels.
//
// Dimension legend: N element (or work item) count.
import CBLAS
import Dispatch
import Foundation
import Synchronization

/// Process-wide threading settings.
///
/// The runtime owns every thread it uses. OpenBLAS runs single-threaded in the calling
/// thread; `sgemm` splits large products across the kernel threads itself. OpenBLAS's own
/// pthread pool spin-waits (sched_yield) between calls and fights the runtime's kernels and
/// attention workers for the cores: on the 2-core development VM the SmolLM2 forward pass
/// ran faster on one thread than on two with OpenBLAS threading on (docs/BENCHMARKS.md).
///
/// At most one parallel region runs at a time in the process: a kernel that is called from
/// inside a region (an sgemm in an attention worker) or while another thread holds the
/// region runs serially instead of oversubscribing the cores.
public enum Threading {
    /// Threads used by parallel kernels and split GEMMs: `AUDITGAP_THREADS` if set, else all cores.
    public static let defaultCount: Int = {
        if let raw = ProcessInfo.processInfo.environment["AUDITGAP_THREADS"], let n = Int(raw), n > 0 { return n }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()

    /// Sets the thread count of the runtime's kernels and GEMM splitting (OpenBLAS itself
    /// stays single-threaded).
    public static func configure(threads: Int = defaultCount) {
        blasSetUp()
        kernelThreads = max(1, threads)
    }

    /// Puts OpenBLAS in single-threaded mode once per process (called by `sgemm`).
    @inlinable
    public static func blasSetUp() { _ = blasConfigured }

    @usableFromInline
    static let blasConfigured: Bool = {
        openblas_set_num_threads(1)
        return true
    }()

    /// Threads products are split over: the kernel thread count (OpenBLAS itself runs
    /// single-threaded in each of them).
    public static var blasThreads: Int { kernelThreads }

    /// Threads used by the runtime's own parallel kernels (default `defaultCount`). Set it
    /// only at start-up or between runs (e.g. a benchmark comparing 1 vs N threads):
    /// `nonisolated(unsafe)` because it is a plain configuration value read by kernels.
    nonisolated(unsafe) public static var kernelThreads: Int = defaultCount

    /// Work (elements x relative cost) below which kernels stay on the calling thread.
    /// Measured on the shared 2-core development VM (docs/BENCHMARKS.md): a memory-bound
    /// add gains little from a second core, and when the machine is busy a helper thread
    /// that is preempted mid-chunk stalls the caller for a scheduling round (milliseconds).
    /// Work of about a third of a millisecond serially is split: 512K adds, 64K
    /// transcendental maps (cost 8), e.g. the SwiGLU of a 68-token PGD step (68 x 1536),
    /// which comes right after a GEMM while the helper is still spinning. At 4M that step ran
    /// 1.14x slower (interleaved runs, 5 of 6 rounds); at 128K 1.09x slower than at 512K.
    public static let parallelThreshold = 1 << 19

    /// Multiply-adds (M x N x K) from which `sgemm` splits a product across threads: about
    /// 30 microseconds of single-core work, several times a helper's wake-up latency.
    public static let gemmSplitThreshold = 1 << 21

    /// The process-wide parallel region: held by the thread running a parallel loop.
    /// `nonisolated(unsafe)`: the pointer is set once and the mutex it points to is the
    /// synchronisation itself.
    nonisolated(unsafe) static let region: UnsafeMutablePointer<pthread_mutex_t> = {
        let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        m.initialize(to: pthread_mutex_t())
        pthread_mutex_init(m, nil)
        return m
    }()

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
        parallelFor(chunks: chunks, n, body)
    }

    /// Runs `body` over `0..<n` cut into `chunks` contiguous ranges, claimed by the calling
    /// thread and `kernelThreads - 1` helpers; inline when there is one thread, one chunk,
    /// or another parallel region is running (nested calls run serially).
    ///
    /// Chunks are `ceil(n / chunks)` long (the last ones shorter or empty), or, when `evenly`,
    /// differ in length by at most one: 36 panels in 8 chunks are 5,5,5,5,5,5,5,1 the first
    /// way, which leaves one thread of two with 20 panels to the other's 16.
    public static func parallelFor(chunks requested: Int, _ n: Int, evenly: Bool = false, _ body: (Range<Int>) -> Void) {
        let threads = kernelThreads
        let chunks = Swift.min(requested, n)
        guard n > 0 else { return }
        guard threads > 1, chunks > 1, pthread_mutex_trylock(region) == 0 else {
            body(0..<n)
            return
        }
        defer { pthread_mutex_unlock(region) }
        let per = (n + chunks - 1) / chunks
        withoutActuallyEscaping(body) { escapable in
            let work = ChunkedWork(chunks: chunks) { c in
                let lo = evenly ? c * n / chunks : c * per
                let hi = evenly ? (c + 1) * n / chunks : Swift.min(n, lo + per)
                if lo < hi { escapable(lo..<hi) }
            }
            WorkerPool.shared.post(work)
            work.help()
            work.finish()
            WorkerPool.shared.clear()
        }
    }
}

/// Persistent helper threads (`defaultCount - 1`) that run the chunks of posted parallel
/// loops. After a loop a helper spins for a short while (200 microseconds) watching for
/// the next one, so the back-to-back GEMMs and kernels of a forward pass do not each pay a
/// thread wake-up, then sleeps on a condition variable.
/// `@unchecked Sendable`: `job` and `generation` are guarded by `mutex`; `posted` is an
/// atomic copy of `generation` that spinning helpers poll without the lock.
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool(helpers: Threading.defaultCount - 1)
    /// How long an idle helper polls for the next loop before sleeping: longer than the gap
    /// between the GEMMs and kernels of a forward pass, short enough not to hold a core
    /// from other processes for long.
    static let spinNanoseconds: UInt64 = 200_000

    private var mutex = pthread_mutex_t()
    private var wake = pthread_cond_t()
    private var job: ChunkedWork?
    private var generation = 0
    private let posted = Atomic<Int>(0)

    private init(helpers: Int) {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&wake, nil)
        for _ in 0..<Swift.max(0, helpers) {
            let thread = Thread { [unowned self] in self.loop() }
            thread.name = "auditgap-worker"
            thread.start()
        }
    }

    /// Makes `work` available to the helpers.
    func post(_ work: ChunkedWork) {
        pthread_mutex_lock(&mutex)
        job = work
        generation += 1
        posted.store(generation, ordering: .releasing)
        pthread_cond_broadcast(&wake)
        pthread_mutex_unlock(&mutex)
    }

    /// Drops the finished loop so helpers that wake late find nothing to do.
    func clear() {
        pthread_mutex_lock(&mutex)
        job = nil
        pthread_mutex_unlock(&mutex)
    }

    private func loop() {
        var seen = 0
        while true {
            // Spin up to `spinNanoseconds` (checking the clock every 256 polls), then sleep.
            let deadline = DispatchTime.now().uptimeNanoseconds + WorkerPool.spinNanoseconds
            var polls = 0
            while posted.load(ordering: .relaxed) == seen {
                polls += 1
                if polls & 255 == 0 && DispatchTime.now().uptimeNanoseconds > deadline { break }
            }
            pthread_mutex_lock(&mutex)
            while generation == seen { pthread_cond_wait(&wake, &mutex) }
            seen = generation
            let work = job
            pthread_mutex_unlock(&mutex)
            work?.help()
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
