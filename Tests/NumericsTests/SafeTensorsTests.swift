import Foundation
import XCTest
@testable import Numerics

final class SafeTensorsTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("auditgap-st-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// Writes a raw safetensors file from a header string and data bytes.
    private func raw(_ name: String, header: String, data: [UInt8], declaredLength: UInt64? = nil) throws -> URL {
        let h = Array(header.utf8)
        var bytes: [UInt8] = []
        let n = declaredLength ?? UInt64(h.count)
        for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: n >> (8 * UInt64(i)))) }
        bytes += h + data
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url
    }

    private func message(_ url: URL) -> String {
        do { _ = try SafeTensors.read(url); return "no error" } catch { return "\(error)" }
    }

    func testRoundTripF32WithMetadataAndAlignment() throws {
        let a = Tensor(shape: [2, 3], data: [1, -2, 3.5, 1e-8, 65504, -0.0])
        let b = Tensor(shape: [4], data: [0.1, 0.2, 0.3, 0.4])
        let s = Tensor(scalar: 7)
        let url = dir.appendingPathComponent("m.safetensors")
        try SafeTensors.write(["a": a, "b": b, "s": s, "weird \"name\"\n": b], to: url, metadata: ["format": "pt", "k": "v\"q"])
        let bytes = try Data(contentsOf: url)
        let n = bytes.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        XCTAssertEqual((8 + n) % 8, 0, "header padded so the data section is 8-byte aligned")
        XCTAssertEqual(bytes[Int(8 + n) - 1], 0x20, "padding is spaces")
        let (tensors, meta) = try SafeTensors.readWithMetadata(url)
        XCTAssertEqual(meta, ["format": "pt", "k": "v\"q"])
        XCTAssertEqual(tensors["a"]?.shape, [2, 3])
        XCTAssertEqual(tensors["a"]?.scalars, a.scalars)
        XCTAssertEqual(tensors["b"]?.scalars, b.scalars)
        XCTAssertEqual(tensors["s"]?.shape, [])
        XCTAssertEqual(tensors["s"]?.item, 7)
        XCTAssertEqual(tensors["weird \"name\"\n"]?.scalars, b.scalars)
        let file = try SafeTensorsFile(url: url)
        XCTAssertEqual(file.names, ["a", "b", "s", "weird \"name\"\n"])
        XCTAssertEqual(file.entries["a"]?.dtype, .f32)
    }

    func testRoundTripBF16AndF16() throws {
        let x = Tensor(shape: [5], data: [1, 1 + 0x1p-8, 1 + 3 * 0x1p-8, -3.3, 1e30])
        let url = dir.appendingPathComponent("bf16.safetensors")
        try SafeTensors.write(["x": x], to: url, dtype: .bf16)
        let back = try XCTUnwrap(SafeTensors.read(url)["x"])
        XCTAssertEqual(back.scalars, x.scalars.map { HalfPrecision.bf16ToFloat(HalfPrecision.floatToBF16($0)) })
        XCTAssertEqual(back.scalars[1], 1, "ties to even")
        XCTAssertEqual(back.scalars[2], 1 + 4 * 0x1p-8)
        XCTAssertEqual(try SafeTensorsFile(url: url).entries["x"]?.dtype, .bf16)
        let url16 = dir.appendingPathComponent("f16.safetensors")
        let y = Tensor(shape: [3], data: [0.5, -1024, 0.1])
        try SafeTensors.write(["y": y], to: url16, dtype: .f16)
        XCTAssertEqual(try SafeTensors.read(url16)["y"]?.scalars, [0.5, -1024, HalfPrecision.f16ToFloat(HalfPrecision.floatToF16(0.1))])
        XCTAssertThrowsError(try SafeTensors.write(["y": y], to: url16, dtype: .i32))
    }

    func testOtherDTypesConvert() throws {
        // I64 position ids and U8 flags, as some checkpoints store buffers.
        var data: [UInt8] = []
        for v: Int64 in [3, -1] { withUnsafeBytes(of: v.littleEndian) { data += $0 } }
        data += [0, 255]
        let url = try raw("ints.safetensors",
                          header: #"{"i":{"dtype":"I64","shape":[2],"data_offsets":[0,16]},"u":{"dtype":"U8","shape":[2],"data_offsets":[16,18]}}"#,
                          data: data)
        let t = try SafeTensors.read(url)
        XCTAssertEqual(t["i"]?.scalars, [3, -1])
        XCTAssertEqual(t["u"]?.scalars, [0, 255])
    }

    func testTruncatedFiles() throws {
        let tiny = try raw("tiny.safetensors", header: "", data: [])
        try Data([1, 2, 3]).write(to: tiny)
        let m0 = message(tiny)
        XCTAssertTrue(m0.contains("truncated") && m0.contains(tiny.path), m0)
        let short = try raw("short.safetensors", header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: [0, 0, 0, 0])
        let m1 = message(short)
        XCTAssertTrue(m1.contains("tensor 'w'") && m1.contains("truncated") && m1.contains(short.path), m1)
    }

    func testHeaderLengthBeyondFile() throws {
        let url = try raw("hdr.safetensors", header: "{}", data: [], declaredLength: 1 << 40)
        let m = message(url)
        XCTAssertTrue(m.contains("header length 1099511627776") && m.contains(url.path), m)
    }

    func testOverlappingOffsets() throws {
        let url = try raw("ovl.safetensors",
                          header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                          data: [UInt8](repeating: 0, count: 12))
        let m = message(url)
        XCTAssertTrue(m.contains("tensor 'b'") && m.contains("overlap") && m.contains("'a'"), m)
    }

    func testUnknownDTypeAndSizeMismatch() throws {
        let unknown = try raw("dt.safetensors", header: #"{"a":{"dtype":"F12","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0])
        let m1 = message(unknown)
        XCTAssertTrue(m1.contains("tensor 'a'") && m1.contains("unknown dtype 'F12'"), m1)
        let mismatch = try raw("sz.safetensors", header: #"{"a":{"dtype":"BF16","shape":[3],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0])
        let m2 = message(mismatch)
        XCTAssertTrue(m2.contains("tensor 'a'") && m2.contains("need 6 bytes but data_offsets span 4"), m2)
    }

    func testMalformedHeaders() throws {
        let notJSON = try raw("nj.safetensors", header: "{oops", data: [])
        XCTAssertTrue(message(notJSON).contains("invalid JSON header"))
        let array = try raw("arr.safetensors", header: "[]", data: [])
        XCTAssertTrue(message(array).contains("JSON object"))
        let noOffsets = try raw("no.safetensors", header: #"{"a":{"dtype":"F32","shape":[1]}}"#, data: [])
        XCTAssertTrue(message(noOffsets).contains("data_offsets"))
        let reversed = try raw("rev.safetensors", header: #"{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}"#, data: [0, 0, 0, 0])
        XCTAssertTrue(message(reversed).contains("bad data_offsets"))
        let meta = try raw("meta.safetensors", header: #"{"__metadata__":{"a":1}}"#, data: [])
        XCTAssertTrue(message(meta).contains("__metadata__"))
        let missing = dir.appendingPathComponent("absent.safetensors")
        XCTAssertTrue(message(missing).contains("absent.safetensors"))
        XCTAssertThrowsError(try SafeTensorsFile(url: try raw("ok.safetensors", header: "{}", data: [])).tensor("nope")) { error in
            XCTAssertTrue("\(error)".contains("tensor 'nope'"))
        }
    }
}
