// Hashing: platform-independent SHA-256 and FNV-1a 64 used for deterministic splits and choices.
import Foundation
import Pipeline

/// Byte-exact hash functions with no platform or process dependence (unlike `Hasher`).
public enum StableHash {
    /// The SHA-256 digest (FIPS 180-4) of `bytes`, computed by the engine's `SHA256`.
    public static func sha256<Bytes: Sequence>(_ bytes: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        var hasher = SHA256()
        hasher.update(Array(bytes))
        return hasher.finalize()
    }

    /// Lowercase hex of the SHA-256 of a string's UTF-8 bytes.
    public static func sha256Hex(_ text: String) -> String {
        SHA256.hex(of: text)
    }

    /// The first 8 bytes of the SHA-256 of `text` (UTF-8) as a big-endian integer.
    public static func sha256Prefix64(_ text: String) -> UInt64 {
        sha256(text.utf8).prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// FNV-1a 64-bit hash of the UTF-8 bytes of `text`.
    public static func fnv1a64(_ text: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in text.utf8 {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01B3
        }
        return h
    }
}
