/// The GPT-2 byte-to-unicode map used by byte-level BPE (HF `bytes_to_unicode`).
///
/// Printable bytes 33...126, 161...172 and 174...255 map to themselves; the remaining 68 bytes
/// map, in increasing order, to U+0100, U+0101, ...
public enum ByteLevel {
    /// Scalar for each byte value.
    public static let byteToScalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
            if printable {
                table[b] = Unicode.Scalar(UInt8(b))
            } else {
                table[b] = Unicode.Scalar(next) ?? " "  // next stays in U+0100...U+0143
                next += 1
            }
        }
        return table
    }()

    /// Byte for each mapped scalar (inverse of `byteToScalar`).
    public static let scalarToByte: [UInt32: UInt8] = {
        var map: [UInt32: UInt8] = [:]
        for (b, s) in byteToScalar.enumerated() { map[s.value] = UInt8(b) }
        return map
    }()

    /// Maps the UTF-8 bytes of `scalars` to byte-level scalars.
    static func encode(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(scalars.count)
        for s in scalars {
            if s.value < 0x80 {
                out.append(byteToScalar[Int(s.value)])
            } else {
                UTF8.encode(s) { out.append(byteToScalar[Int($0)]) }
            }
        }
        return out
    }
}
