// A bounded cache of large freed tensor buffers, so that repeated allocations of the same
// size (matmul outputs, activations of every training step) reuse memory that is already
// mapped instead of paying mmap + page faults + munmap each time (measured before the
// pool: a fresh output per call made Tensor.matmul 0.42x raw sgemm at 256x256 and 0.87x
// at 2048x2048; see docs/BENCHMARKS.md).
//
// Dimension legend: sizes are in Float elements, rounded up to a multiple of `granule`.
import Foundation

/// Process-wide pool of 64-byte aligned Float buffers, keyed by rounded capacity.
public final class BufferPool: @unchecked Sendable {
    // @unchecked Sendable: all mutable state is guarded by `mutex`.
    /// The shared pool.
    /// Its limit is `AUDITGAP_POOL_MB` if set, else an eighth of physical memory capped at
    /// 4 GB: a training step frees and reallocates gigabytes of activations, and with a
    /// 256 MB pool the LoRA step spent a fifth of its CPU time zeroing freshly faulted pages
    /// (docs/BENCHMARKS.md). Cached buffers are reused by the next step, so peak RSS barely
    /// moves (3.31 vs 3.32 GB there).
    public static let shared = BufferPool(
        limitBytes: ProcessInfo.processInfo.environment["AUDITGAP_POOL_MB"].flatMap { Int($0) }.map { $0 << 20 }
            ?? Int(Swift.min(ProcessInfo.processInfo.physicalMemory / 8, 4 << 30)))

    /// Buffers smaller than this many floats bypass the pool (malloc is cheap for them).
    public static let minimumPooled = 16 * 1024
    /// Capacity rounding (floats) for pooled buffers: one 4 KB page.
    static let granule = 1024

    private var mutex = pthread_mutex_t()
    private var free: [Int: [UnsafeMutableRawPointer]] = [:]
    private var cachedBytes = 0
    /// Upper bound of memory kept for reuse.
    public let limitBytes: Int

    init(limitBytes: Int) {
        self.limitBytes = limitBytes
        pthread_mutex_init(&mutex, nil)
    }

    /// Capacity (floats) actually allocated for a request of `count` floats.
    static func capacity(for count: Int) -> Int {
        let c = Swift.max(count, 1)
        return c < minimumPooled ? c : (c + granule - 1) / granule * granule
    }

    /// A buffer of exactly `capacity` floats (from the cache when possible).
    func allocate(capacity: Int) -> UnsafeMutableRawPointer {
        if capacity >= Self.minimumPooled {
            pthread_mutex_lock(&mutex)
            let reused = free[capacity]?.popLast()
            if reused != nil { cachedBytes -= capacity * 4 }
            pthread_mutex_unlock(&mutex)
            if let reused { return reused }
        }
        return UnsafeMutableRawPointer.allocate(byteCount: capacity * MemoryLayout<Float>.stride, alignment: 64)
    }

    /// Returns a buffer of `capacity` floats, caching it if there is room.
    func release(_ pointer: UnsafeMutableRawPointer, capacity: Int) {
        if capacity >= Self.minimumPooled && capacity * 4 <= limitBytes / 2 {
            pthread_mutex_lock(&mutex)
            if cachedBytes + capacity * 4 <= limitBytes {
                free[capacity, default: []].append(pointer)
                cachedBytes += capacity * 4
                pthread_mutex_unlock(&mutex)
                return
            }
            pthread_mutex_unlock(&mutex)
        }
        pointer.deallocate()
    }

    /// Frees every cached buffer.
    public func drain() {
        pthread_mutex_lock(&mutex)
        let all = free.values.flatMap { $0 }
        free = [:]
        cachedBytes = 0
        pthread_mutex_unlock(&mutex)
        for p in all { p.deallocate() }
    }

    /// Bytes currently cached.
    public var cachedByteCount: Int {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return cachedBytes
    }
}
