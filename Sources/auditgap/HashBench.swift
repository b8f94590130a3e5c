// `auditgap bench hash`: SHA-256 of a large file by the pipeline's file hasher against
// `openssl dgst -sha256` (docs/BENCHMARKS.md).
import Foundation
import Pipeline

enum HashBench {
    static let usage = "auditgap bench hash [--size-mb N] [--json]"

    /// Writes a temporary file of N MB (MB = 2^20 bytes, default 1024), hashes it with
    /// `SHA256.hex(ofFile:)` and with `openssl dgst -sha256` alternately (one warm-up each,
    /// then 3 rounds), prints both speeds and their ratio, checks the digests agree and
    /// deletes the file. Without an `openssl` binary on PATH only our figure is printed.
    static func run(_ argv: [String]) throws -> Int32 {
        let args = try Arguments(argv, valued: ["--size-mb"], knownFlags: ["--json"])
        guard args.positionals.isEmpty else {
            throw UsageError("unexpected argument '\(args.positionals[0])'. Usage: \(usage)")
        }
        let sizeMB = try args.int("--size-mb") ?? 1024
        guard sizeMB >= 1 else { throw UsageError("option --size-mb needs a positive number of MB, got \(sizeMB)") }
        let json = args.flag("--json")
        let rounds = 3
        let bytes = sizeMB << 20
        let path = NSTemporaryDirectory() + "auditgap-bench-hash-\(getpid()).bin"
        defer { FileTree.remove(path) }
        try writeFile(path, bytes: bytes)
        let openssl = executableOnPath("openssl")
        if !json {
            print("hash: SHA-256 of a \(sizeMB) MB file (MB = 2^20 bytes, in the page cache) at \(path)")
            print("\(rounds) alternating rounds after one warm-up each; openssl: \(openssl ?? "not found on PATH, comparison skipped")")
        }

        var ours: [String] = [], theirs: [String] = []
        var failure: Error?
        var bodies: [() -> Void] = [{
            do { ours.append(try SHA256.hex(ofFile: path).hash) } catch { failure = failure ?? error }
        }]
        if let openssl {
            bodies.append {
                do { theirs.append(try opensslDigest(openssl, path)) } catch { failure = failure ?? error }
            }
        }
        let times = secondsInterleaved(repeats: rounds, bodies)
        if let failure { throw failure }

        let mb = Double(sizeMB)
        let speeds = times.map { $0.map { mb / $0 } }
        let medians = speeds.map { $0.sorted()[$0.count / 2] }
        // ours/openssl speed = openssl's time / ours, per round; the median of those.
        let ratio = openssl == nil ? nil : medianPairRatio(times)
        let digest = ours.first ?? ""
        let match = Set(ours).count == 1 && (openssl == nil || Set(theirs) == [digest])
        if json {
            var obj: [String: Value] = [
                "benchmark": .string("hash"), "size_mb": .int(sizeMB), "rounds": .int(rounds),
                "ours_mbps": .double(medians[0]), "ours_mbps_rounds": .list(speeds[0].map { .double($0) }),
                "digest": .string(digest), "digests_match": .bool(match),
                "openssl": openssl.map { .string($0) } ?? .null,
                "openssl_mbps": .null, "openssl_mbps_rounds": .null, "ratio": .null,
            ]
            if let ratio {
                obj["openssl_mbps"] = .double(medians[1])
                obj["openssl_mbps_rounds"] = .list(speeds[1].map { .double($0) })
                obj["ratio"] = .double(ratio)
            }
            print(Value.map(obj).canonicalJSON)
        } else {
            func row(_ name: String, _ s: [Double], _ median: Double) -> String {
                String(format: "%-24@ %@   median %8.1f MB/s", name as NSString,
                       s.map { String(format: "%8.1f", $0) }.joined(separator: " ") as NSString, median)
            }
            print(row("ours (libcrypto EVP)", speeds[0], medians[0]))
            if let ratio {
                print(row("openssl dgst -sha256", speeds[1], medians[1]))
                print(String(format: "ratio ours/openssl: %.3f (median of the per-round ratios)", ratio))
            }
            print(match ? "digests match: \(digest)" : "digests differ: ours \(Set(ours).sorted()), openssl \(Set(theirs).sorted())")
        }
        if !match {
            FileHandle.standardError.write(Data("error: the SHA-256 digests differ\n".utf8))
            return 1
        }
        return 0
    }

    /// Writes `bytes` pseudo-random bytes to `path` and fsyncs it, so write-back does not run
    /// during the timings. One random 8 MB block is written repeatedly, each copy stamped with
    /// its index (no two blocks alike).
    static func writeFile(_ path: String, bytes: Int) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw PipelineError.io(path: path, message: "cannot create: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let block = 8 << 20
        var rng = SystemRandomNumberGenerator()
        var buffer = (0..<(block / 8)).map { _ in rng.next() as UInt64 }
        var written = 0
        while written < bytes {
            buffer[0] = UInt64(written / block)
            let want = min(block, bytes - written)
            let n = buffer.withUnsafeBytes { write(fd, $0.baseAddress, want) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw PipelineError.io(path: path, message: "write failed: \(n < 0 ? String(cString: strerror(errno)) : "no progress")")
            }
            written += n
        }
        guard fsync(fd) == 0 else { throw PipelineError.io(path: path, message: "fsync failed: \(String(cString: strerror(errno)))") }
    }

    /// The first executable called `name` in the directories of PATH.
    static func executableOnPath(_ name: String) -> String? {
        let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":")
        return dirs.map { "\($0)/\(name)" }.first { access($0, X_OK) == 0 }
    }

    /// The hex digest `openssl dgst -sha256 path` prints ("SHA2-256(path)= <hex>").
    static func opensslDigest(_ openssl: String, _ path: String) throws -> String {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw PipelineError.io(path: openssl, message: "pipe failed: \(String(cString: strerror(errno)))") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        let words: [String] = [openssl, "dgst", "-sha256", path]
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, openssl, &actions, nil, argv, environ)
        close(fds[1])
        defer { close(fds[0]) }
        guard spawned == 0 else { throw PipelineError.io(path: openssl, message: "cannot run: \(String(cString: strerror(spawned)))") }
        var output = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            output += chunk[0..<n]
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { throw PipelineError.io(path: openssl, message: "waitpid failed: \(String(cString: strerror(errno)))") }
        }
        let text = String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard (status & 0x7f) == 0, (status >> 8) & 0xff == 0, let hex = text.components(separatedBy: "= ").last,
              hex.count == 64, hex.allSatisfy(\.isHexDigit) else {
            throw PipelineError.io(path: openssl, message: "unexpected result of dgst -sha256 (status \(status)): \(text)")
        }
        return hex.lowercased()
    }
}
