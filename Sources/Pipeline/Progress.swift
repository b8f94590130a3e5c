// Progress of long loops inside a stage: a bar on a terminal, periodic lines otherwise.
import Foundation

/// Where progress goes.
public enum ProgressSink: Sendable {
    case standardError
    case silent
}

/// Reports a loop's progress; thread-safe.
public final class ProgressReporter: @unchecked Sendable {
    // Mutable state is guarded by `lock`.
    private let lock = NSLock()
    public let label: String
    public let total: Int
    private var done = 0
    private let start = DispatchTime.now().uptimeNanoseconds
    private var lastPrint: UInt64 = 0
    private var lastFraction = 0.0
    private let sink: ProgressSink
    private let logger: StageLogger?
    private let tty: Bool
    private var finished = false

    public init(label: String, total: Int, sink: ProgressSink = .standardError, logger: StageLogger? = nil) {
        self.label = label
        self.total = max(0, total)
        self.sink = sink
        self.logger = logger
        tty = isatty(2) == 1
    }

    /// Marks `n` more steps done.
    public func advance(by n: Int = 1) {
        lock.lock()
        done += n
        let d = done
        lock.unlock()
        report(d, force: false)
    }

    /// Sets the number of steps done.
    public func update(completed: Int) {
        lock.lock()
        done = completed
        lock.unlock()
        report(completed, force: false)
    }

    /// Ends the loop (prints the final state once).
    public func finish() {
        lock.lock()
        if finished { lock.unlock(); return }
        finished = true
        let d = done
        lock.unlock()
        report(d, force: true)
        if case .standardError = sink, tty { FileHandle.standardError.write(Data("\n".utf8)) }
        logger?.log("\(label): \(d)/\(total) done in \(String(format: "%.2f", elapsed)) s")
    }

    private var elapsed: Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }

    private func report(_ d: Int, force: Bool) {
        guard case .standardError = sink else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        let fraction = total > 0 ? Double(min(d, total)) / Double(total) : 1
        lock.lock()
        let interval: UInt64 = tty ? 100_000_000 : 5_000_000_000
        let due = force || now - lastPrint >= interval || (!tty && fraction - lastFraction >= 0.1)
        if due { lastPrint = now; lastFraction = fraction }
        lock.unlock()
        guard due else { return }
        let t = elapsed
        let eta = fraction > 0 && fraction < 1 ? String(format: " eta %.0fs", t / fraction - t) : ""
        if tty {
            let width = 30
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
            FileHandle.standardError.write(Data("\r\(label) [\(bar)] \(d)/\(total) \(String(format: "%.1fs", t))\(eta)\u{1B}[K".utf8))
        } else {
            FileHandle.standardError.write(Data("\(label): \(d)/\(total) (\(Int(fraction * 100))%) \(String(format: "%.1fs", t))\(eta)\n".utf8))
        }
    }
}
