// GGUFQuants: dequantisation of GGML block formats to Float32 (ggml-quants.c semantics).
//
// Dimension legend: N element count, B elements per block (32 or 256 = QK_K).
//
// Block layouts (all little-endian, f16 = IEEE half):
//   Q8_0 (B 32, 34 bytes): f16 d, i8 q[32];                 y = q * d
//   Q4_0 (B 32, 18 bytes): f16 d, u8 qs[16];                y[j] = (lo(qs[j]) - 8) * d, y[j+16] = (hi(qs[j]) - 8) * d
//   Q4_1 (B 32, 20 bytes): f16 d, f16 m, u8 qs[16];         y = q * d + m (same nibble order)
//   Q5_0 (B 32, 22 bytes): f16 d, u32 qh, u8 qs[16];        q = nibble | bit j of qh << 4, y = (q - 16) * d
//   Q5_1 (B 32, 24 bytes): f16 d, f16 m, u32 qh, u8 qs[16]; y = q * d + m
//   Q4_K (B 256, 144 bytes): f16 d, f16 dmin, u8 scales[12] (8 x 6-bit scale/min), u8 qs[128];
//       sub-block s (32 elements) = d*sc[s] * q - dmin*m[s]; each 64-element chunk takes
//       32 bytes: low nibbles first, then high nibbles.
//   Q6_K (B 256, 210 bytes): u8 ql[128], u8 qh[64], i8 scales[16], f16 d;
//       q = (4 low bits from ql | 2 high bits from qh) - 32, y = d * scales[i/16] * q.
import Numerics

/// Block dequantisation kernels.
enum GGUFQuants {
    @inline(__always)
    private static func f16(_ p: UnsafePointer<UInt8>, _ at: Int) -> Float {
        HalfPrecision.f16ToFloat(UInt16(p[at]) | UInt16(p[at + 1]) << 8)
    }

    /// Dequantises `count` elements of `type` at `src` into `dst` (type must be supported).
    static func dequantize(_ type: GGMLType, _ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>) {
        let p = src.assumingMemoryBound(to: UInt8.self)
        switch type {
        case .f32: HalfPrecision.convertF32(src, count: count, to: dst)
        case .f16: HalfPrecision.convertF16(src, count: count, to: dst)
        case .bf16: HalfPrecision.convertBF16(src, count: count, to: dst)
        case .q8_0: q8_0(p, count: count, dst)
        case .q4_0: q4(p, count: count, dst, withMin: false)
        case .q4_1: q4(p, count: count, dst, withMin: true)
        case .q5_0: q5(p, count: count, dst, withMin: false)
        case .q5_1: q5(p, count: count, dst, withMin: true)
        case .q4_K: q4_K(p, count: count, dst)
        case .q6_K: q6_K(p, count: count, dst)
        default: preconditionFailure("GGUFQuants.dequantize: unsupported type \(type) (callers check isSupported)")
        }
    }

    private static func q8_0(_ p: UnsafePointer<UInt8>, count: Int, _ y: UnsafeMutablePointer<Float>) {
        for b in 0..<(count / 32) {
            let blk = p + b * 34
            let d = f16(blk, 0)
            let out = y + b * 32
            for j in 0..<32 { out[j] = Float(Int8(bitPattern: blk[2 + j])) * d }
        }
    }

    private static func q4(_ p: UnsafePointer<UInt8>, count: Int, _ y: UnsafeMutablePointer<Float>, withMin: Bool) {
        let size = withMin ? 20 : 18
        for b in 0..<(count / 32) {
            let blk = p + b * size
            let d = f16(blk, 0)
            let out = y + b * 32
            if withMin {
                let m = f16(blk, 2)
                let qs = blk + 4
                for j in 0..<16 {
                    out[j] = d * Float(qs[j] & 0x0F) + m
                    out[j + 16] = d * Float(qs[j] >> 4) + m
                }
            } else {
                let qs = blk + 2
                for j in 0..<16 {
                    out[j] = d * Float(Int(qs[j] & 0x0F) - 8)
                    out[j + 16] = d * Float(Int(qs[j] >> 4) - 8)
                }
            }
        }
    }

    private static func q5(_ p: UnsafePointer<UInt8>, count: Int, _ y: UnsafeMutablePointer<Float>, withMin: Bool) {
        let size = withMin ? 24 : 22
        for b in 0..<(count / 32) {
            let blk = p + b * size
            let d = f16(blk, 0)
            let m: Float = withMin ? f16(blk, 2) : 0
            let h = withMin ? blk + 4 : blk + 2
            let qh = UInt32(h[0]) | UInt32(h[1]) << 8 | UInt32(h[2]) << 16 | UInt32(h[3]) << 24
            let qs = h + 4
            let out = y + b * 32
            for j in 0..<16 {
                let lo = Int(qs[j] & 0x0F) | Int((qh >> UInt32(j)) & 1) << 4
                let hi = Int(qs[j] >> 4) | Int((qh >> UInt32(j + 16)) & 1) << 4
                if withMin {
                    out[j] = d * Float(lo) + m
                    out[j + 16] = d * Float(hi) + m
                } else {
                    out[j] = d * Float(lo - 16)
                    out[j + 16] = d * Float(hi - 16)
                }
            }
        }
    }

    private static func q4_K(_ p: UnsafePointer<UInt8>, count: Int, _ y: UnsafeMutablePointer<Float>) {
        for b in 0..<(count / 256) {
            let blk = p + b * 144
            let d = f16(blk, 0), dmin = f16(blk, 2)
            let s = blk + 4
            let qs = blk + 16
            let out = y + b * 256
            for chunk in 0..<4 {
                let q = qs + chunk * 32
                for half in 0..<2 {
                    let j = 2 * chunk + half
                    let sc: UInt8, m: UInt8
                    if j < 4 {
                        sc = s[j] & 63
                        m = s[j + 4] & 63
                    } else {
                        sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4)
                        m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4)
                    }
                    let d1 = d * Float(sc), m1 = dmin * Float(m)
                    let o = out + chunk * 64 + half * 32
                    let shift: UInt8 = half == 0 ? 0 : 4
                    for l in 0..<32 { o[l] = d1 * Float((q[l] >> shift) & 0x0F) - m1 }
                }
            }
        }
    }

    private static func q6_K(_ p: UnsafePointer<UInt8>, count: Int, _ y: UnsafeMutablePointer<Float>) {
        for b in 0..<(count / 256) {
            let blk = p + b * 210
            let d = f16(blk, 208)
            let out = y + b * 256
            for n in 0..<2 {
                let ql = blk + n * 64
                let qh = blk + 128 + n * 32
                let sc = blk + 192 + n * 8
                let o = out + n * 128
                for l in 0..<32 {
                    let i = l / 16
                    let q1 = Int((ql[l] & 0x0F) | ((qh[l] & 3) << 4)) - 32
                    let q2 = Int((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32
                    let q3 = Int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32
                    let q4 = Int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32
                    o[l] = d * Float(Int8(bitPattern: sc[i])) * Float(q1)
                    o[l + 32] = d * Float(Int8(bitPattern: sc[i + 2])) * Float(q2)
                    o[l + 64] = d * Float(Int8(bitPattern: sc[i + 4])) * Float(q3)
                    o[l + 96] = d * Float(Int8(bitPattern: sc[i + 6])) * Float(q4)
                }
            }
        }
    }
}
