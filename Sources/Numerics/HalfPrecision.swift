// HalfPrecision: IEEE binary16 (F16) and bfloat16 (BF16) <-> Float32 conversion.
//
// Dimension legend: N element count.
//
// Bit-level conversions (no dependence on the platform's `Float16` availability), exact for
// every input: F16 -> F32 and BF16 -> F32 are lossless; F32 -> BF16 and F32 -> F16 round to
// nearest, ties to even, and keep NaNs quiet NaNs. The bulk loops work on raw little-endian
// bytes so they can read straight from a memory-mapped file at any alignment.

/// Conversions between 16-bit float formats and Float32.
public enum HalfPrecision {
    /// Float32 value of an IEEE half-precision bit pattern.
    @inlinable
    public static func f16ToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exp = UInt32(h >> 10) & 0x1F
        let mant = UInt32(h & 0x3FF)
        if exp == 0x1F {  // inf / NaN
            return Float(bitPattern: sign | 0x7F80_0000 | (mant << 13))
        }
        if exp == 0 {
            if mant == 0 { return Float(bitPattern: sign) }
            // Subnormal: mant * 2^-24, exact in Float32.
            let magnitude = Float(mant) * 0x1p-24
            return sign != 0 ? -magnitude : magnitude
        }
        return Float(bitPattern: sign | ((exp + 112) << 23) | (mant << 13))
    }

    /// IEEE half-precision bit pattern of `x`, rounded to nearest even (overflow gives inf).
    @inlinable
    public static func floatToF16(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        let sign = UInt16((bits >> 16) & 0x8000)
        let exp = Int((bits >> 23) & 0xFF)
        let mant = bits & 0x7F_FFFF
        if exp == 0xFF {  // inf / NaN (NaN stays a quiet NaN)
            return sign | 0x7C00 | (mant != 0 ? 0x200 | UInt16(mant >> 13) : 0)
        }
        let e = exp - 127 + 15
        if e >= 0x1F { return sign | 0x7C00 }
        if e <= 0 {
            // Subnormal or zero in half precision.
            if e < -10 { return sign }
            let full = mant | 0x80_0000
            let shift = UInt32(14 - e)
            var half = full >> shift
            let rem = full & ((1 << shift) - 1)
            let halfway = UInt32(1) << (shift - 1)
            if rem > halfway || (rem == halfway && (half & 1) == 1) { half += 1 }
            return sign | UInt16(half)
        }
        var half = UInt32(e) << 10 | (mant >> 13)
        let rem = mant & 0x1FFF
        if rem > 0x1000 || (rem == 0x1000 && (half & 1) == 1) { half += 1 }  // may carry into inf: correct
        return sign | UInt16(half)
    }

    /// Float32 value of a bfloat16 bit pattern.
    @inlinable
    public static func bf16ToFloat(_ b: UInt16) -> Float {
        Float(bitPattern: UInt32(b) << 16)
    }

    /// bfloat16 bit pattern of `x`, rounded to nearest even; NaNs become quiet NaNs.
    @inlinable
    public static func floatToBF16(_ x: Float) -> UInt16 {
        let n = x.bitPattern
        if (n & 0x7FFF_FFFF) > 0x7F80_0000 { return UInt16((n >> 16) | 0x40) }
        let rounded = UInt64(n) + UInt64(0x7FFF + ((n >> 16) & 1))
        return UInt16(truncatingIfNeeded: rounded >> 16)
    }

    /// Converts `count` little-endian F16 values at `src` (any alignment) into `dst`.
    ///
    /// Eight lanes at a time, branch-free: normals re-bias the exponent, inf/NaN re-bias twice,
    /// subnormals become `m * 2^-24` via an exact float subtraction; then the sign is OR-ed in.
    public static func convertF16(_ src: UnsafeRawPointer, count: Int, to dst: UnsafeMutablePointer<Float>) {
        let out = UnsafeMutableRawPointer(dst)
        var i = 0
        while i + 8 <= count {
            let h = SIMD8<UInt32>(truncatingIfNeeded: src.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<UInt16>.self))
            let sign = (h & 0x8000) &<< 16
            let em = h & 0x7FFF
            var bits = (em &<< 13) &+ 0x3800_0000
            bits.replace(with: bits &+ 0x3800_0000, where: em .>= 0x7C00)
            let sub = unsafeBitCast((em &<< 13) &+ 0x3880_0000, to: SIMD8<Float>.self) - SIMD8<Float>(repeating: 0x1p-14)
            bits.replace(with: unsafeBitCast(sub, to: SIMD8<UInt32>.self), where: em .< 0x0400)
            out.storeBytes(of: bits | sign, toByteOffset: 4 * i, as: SIMD8<UInt32>.self)
            i += 8
        }
        let bytes = src.assumingMemoryBound(to: UInt8.self)
        while i < count {
            dst[i] = f16ToFloat(UInt16(bytes[2 * i]) | UInt16(bytes[2 * i + 1]) << 8)
            i += 1
        }
    }

    /// Converts `count` little-endian BF16 values at `src` (any alignment) into `dst`.
    public static func convertBF16(_ src: UnsafeRawPointer, count: Int, to dst: UnsafeMutablePointer<Float>) {
        let out = UnsafeMutableRawPointer(dst)
        var i = 0
        while i + 8 <= count {
            let b = SIMD8<UInt32>(truncatingIfNeeded: src.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<UInt16>.self))
            out.storeBytes(of: b &<< 16, toByteOffset: 4 * i, as: SIMD8<UInt32>.self)
            i += 8
        }
        let bytes = src.assumingMemoryBound(to: UInt8.self)
        while i < count {
            dst[i] = bf16ToFloat(UInt16(bytes[2 * i]) | UInt16(bytes[2 * i + 1]) << 8)
            i += 1
        }
    }

    /// Copies `count` little-endian F32 values at `src` (any alignment) into `dst`.
    public static func convertF32(_ src: UnsafeRawPointer, count: Int, to dst: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: count * 4)
    }

    /// Writes `count` Float32 values as little-endian BF16 bytes (round to nearest even) at `dst`.
    public static func encodeBF16(_ src: UnsafePointer<Float>, count: Int, to dst: UnsafeMutableRawPointer) {
        let bytes = dst.assumingMemoryBound(to: UInt8.self)
        let raw = UnsafeRawPointer(src)
        var i = 0
        while i + 8 <= count {
            let n = raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<UInt32>.self)
            var r = (n &+ (0x7FFF &+ ((n &>> 16) & 1))) &>> 16
            r.replace(with: (n &>> 16) | 0x40, where: (n & 0x7FFF_FFFF) .> 0x7F80_0000)
            dst.storeBytes(of: SIMD8<UInt16>(truncatingIfNeeded: r), toByteOffset: 2 * i, as: SIMD8<UInt16>.self)
            i += 8
        }
        for i in i..<count {
            let b = floatToBF16(src[i])
            bytes[2 * i] = UInt8(truncatingIfNeeded: b)
            bytes[2 * i + 1] = UInt8(truncatingIfNeeded: b >> 8)
        }
    }

    /// Writes `count` Float32 values as little-endian F16 bytes (round to nearest even) at `dst`.
    public static func encodeF16(_ src: UnsafePointer<Float>, count: Int, to dst: UnsafeMutableRawPointer) {
        let bytes = dst.assumingMemoryBound(to: UInt8.self)
        for i in 0..<count {
            let h = floatToF16(src[i])
            bytes[2 * i] = UInt8(truncatingIfNeeded: h)
            bytes[2 * i + 1] = UInt8(truncatingIfNeeded: h >> 8)
        }
    }
}
