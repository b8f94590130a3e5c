import XCTest
@testable import Numerics

final class HalfPrecisionTests: XCTestCase {
    func testF16KnownValues() {
        XCTAssertEqual(HalfPrecision.f16ToFloat(0x3C00), 1)
        XCTAssertEqual(HalfPrecision.f16ToFloat(0xC000), -2)
        XCTAssertEqual(HalfPrecision.f16ToFloat(0x7BFF), 65504)
        XCTAssertEqual(HalfPrecision.f16ToFloat(0x0001), 0x1p-24, "smallest subnormal")
        XCTAssertEqual(HalfPrecision.f16ToFloat(0x03FF), 1023 * 0x1p-24, "largest subnormal")
        XCTAssertEqual(HalfPrecision.f16ToFloat(0x8000).bitPattern, (-0.0 as Float).bitPattern)
        XCTAssertEqual(HalfPrecision.f16ToFloat(0x7C00), .infinity)
        XCTAssertTrue(HalfPrecision.f16ToFloat(0x7E00).isNaN)
    }

    func testF16RoundTripsEveryBitPattern() {
        for bits in 0...UInt16.max {
            let f = HalfPrecision.f16ToFloat(bits)
            if f.isNaN {
                XCTAssertTrue(HalfPrecision.f16ToFloat(HalfPrecision.floatToF16(f)).isNaN)
                continue
            }
            XCTAssertEqual(HalfPrecision.floatToF16(f), bits, "f16 \(bits)")
        }
    }

    func testFloatToF16RoundsToNearestEven() {
        // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even (1).
        XCTAssertEqual(HalfPrecision.floatToF16(1 + 0x1p-11), 0x3C00)
        // 1 + 3 * 2^-11 is halfway between 1 + 2^-10 (odd) and 1 + 2^-9: rounds up to even.
        XCTAssertEqual(HalfPrecision.floatToF16(1 + 3 * 0x1p-11), 0x3C02)
        XCTAssertEqual(HalfPrecision.floatToF16(1 + 0x1p-11 + 0x1p-20), 0x3C01)
        XCTAssertEqual(HalfPrecision.floatToF16(70000), 0x7C00, "overflow to inf")
        XCTAssertEqual(HalfPrecision.floatToF16(0x1p-26), 0, "below half the smallest subnormal")
        XCTAssertEqual(HalfPrecision.floatToF16(0x1p-25 * 1.5), 0x0001)
    }

    func testBF16RoundToNearestEven() {
        XCTAssertEqual(HalfPrecision.floatToBF16(1), 0x3F80)
        XCTAssertEqual(HalfPrecision.bf16ToFloat(0x3F80), 1)
        // 1 + 2^-8 is halfway between 1 (even) and 1 + 2^-7: stays 1.
        XCTAssertEqual(HalfPrecision.floatToBF16(1 + 0x1p-8), 0x3F80)
        // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6: rounds up.
        XCTAssertEqual(HalfPrecision.floatToBF16(1 + 3 * 0x1p-8), 0x3F82)
        XCTAssertEqual(HalfPrecision.floatToBF16(1 + 0x1p-8 + 0x1p-20), 0x3F81)
        XCTAssertEqual(HalfPrecision.floatToBF16(-.infinity), 0xFF80)
        XCTAssertEqual(HalfPrecision.floatToBF16(.greatestFiniteMagnitude), 0x7F80, "rounds up to inf")
        let nan = HalfPrecision.floatToBF16(Float(bitPattern: 0x7F80_0001))
        XCTAssertTrue(HalfPrecision.bf16ToFloat(nan).isNaN, "signalling NaN with low payload stays NaN")
        for bits: UInt16 in [0x0000, 0x0001, 0x3F80, 0xC2F7, 0x7F7F, 0x8001] {
            XCTAssertEqual(HalfPrecision.floatToBF16(HalfPrecision.bf16ToFloat(bits)), bits)
        }
    }

    func testBulkConversionsAtOddAlignment() {
        let values: [Float] = [0, 1, -2.5, 65504, 0x1p-24, 3.140625]
        var raw = [UInt8](repeating: 0, count: 1 + 2 * values.count)
        raw.withUnsafeMutableBytes { buf in
            values.withUnsafeBufferPointer { HalfPrecision.encodeF16($0.baseAddress!, count: values.count, to: buf.baseAddress! + 1) }
        }
        var out = [Float](repeating: 0, count: values.count)
        raw.withUnsafeBytes { buf in
            out.withUnsafeMutableBufferPointer { HalfPrecision.convertF16(buf.baseAddress! + 1, count: values.count, to: $0.baseAddress!) }
        }
        XCTAssertEqual(out, values)
        raw.withUnsafeMutableBytes { buf in
            values.withUnsafeBufferPointer { HalfPrecision.encodeBF16($0.baseAddress!, count: values.count, to: buf.baseAddress! + 1) }
        }
        raw.withUnsafeBytes { buf in
            out.withUnsafeMutableBufferPointer { HalfPrecision.convertBF16(buf.baseAddress! + 1, count: values.count, to: $0.baseAddress!) }
        }
        XCTAssertEqual(out, values.map { HalfPrecision.bf16ToFloat(HalfPrecision.floatToBF16($0)) })
        XCTAssertEqual(out[5], 3.140625)
        XCTAssertEqual(out[3], 65536, "65504 rounds to 65536 in bfloat16")
    }
}

final class HalfPrecisionBulkTests: XCTestCase {
    /// The vectorised bulk loops agree with the scalar conversion on every bit pattern.
    func testBulkMatchesScalarOnEveryPattern() {
        let n = 1 << 16
        var raw = [UInt8](repeating: 0, count: 2 * n + 1)
        for v in 0..<n {
            raw[1 + 2 * v] = UInt8(v & 0xFF)
            raw[2 + 2 * v] = UInt8(v >> 8)
        }
        var f16 = [Float](repeating: 0, count: n), bf16 = [Float](repeating: 0, count: n)
        raw.withUnsafeBytes { buf in
            f16.withUnsafeMutableBufferPointer { HalfPrecision.convertF16(buf.baseAddress! + 1, count: n, to: $0.baseAddress!) }
            bf16.withUnsafeMutableBufferPointer { HalfPrecision.convertBF16(buf.baseAddress! + 1, count: n, to: $0.baseAddress!) }
        }
        var bad = 0
        for v in 0..<n {
            let want = HalfPrecision.f16ToFloat(UInt16(v))
            if !(f16[v].bitPattern == want.bitPattern || (f16[v].isNaN && want.isNaN)) { bad += 1 }
            if bf16[v].bitPattern != HalfPrecision.bf16ToFloat(UInt16(v)).bitPattern { bad += 1 }
        }
        XCTAssertEqual(bad, 0)
    }

    /// The vectorised BF16 encoder agrees with the scalar rounding (specials, ties, random bits).
    func testEncodeBF16MatchesScalar() {
        var rng = SplitMix64(seed: 7)
        var values: [Float] = [0, -0.0, 1, 1 + 0x1p-8, 1 + 3 * 0x1p-8, .infinity, -.infinity, .nan,
                               Float(bitPattern: 0x7F80_0001), Float(bitPattern: 0xFFFF_FFFF), .greatestFiniteMagnitude,
                               -.greatestFiniteMagnitude, .leastNonzeroMagnitude]
        for _ in 0..<10_000 { values.append(Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))) }
        var out = [UInt8](repeating: 0, count: 2 * values.count)
        out.withUnsafeMutableBytes { buf in
            values.withUnsafeBufferPointer { HalfPrecision.encodeBF16($0.baseAddress!, count: values.count, to: buf.baseAddress!) }
        }
        var bad = 0
        for (i, v) in values.enumerated() where UInt16(out[2 * i]) | UInt16(out[2 * i + 1]) << 8 != HalfPrecision.floatToBF16(v) {
            bad += 1
        }
        XCTAssertEqual(bad, 0)
    }
}
