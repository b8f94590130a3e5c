// Gzip: whole-buffer gzip decompression and compression through zlib.
import CZlib
import Foundation

/// gzip helpers over zlib (`inflateInit2` / `deflateInit2` with window bits 16 + MAX_WBITS).
public enum Gzip {
    /// True when `data` starts with the gzip magic bytes 1f 8b.
    public static func isGzip(_ data: Data) -> Bool {
        data.count >= 2 && data[data.startIndex] == 0x1F && data[data.startIndex + 1] == 0x8B
    }

    /// Decompresses a gzip stream (concatenated members are all read).
    /// - Parameter file: used only in error messages.
    public static func decompress(_ data: Data, file: String = "<memory>") throws -> Data {
        if data.isEmpty { throw StudyError.compression(file: file, reason: "empty input") }
        var stream = z_stream()
        var status = inflateInit2_(&stream, 16 + MAX_WBITS, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else { throw StudyError.compression(file: file, reason: "inflateInit2 failed (\(status))") }
        defer { inflateEnd(&stream) }
        var output = Data()
        let chunk = 1 << 16
        var buffer = [UInt8](repeating: 0, count: chunk)
        var input = [UInt8](data)
        let total = input.count
        try input.withUnsafeMutableBufferPointer { inBuf in
            stream.next_in = inBuf.baseAddress
            stream.avail_in = uInt(total)
            while true {
                let produced: Int = buffer.withUnsafeMutableBufferPointer { outBuf in
                    stream.next_out = outBuf.baseAddress
                    stream.avail_out = uInt(chunk)
                    status = inflate(&stream, Z_NO_FLUSH)
                    return chunk - Int(stream.avail_out)
                }
                output.append(buffer, count: produced)
                if status == Z_STREAM_END {
                    if stream.avail_in == 0 { break }
                    // Another gzip member follows: reset and continue.
                    guard inflateReset(&stream) == Z_OK else {
                        throw StudyError.compression(file: file, reason: "inflateReset failed")
                    }
                    continue
                }
                guard status == Z_OK else {
                    let msg = stream.msg.map { String(cString: $0) } ?? "code \(status)"
                    throw StudyError.compression(file: file, reason: "inflate: \(msg)")
                }
                if stream.avail_in == 0 && produced == 0 {
                    throw StudyError.compression(file: file, reason: "truncated gzip stream")
                }
            }
        }
        return output
    }

    /// Compresses `data` into a single gzip member (level 6).
    public static func compress(_ data: Data, level: Int32 = 6) throws -> Data {
        var stream = z_stream()
        var status = deflateInit2_(&stream, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY,
                                   zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else { throw StudyError.compression(file: "<memory>", reason: "deflateInit2 failed (\(status))") }
        defer { deflateEnd(&stream) }
        var input = [UInt8](data)
        let total = input.count
        var output = Data()
        let chunk = 1 << 16
        var buffer = [UInt8](repeating: 0, count: chunk)
        input.withUnsafeMutableBufferPointer { inBuf in
            stream.next_in = inBuf.baseAddress
            stream.avail_in = uInt(total)
            repeat {
                let produced: Int = buffer.withUnsafeMutableBufferPointer { outBuf in
                    stream.next_out = outBuf.baseAddress
                    stream.avail_out = uInt(chunk)
                    status = deflate(&stream, Z_FINISH)
                    return chunk - Int(stream.avail_out)
                }
                output.append(buffer, count: produced)
            } while status == Z_OK
        }
        guard status == Z_STREAM_END else { throw StudyError.compression(file: "<memory>", reason: "deflate failed (\(status))") }
        return output
    }
}
