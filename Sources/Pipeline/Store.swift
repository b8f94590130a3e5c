// The artifact store: immutable objects with manifests, atomic publish, per-key flock locks,
// crash-debris cleanup, refs for explaining staleness.
import Foundation

/// The file list of a stored object and its content hash.
public struct Manifest: Sendable {
    public struct File: Sendable {
        public var path: String
        public var sha256: String
        public var size: Int
    }

    public var key: String
    public var files: [File]
    /// SHA-256 over the sorted (path, sha256) list: what consumers' keys see (early cutoff).
    public var contentHash: String

    public init(key: String, files: [File]) {
        self.key = key
        self.files = files.sorted { $0.path < $1.path }
        var s = SHA256()
        for f in self.files { s.update(f.path + "\0" + f.sha256 + "\n") }
        contentHash = s.finalizeHex()
    }

    var json: Value {
        .map(["version": .int(1), "key": .string(key), "content_hash": .string(contentHash),
              "files": .list(files.map { .map(["path": .string($0.path), "sha256": .string($0.sha256), "size": .int($0.size)]) })])
    }

    init?(json: Value) {
        guard let key = json["key"]?.stringValue, let files = json["files"]?.listValue else { return nil }
        var out: [File] = []
        for f in files {
            guard let p = f["path"]?.stringValue, let h = f["sha256"]?.stringValue, let n = f["size"]?.intValue else { return nil }
            out.append(File(path: p, sha256: h, size: n))
        }
        self.init(key: key, files: out)
        if let stored = json["content_hash"]?.stringValue, stored != contentHash { return nil }
    }
}

/// A held per-key lock (flock on `locks/<name>.lock`); released on `release()` or deinit.
public final class KeyLock: @unchecked Sendable {
    // The descriptor is owned by this object and closed once.
    private var fd: Int32
    init(fd: Int32) { self.fd = fd }
    public func release() {
        if fd >= 0 {
            flock(fd, LOCK_UN)
            close(fd)
            fd = -1
        }
    }
    deinit { release() }
}

/// An artifact store directory (`objects/ locks/ tmp/ logs/ refs/ quarantine/ statcache.json`).
public final class ArtifactStore: @unchecked Sendable {
    // Immutable after init; the file system is the shared state, guarded by flock.
    public let root: String
    public let writable: Bool
    public let statCache: StatCache

    /// Opens (and, when writable, creates) a store. `readOnly` (or a store the process cannot
    /// write, e.g. a read-only mount) allows status, show, verify and export, and `run` when
    /// everything is fresh; nothing is written, not even the stat cache.
    public init(root: String, readOnly: Bool = false) {
        let abs = PipelineSpec.absolute(root)
        self.root = abs
        let fm = FileManager.default
        if !readOnly && !fm.fileExists(atPath: abs) { try? fm.createDirectory(atPath: abs, withIntermediateDirectories: true) }
        writable = !readOnly && access(abs, W_OK) == 0
        if writable {
            for d in ["objects", "locks", "tmp", "logs", "refs", "quarantine"] {
                try? fm.createDirectory(atPath: abs + "/" + d, withIntermediateDirectories: true)
            }
        }
        statCache = StatCache(path: abs + "/statcache.json", persist: writable)
    }

    /// The default store: `$AUDITGAP_STORE`, else `./Artifacts`.
    public static func defaultRoot() -> String {
        ProcessInfo.processInfo.environment["AUDITGAP_STORE"].flatMap { $0.isEmpty ? nil : $0 } ?? "Artifacts"
    }

    public func objectDir(_ key: String) -> String { "\(root)/objects/\(key.prefix(2))/\(key)" }
    public func outputDir(_ key: String) -> String { objectDir(key) + "/out" }
    public func logPath(_ key: String) -> String { "\(root)/logs/\(key).log" }
    func lockPath(_ name: String) -> String { "\(root)/locks/\(name).lock" }

    func requireWritable() throws {
        guard writable else { throw PipelineError.io(path: root, message: "the store is read-only; cannot compute or publish artifacts") }
    }

    // MARK: objects

    /// The manifest of a stored object, or nil when absent or unreadable.
    public func manifest(_ key: String) -> Manifest? {
        guard let v = try? JSON.read(objectDir(key) + "/manifest.json") else { return nil }
        return Manifest(json: v)
    }

    /// The state of an object by a cheap check (manifest present, files present with their sizes).
    public enum ObjectState: Sendable {
        case absent
        case ok(Manifest)
        case corrupt([String])
    }

    /// Cheap check used by `status`: manifest readable, every file present with the recorded size.
    public func quickCheck(_ key: String) -> ObjectState {
        let dir = objectDir(key)
        var st = stat()
        guard let bytes = JSON.readBytes(dir + "/manifest.json") else {
            return stat(dir, &st) == 0 ? .corrupt(["manifest.json missing or unreadable"]) : .absent
        }
        guard let v = try? JSON.parse(bytes), let m = Manifest(json: v) else { return .corrupt(["manifest.json unreadable or inconsistent"]) }
        var problems: [String] = []
        for f in m.files {
            if stat(dir + "/out/" + f.path, &st) != 0 {
                problems.append("\(f.path) missing")
            } else if Int(st.st_size) != f.size {
                problems.append("\(f.path) has \(st.st_size) bytes, manifest says \(f.size)")
            }
        }
        return problems.isEmpty ? .ok(m) : .corrupt(problems)
    }

    /// Re-hashes an object's files against its manifest (`useStatCache`: trust unchanged files).
    public func verify(_ key: String, useStatCache: Bool) -> [String] {
        verify(directory: objectDir(key), key: key, useStatCache: useStatCache)
    }

    /// Re-hashes the object in `dir` (which claims to be `key`) against its manifest.
    public func verify(directory dir: String, key: String, useStatCache: Bool) -> [String] {
        guard let v = try? JSON.read(dir + "/manifest.json"), let m = Manifest(json: v) else { return ["manifest.json missing, unreadable or inconsistent"] }
        if m.key != key { return ["manifest names key \(m.key)"] }
        var problems: [String] = []
        let listed = Set(m.files.map(\.path))
        for f in m.files {
            let p = dir + "/out/" + f.path
            do {
                let (h, n) = useStatCache ? try statCache.hash(file: p) : try SHA256.hex(ofFile: p)
                if n != f.size { problems.append("\(f.path): size \(n), manifest says \(f.size)") } else if h != f.sha256 {
                    problems.append("\(f.path): sha256 mismatch")
                }
            } catch {
                problems.append("\(f.path) missing or unreadable")
            }
        }
        for extra in FileTree.relativeFiles(root: dir + "/out") where !listed.contains(extra) {
            problems.append("\(extra) not in manifest")
        }
        if !FileManager.default.fileExists(atPath: dir + "/lineage.json") { problems.append("lineage.json missing") }
        return problems
    }

    /// Every stored object key.
    public func allKeys() -> [String] {
        let fm = FileManager.default
        var keys: [String] = []
        for shard in (try? fm.contentsOfDirectory(atPath: root + "/objects")) ?? [] {
            for k in (try? fm.contentsOfDirectory(atPath: "\(root)/objects/\(shard)")) ?? [] where k.hasPrefix(shard) {
                keys.append(k)
            }
        }
        return keys.sorted()
    }

    /// Moves a corrupted object out of `objects/` (kept in `quarantine/` for inspection).
    public func quarantine(_ key: String) throws {
        try requireWritable()
        let dest = "\(root)/quarantine/\(key).\(Int(Date().timeIntervalSince1970))"
        guard rename(objectDir(key), dest) == 0 else {
            throw PipelineError.io(path: objectDir(key), message: "cannot move to quarantine: \(String(cString: strerror(errno)))")
        }
    }

    /// Deletes an object (gc).
    public func delete(_ key: String) throws {
        try requireWritable()
        let trash = "\(root)/tmp/\(key).gc.\(getpid())"
        if rename(objectDir(key), trash) == 0 { FileTree.remove(trash) }
        FileTree.remove(logPath(key))
    }

    // MARK: locks and temp space

    /// Takes the lock `name` (blocking); `onWait` is called once if another holder makes us wait.
    public func lock(_ name: String, onWait: (() -> Void)? = nil) throws -> KeyLock {
        try requireWritable()
        let path = lockPath(name)
        let fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw PipelineError.io(path: path, message: "cannot open lock: \(String(cString: strerror(errno)))") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            onWait?()
            while flock(fd, LOCK_EX) != 0 {
                if errno == EINTR { continue }
                close(fd)
                throw PipelineError.io(path: path, message: "flock failed: \(String(cString: strerror(errno)))")
            }
        }
        return KeyLock(fd: fd)
    }

    /// Takes the lock `name` only if free.
    func tryLock(_ name: String) -> KeyLock? {
        let fd = open(lockPath(name), O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return nil }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 { close(fd); return nil }
        return KeyLock(fd: fd)
    }

    /// A fresh temp directory for lock holder `name` (`tmp/<name>.<pid>.<random>`).
    public func makeTemp(_ name: String) throws -> String {
        try requireWritable()
        let path = "\(root)/tmp/\(name).\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
        do { try FileManager.default.createDirectory(atPath: path + "/out", withIntermediateDirectories: true) } catch {
            throw PipelineError.io(path: path, message: "cannot create temp directory: \(error.localizedDescription)")
        }
        return path
    }

    /// Removes temp entries whose lock is free (left by crashed runs); returns what was removed.
    @discardableResult
    public func clearDebris() -> [String] {
        guard writable else { return [] }
        var removed: [String] = []
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: root + "/tmp")) ?? [] {
            let name = String(entry.prefix { $0 != "." })
            guard !name.isEmpty, let l = tryLock(name) else { continue }
            FileTree.remove("\(root)/tmp/\(entry)")
            l.release()
            removed.append(entry)
        }
        return removed
    }

    /// Hashes `temp/out`, writes manifest and lineage, fsyncs, and renames into `objects/`.
    /// The caller holds the key lock. `replace` swaps out an existing object (`--force`).
    public func publish(temp: String, key: String, lineage: Value, replace: Bool) throws -> Manifest {
        let out = temp + "/out"
        var files: [Manifest.File] = []
        for rel in FileTree.relativeFiles(root: out) {
            let (h, n) = try SHA256.hex(ofFile: out + "/" + rel)
            files.append(Manifest.File(path: rel, sha256: h, size: n))
            FileTree.fsyncPath(out + "/" + rel)
        }
        let manifest = Manifest(key: key, files: files)
        try FileTree.atomicWrite(Data(manifest.json.prettyJSON.utf8), to: temp + "/manifest.json")
        try FileTree.atomicWrite(Data(lineage.prettyJSON.utf8), to: temp + "/lineage.json")
        FileTree.fsyncPath(out)
        FileTree.fsyncPath(temp)
        let dest = objectDir(key)
        let shard = (dest as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: shard, withIntermediateDirectories: true)
        if replace && FileManager.default.fileExists(atPath: dest) {
            let old = "\(root)/tmp/\(key).old.\(getpid())"
            guard rename(dest, old) == 0 else { throw PipelineError.io(path: dest, message: "cannot replace: \(String(cString: strerror(errno)))") }
            defer { FileTree.remove(old) }
            guard rename(temp, dest) == 0 else { throw PipelineError.io(path: dest, message: "cannot publish: \(String(cString: strerror(errno)))") }
        } else {
            guard rename(temp, dest) == 0 else { throw PipelineError.io(path: dest, message: "cannot publish: \(String(cString: strerror(errno)))") }
        }
        FileTree.fsyncPath(shard)
        for f in files { statCache.remember(path: dest + "/out/" + f.path, hash: f.sha256) }
        return manifest
    }

    // MARK: refs

    /// The refs directory of one pipeline file.
    public func refsDir(pipelineID: String) -> String { "\(root)/refs/\(pipelineID)" }

    static func refFileName(_ instance: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-_.=,[]")
        return (instance.addingPercentEncoding(withAllowedCharacters: allowed) ?? instance) + ".json"
    }

    /// The last record of an instance of a pipeline (what it was computed from), if any.
    public func readRef(pipelineID: String, instance: String) -> Value? {
        try? JSON.read(refsDir(pipelineID: pipelineID) + "/" + ArtifactStore.refFileName(instance))
    }

    /// Records an instance's current key and its inputs (best effort on read-only stores).
    public func writeRef(pipelineID: String, instance: String, record: Value) {
        guard writable else { return }
        let dir = refsDir(pipelineID: pipelineID)
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try? FileTree.atomicWrite(Data(record.prettyJSON.utf8), to: dir + "/" + ArtifactStore.refFileName(instance))
    }
}
