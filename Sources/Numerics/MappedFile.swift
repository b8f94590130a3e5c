// MappedFile: a read-only memory mapping of a whole file (for safetensors and GGUF).
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A read-only, private memory mapping of an entire file, unmapped when released.
///
/// Immutable after `init` and the mapping is read-only, so sharing it across threads is safe
/// (hence `@unchecked Sendable`).
public final class MappedFile: @unchecked Sendable {
    /// The mapped file.
    public let url: URL
    /// File size in bytes.
    public let count: Int
    /// First byte (nil for an empty file).
    public let base: UnsafeRawPointer?

    /// Maps `url` read-only; throws `MappedFileError` when it cannot be opened or mapped.
    public init(url: URL) throws {
        self.url = url
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else {
            throw MappedFileError(path: url.path, reason: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw MappedFileError(path: url.path, reason: String(cString: strerror(errno)))
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            throw MappedFileError(path: url.path, reason: "is a directory, expected a file")
        }
        count = Int(st.st_size)
        if count == 0 {
            base = nil
            return
        }
        let p = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else {
            throw MappedFileError(path: url.path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        base = UnsafeRawPointer(p)
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), count) }
    }

    /// The bytes as a buffer (empty for an empty file).
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
}

/// A file could not be opened or memory-mapped.
public struct MappedFileError: Error, CustomStringConvertible, Equatable {
    /// Path of the file.
    public let path: String
    /// What went wrong (from the OS).
    public let reason: String
    public var description: String { "cannot read \(path): \(reason)" }
}
