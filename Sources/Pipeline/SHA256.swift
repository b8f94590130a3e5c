// SHA-256 (FIPS 180-4) through OpenSSL's libcrypto (EVP API); used for cache keys and content
// hashes. The digests are those of any SHA-256: libcrypto only computes them faster (SHA-NI or
// AVX2 code paths). The tests check it against a pure-Swift reference implementation.
import CCrypto
import Foundation

/// An incremental SHA-256 hasher backed by libcrypto.
///
/// A value type: a copy taken mid-stream hashes on independently (the libcrypto context is
/// duplicated on the first update of a shared copy).
public struct SHA256: Sendable {
    private var context: DigestContext

    /// The size of one read when hashing a file: large enough that the per-call costs of
    /// `read` and `EVP_DigestUpdate` vanish, small enough that the copied chunk is still in
    /// the CPU caches when libcrypto reads it (docs/BENCHMARKS.md, "bench hash").
    static let fileChunk = 1 << 20

    /// A hasher with no input yet.
    public init() { context = DigestContext() }

    /// Feeds bytes.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        uniqueContext().update(base, count: bytes.count)
    }

    /// Feeds bytes.
    public mutating func update<D: DataProtocol>(_ data: D) {
        for region in data.regions { region.withUnsafeBytes { update($0) } }
    }

    /// Feeds the UTF-8 bytes of a string.
    public mutating func update(_ string: String) {
        var s = string
        s.withUTF8 { update(UnsafeRawBufferPointer($0)) }
    }

    /// The 32-byte digest; the hasher must not be used afterwards.
    public mutating func finalize() -> [UInt8] { uniqueContext().finalize() }

    /// The digest as lowercase hex.
    public mutating func finalizeHex() -> String { Self.hex(finalize()) }

    /// Lowercase hex of bytes.
    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Hex digest of a string's UTF-8 bytes.
    public static func hex(of string: String) -> String {
        var s = string
        return s.withUTF8 { hex(digest(UnsafeRawBufferPointer($0))) }
    }

    /// Hex digest of a byte array.
    public static func hex(of bytes: [UInt8]) -> String {
        bytes.withUnsafeBytes { hex(digest($0)) }
    }

    /// Hex digest of bytes.
    public static func hex<D: DataProtocol>(of data: D) -> String {
        var s = SHA256()
        s.update(data)
        return s.finalizeHex()
    }

    /// Hex digest of a file's contents and the number of bytes read, streamed in
    /// `fileChunk` reads (a buffer no larger than the file for small files).
    public static func hex(ofFile path: String) throws -> (hash: String, size: Int) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw PipelineError.io(path: path, message: "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw PipelineError.io(path: path, message: "cannot stat: \(String(cString: strerror(errno)))")
        }
        // One byte more than the file so that a small file takes one read plus the read that sees its end.
        let chunk = max(1, min(fileChunk, Int(st.st_size) + 1))
        _ = posix_fadvise(fd, 0, 0, Int32(POSIX_FADV_SEQUENTIAL))
        let buf = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 4096)
        defer { buf.deallocate() }
        let ctx = DigestContext()
        var total = 0
        while true {
            let n = read(fd, buf, chunk)
            if n < 0 {
                if errno == EINTR { continue }
                throw PipelineError.io(path: path, message: "read failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            total += n
            ctx.update(buf, count: n)
        }
        return (hex(ctx.finalize()), total)
    }

    /// The digest of one buffer, by a single `EVP_Digest` call.
    static func digest(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        // A null base address (empty input) is fine for libcrypto when the count is 0.
        let ok = out.withUnsafeMutableBufferPointer { o in
            EVP_Digest(bytes.baseAddress, bytes.count, o.baseAddress, &length, EVP_sha256(), nil)
        }
        DigestContext.check(ok, "EVP_Digest")
        return Array(out.prefix(Int(length)))
    }

    /// The context, duplicated first when another copy of this hasher shares it.
    private mutating func uniqueContext() -> DigestContext {
        if !isKnownUniquelyReferenced(&context) { context = context.copy() }
        return context
    }
}

/// Owns one `EVP_MD_CTX` initialised for SHA-256.
///
/// `@unchecked Sendable`: `SHA256` mutates a context only after making sure it holds the only
/// reference, so no two threads touch one context.
private final class DigestContext: @unchecked Sendable {
    let ctx: OpaquePointer

    /// A fresh SHA-256 context.
    init() {
        ctx = Self.newContext()
        Self.check(EVP_DigestInit_ex(ctx, EVP_sha256(), nil), "EVP_DigestInit_ex")
    }

    /// A context in the same state as `other`'s.
    private init(copying other: DigestContext) {
        ctx = Self.newContext()
        Self.check(EVP_MD_CTX_copy_ex(ctx, other.ctx), "EVP_MD_CTX_copy_ex")
    }

    deinit { EVP_MD_CTX_free(ctx) }

    /// An independent copy of this context's state.
    func copy() -> DigestContext { DigestContext(copying: self) }

    /// Feeds `count` bytes at `base`.
    func update(_ base: UnsafeRawPointer, count: Int) {
        Self.check(EVP_DigestUpdate(ctx, base, count), "EVP_DigestUpdate")
    }

    /// The 32-byte digest of everything fed.
    func finalize() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = out.withUnsafeMutableBufferPointer { EVP_DigestFinal_ex(ctx, $0.baseAddress, &length) }
        Self.check(ok, "EVP_DigestFinal_ex")
        return Array(out.prefix(Int(length)))
    }

    private static func newContext() -> OpaquePointer {
        guard let ctx = EVP_MD_CTX_new() else { fatalError("libcrypto: EVP_MD_CTX_new failed (out of memory)") }
        return ctx
    }

    /// Stops on a libcrypto failure. These calls fail only when libcrypto itself is broken or
    /// out of memory (never because of the bytes hashed), and a wrong digest must never be
    /// returned in place of a cache key.
    static func check(_ status: Int32, _ call: String) {
        guard status == 1 else { fatalError("libcrypto: \(call) failed") }
    }
}
