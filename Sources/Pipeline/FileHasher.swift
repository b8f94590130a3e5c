// Content hashing of files and directory trees, with a stat cache (size, mtime ns, inode) so an
// unchanged tree is never re-read.
import Foundation

/// File-tree helpers.
public enum FileTree {
    /// Regular files under `url` (recursively, sorted by path); `url` itself when it is a file.
    public static func files(under url: URL) -> [String] {
        let root = url.path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDir) else { return [] }
        if !isDir.boolValue { return [root] }
        return relativeFiles(root: root).map { root + "/" + $0 }
    }

    /// Paths of regular files under `root`, relative to it, sorted.
    public static func relativeFiles(root: String) -> [String] {
        var out: [String] = []
        walk(root: root, prefix: "", into: &out)
        return out.sorted()
    }

    private static func walk(root: String, prefix: String, into out: inout [String]) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: prefix.isEmpty ? root : root + "/" + prefix) else { return }
        for name in names {
            let rel = prefix.isEmpty ? name : prefix + "/" + name
            var st = stat()
            guard lstat(root + "/" + rel, &st) == 0 else { continue }
            if (st.st_mode & S_IFMT) == S_IFDIR {
                walk(root: root, prefix: rel, into: &out)
            } else if (st.st_mode & S_IFMT) == S_IFREG {
                out.append(rel)
            }
        }
    }

    /// Removes a file or directory tree; missing is fine.
    public static func remove(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// fsyncs a file or directory (errors ignored: some filesystems refuse on directories).
    public static func fsyncPath(_ path: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }

    /// Writes data to a temp file beside `path`, fsyncs, and renames it into place.
    public static func atomicWrite(_ data: Data, to path: String) throws {
        let tmp = path + ".tmp.\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
        do {
            try data.write(to: URL(fileURLWithPath: tmp))
            fsyncPath(tmp)
            guard rename(tmp, path) == 0 else {
                throw PipelineError.io(path: path, message: "rename failed: \(String(cString: strerror(errno)))")
            }
        } catch let e as PipelineError {
            remove(tmp)
            throw e
        } catch {
            remove(tmp)
            throw PipelineError.io(path: path, message: "cannot write: \(error.localizedDescription)")
        }
    }
}

/// A cache of file content hashes keyed by path and validated by (size, mtime ns, inode).
public final class StatCache: @unchecked Sendable {
    // `entries` and `dirty` are guarded by `lock` (stages hash inputs from several worker threads).
    private struct Entry {
        var size: Int
        var mtime: Int
        var inode: UInt64
        var hash: String
    }

    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    private var dirty = false
    /// Where the cache persists (nil: memory only).
    public let path: String?

    private var loaded = false

    private let persist: Bool

    /// A cache read from `path`; written back by `save()` only when `persist`.
    public init(path: String?, persist: Bool = true) {
        self.path = path
        self.persist = persist
    }

    /// Reads the persisted cache on first use (a no-op status without file inputs never pays for it).
    private func loadIfNeeded() {
        guard !loaded else { return }
        loaded = true
        guard let path, let v = try? JSON.read(path), let m = v["entries"]?.mapValue else { return }
        for (k, e) in m where entries[k] == nil {
            guard let l = e.listValue, l.count == 4, let size = l[0].intValue, let mtime = l[1].intValue,
                  let ino = l[2].intValue, let h = l[3].stringValue else { continue }
            entries[k] = Entry(size: size, mtime: mtime, inode: UInt64(bitPattern: Int64(ino)), hash: h)
        }
    }

    /// The sha256 of a regular file (read only when its stat changed).
    public func hash(file path: String) throws -> (hash: String, size: Int) {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw PipelineError.io(path: path, message: "cannot stat: \(String(cString: strerror(errno)))")
        }
        let size = Int(st.st_size)
        let mtime = Int(st.st_mtim.tv_sec) * 1_000_000_000 + Int(st.st_mtim.tv_nsec)
        let inode = UInt64(st.st_ino)
        lock.lock()
        loadIfNeeded()
        if let e = entries[path], e.size == size, e.mtime == mtime, e.inode == inode {
            lock.unlock()
            return (e.hash, size)
        }
        lock.unlock()
        let (h, n) = try SHA256.hex(ofFile: path)
        record(path: path, hash: h, st: st, size: n)
        return (h, n)
    }

    /// Records a hash computed elsewhere (at publish time) for `path`.
    public func remember(path: String, hash: String) {
        var st = stat()
        guard stat(path, &st) == 0 else { return }
        record(path: path, hash: hash, st: st, size: Int(st.st_size))
    }

    private func record(path: String, hash: String, st: stat, size: Int) {
        let mtime = Int(st.st_mtim.tv_sec) * 1_000_000_000 + Int(st.st_mtim.tv_nsec)
        lock.lock()
        loadIfNeeded()
        entries[path] = Entry(size: size, mtime: mtime, inode: UInt64(st.st_ino), hash: hash)
        dirty = true
        lock.unlock()
    }

    /// Content hash of a file, or of a directory tree (sorted relative paths and file hashes).
    public func contentHash(_ path: String) throws -> String {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw PipelineError.io(path: path, message: "no such file or directory")
        }
        if !isDir.boolValue { return try hash(file: path).hash }
        var s = SHA256()
        for rel in FileTree.relativeFiles(root: path) {
            s.update(rel + "\0" + (try hash(file: path + "/" + rel).hash) + "\n")
        }
        return "tree:" + s.finalizeHex()
    }

    /// Writes the cache when it changed (best effort: a read-only store keeps it in memory).
    public func save() {
        lock.lock()
        defer { lock.unlock() }
        guard dirty, persist, let path else { return }
        var m: [String: Value] = [:]
        for (k, e) in entries where FileManager.default.fileExists(atPath: k) {
            m[k] = .list([.int(e.size), .int(e.mtime), .int(Int(Int64(bitPattern: e.inode))), .string(e.hash)])
        }
        if (try? FileTree.atomicWrite(Data(Value.map(["version": .int(1), "entries": .map(m)]).canonicalJSON.utf8), to: path)) != nil {
            dirty = false
        }
    }
}
