// CheckpointCache: process-wide cache so a process loads each checkpoint once.
import Foundation

/// Loaded checkpoints keyed by a caller-supplied content hash, or by (path, size, mtime) of
/// the files the checkpoint reads. Thread-safe; concurrent requests for the same key load once.
public final class CheckpointCache: @unchecked Sendable {
    /// The process-wide cache.
    public static let shared = CheckpointCache()

    // `lock` guards `entries`; `loadLock` serialises loads so one key is never loaded twice
    // (loads are memory-heavy, so running two at once would not help anyway).
    private let lock = NSLock()
    private let loadLock = NSLock()
    private var entries: [String: Checkpoint] = [:]

    public init() {}

    /// The checkpoint at `path`, loading it on first use. `key` (e.g. the artifact's content
    /// hash) replaces the default (path, size, mtime) fingerprint when given.
    public func checkpoint(path: String, key: String? = nil) throws -> Checkpoint {
        let url = URL(fileURLWithPath: (path as NSString).expandingTildeInPath).standardizedFileURL
        let cacheKey = try key ?? Self.fingerprint(url)
        if let hit = lookup(cacheKey) { return hit }
        loadLock.lock()
        defer { loadLock.unlock() }
        if let hit = lookup(cacheKey) { return hit }
        let loaded = try Checkpoint.load(url: url)
        lock.lock()
        entries[cacheKey] = loaded
        lock.unlock()
        return loaded
    }

    private func lookup(_ key: String) -> Checkpoint? {
        lock.lock()
        defer { lock.unlock() }
        return entries[key]
    }

    /// Number of cached checkpoints.
    public var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return entries.count
    }

    /// Drops every cached checkpoint.
    public func removeAll() {
        lock.lock()
        entries.removeAll()
        lock.unlock()
    }

    /// "path|size|mtime" of the file, or of every regular file directly inside the directory.
    public static func fingerprint(_ url: URL) throws -> String {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw ModelError.fileNotFound(path: url.path, what: "model (a Hugging Face directory or a .gguf file)")
        }
        let files = isDir.boolValue
            ? ((try? fm.contentsOfDirectory(atPath: url.path)) ?? []).sorted().map { url.appendingPathComponent($0) }
            : [url]
        var parts = [url.path]
        for f in files {
            guard let attrs = try? fm.attributesOfItem(atPath: f.path) else { continue }
            let size = (attrs[.size] as? NSNumber)?.int64Value ?? -1
            let mtime = (attrs[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            parts.append("\(f.lastPathComponent):\(size):\(mtime)")
        }
        return parts.joined(separator: "|")
    }
}

extension Checkpoint {
    /// The checkpoint at `path` from the process-wide cache (loaded on first use).
    public static func cached(path: String, key: String? = nil) throws -> Checkpoint {
        try CheckpointCache.shared.checkpoint(path: path, key: key)
    }
}
