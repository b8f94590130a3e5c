// GGUF: parser for llama.cpp's GGUF files (v2 and v3, little-endian) and tensor dequantisation.
//
// Dimension legend: ne[0] fastest-varying GGML dimension (= last PyTorch dimension), B block
// size in elements, S block size in bytes.
//
// Layout: "GGUF" magic, u32 version, u64 tensor count, u64 metadata count, metadata
// (string key, u32 value type, value), tensor infos (string name, u32 n_dims, u64 ne[n_dims],
// u32 GGML type, u64 offset relative to the data section), padding to `general.alignment`
// (default 32), then the data. Strings are u64 length + UTF-8 bytes (no terminator).
import Dispatch
import Foundation
import Numerics

/// One GGUF metadata value.
public enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case float32(Float), bool(Bool), string(String), array([GGUFValue])
    case uint64(UInt64), int64(Int64), float64(Double)

    /// The value as an integer, for any integer type (nil otherwise or when out of range).
    public var int: Int? {
        switch self {
        case .uint8(let v): Int(v)
        case .int8(let v): Int(v)
        case .uint16(let v): Int(v)
        case .int16(let v): Int(v)
        case .uint32(let v): Int(v)
        case .int32(let v): Int(v)
        case .uint64(let v): Int(exactly: v)
        case .int64(let v): Int(v)
        default: nil
        }
    }

    /// The value as a floating-point number, for any numeric type.
    public var double: Double? {
        switch self {
        case .float32(let v): Double(v)
        case .float64(let v): v
        default: int.map(Double.init)
        }
    }

    public var string: String? { if case .string(let s) = self { s } else { nil } }
    public var bool: Bool? { if case .bool(let b) = self { b } else { nil } }
    public var array: [GGUFValue]? { if case .array(let a) = self { a } else { nil } }
    /// An array of strings (e.g. `tokenizer.ggml.tokens`).
    public var strings: [String]? { array?.compactMap(\.string) }
    /// An array of integers (e.g. `tokenizer.ggml.token_type`).
    public var ints: [Int]? { array?.compactMap(\.int) }
    /// An array of numbers (e.g. `tokenizer.ggml.scores`).
    public var doubles: [Double]? { array?.compactMap(\.double) }

    /// GGUF type name of the value ("uint32", "string", "array[string]", ...).
    public var typeName: String {
        switch self {
        case .uint8: "uint8"
        case .int8: "int8"
        case .uint16: "uint16"
        case .int16: "int16"
        case .uint32: "uint32"
        case .int32: "int32"
        case .float32: "float32"
        case .bool: "bool"
        case .string: "string"
        case .array(let a): "array[\(a.first?.typeName ?? "")]"
        case .uint64: "uint64"
        case .int64: "int64"
        case .float64: "float64"
        }
    }
}

/// GGML tensor element types (ids as in ggml.h).
public struct GGMLType: RawRepresentable, Sendable, Equatable, Hashable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let f32 = GGMLType(rawValue: 0), f16 = GGMLType(rawValue: 1)
    public static let q4_0 = GGMLType(rawValue: 2), q4_1 = GGMLType(rawValue: 3)
    public static let q5_0 = GGMLType(rawValue: 6), q5_1 = GGMLType(rawValue: 7)
    public static let q8_0 = GGMLType(rawValue: 8)
    public static let q4_K = GGMLType(rawValue: 12), q6_K = GGMLType(rawValue: 14)
    public static let bf16 = GGMLType(rawValue: 30)

    private static let table: [UInt32: (name: String, block: Int, bytes: Int)] = [
        0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20), 6: ("Q5_0", 32, 22),
        7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 40), 10: ("Q2_K", 256, 84),
        11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210),
        15: ("Q8_K", 256, 292), 16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74), 18: ("IQ3_XXS", 256, 98),
        19: ("IQ1_S", 256, 50), 20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110), 22: ("IQ2_S", 256, 82),
        23: ("IQ4_XS", 256, 136), 24: ("I8", 1, 1), 25: ("I16", 1, 2), 26: ("I32", 1, 4), 27: ("I64", 1, 8),
        28: ("F64", 1, 8), 29: ("IQ1_M", 256, 56), 30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54),
        35: ("TQ2_0", 256, 66), 39: ("MXFP4", 32, 17),
    ]

    /// Name as in ggml ("Q4_K"), or "type N" when unknown.
    public var description: String { Self.table[rawValue]?.name ?? "type \(rawValue)" }
    /// Elements per block and bytes per block; nil for unknown ids.
    public var blockLayout: (elements: Int, bytes: Int)? { Self.table[rawValue].map { ($0.block, $0.bytes) } }
    /// Whether this runtime dequantises the type.
    public var isSupported: Bool { [0, 1, 2, 3, 6, 7, 8, 12, 14, 30].contains(rawValue) }
}

/// Description of one tensor in a GGUF file.
public struct GGUFTensorInfo: Sendable, Equatable {
    /// GGUF tensor name (e.g. "blk.0.attn_q.weight").
    public let name: String
    /// Dimensions as stored, fastest first (ne[0], ne[1], ...).
    public let dims: [Int]
    public let type: GGMLType
    /// Byte offset inside the data section.
    public let offset: Int
    /// Byte size of the data, when the type's block layout is known.
    public let byteCount: Int?

    /// PyTorch-order shape (dims reversed).
    public var shape: [Int] { dims.reversed() }
    /// Number of elements.
    public var elementCount: Int { dims.reduce(1, *) }
}

/// A memory-mapped, validated GGUF file.
public struct GGUFFile: Sendable {
    public let mapped: MappedFile
    public let version: UInt32
    /// Every metadata value by key.
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    /// Tensor infos in file order.
    public let tensors: [GGUFTensorInfo]
    /// `general.alignment` (default 32).
    public let alignment: Int
    /// File offset of the data section.
    public let dataStart: Int

    var path: String { mapped.url.path }

    /// Maps and parses `url`; throws `ModelError.malformedGGUF` naming the offending part.
    public init(url: URL) throws {
        let file = url.path
        do { mapped = try MappedFile(url: url) } catch let e as MappedFileError {
            throw ModelError.io(path: file, reason: e.reason)
        }
        var r = GGUFReader(bytes: mapped.bytes, file: file)
        let magic = try r.bytes(4, context: "header magic", expected: "4 bytes \"GGUF\"")
        guard magic == Array("GGUF".utf8) else {
            throw ModelError.malformedGGUF(file: file, context: "header magic", expected: "\"GGUF\" (got bytes \(magic)); not a GGUF file")
        }
        version = try r.u32(context: "header version")
        guard version.byteSwapped != 2 && version.byteSwapped != 3 else {
            throw ModelError.malformedGGUF(file: file, context: "header version", expected: "a little-endian GGUF file (this one is big-endian)")
        }
        guard version == 2 || version == 3 else {
            throw ModelError.malformedGGUF(file: file, context: "header version", expected: "version 2 or 3, got \(version)")
        }
        let tensorCount = try r.u64(context: "header tensor count")
        let kvCount = try r.u64(context: "header metadata count")
        guard tensorCount < 1 << 24, kvCount < 1 << 24 else {
            throw ModelError.malformedGGUF(file: file, context: "header", expected: "plausible counts, got \(tensorCount) tensors and \(kvCount) keys")
        }
        var metadata: [String: GGUFValue] = [:]
        var keys: [String] = []
        for i in 0..<Int(kvCount) {
            let key = try r.string(context: "metadata key #\(i)")
            let type = try r.u32(context: "metadata '\(key)' type")
            metadata[key] = try r.value(type: type, context: "metadata '\(key)'", depth: 0)
            keys.append(key)
        }
        self.metadata = metadata
        metadataKeys = keys
        var align = 32
        if let a = metadata["general.alignment"] {
            guard let v = a.int, v > 0, v & (v - 1) == 0 else {
                throw ModelError.malformedGGUF(file: file, context: "metadata 'general.alignment'", expected: "a positive power of two, got \(a)")
            }
            align = v
        }
        alignment = align
        var infos: [GGUFTensorInfo] = []
        for i in 0..<Int(tensorCount) {
            let name = try r.string(context: "tensor info #\(i) name")
            let nDims = try r.u32(context: "tensor '\(name)' n_dims")
            guard (1...4).contains(nDims) else {
                throw ModelError.malformedGGUF(file: file, context: "tensor '\(name)'", expected: "1 to 4 dimensions, got \(nDims)")
            }
            var dims: [Int] = []
            for _ in 0..<nDims {
                let d = try r.u64(context: "tensor '\(name)' dims")
                guard d < 1 << 40 else { throw ModelError.malformedGGUF(file: file, context: "tensor '\(name)'", expected: "plausible dimensions, got \(d)") }
                dims.append(Int(d))
            }
            let type = GGMLType(rawValue: try r.u32(context: "tensor '\(name)' type"))
            let offset = try r.u64(context: "tensor '\(name)' offset")
            guard offset < 1 << 50, Int(offset) % align == 0 else {
                throw ModelError.malformedGGUF(file: file, context: "tensor '\(name)' offset", expected: "a multiple of the alignment \(align), got \(offset)")
            }
            var byteCount: Int?
            if let layout = type.blockLayout {
                guard dims[0] % layout.elements == 0 else {
                    throw ModelError.malformedGGUF(file: file, context: "tensor '\(name)'", expected: "ne[0] = \(dims[0]) to be a multiple of the \(type) block size \(layout.elements)")
                }
                byteCount = dims.reduce(1, *) / layout.elements * layout.bytes
            }
            infos.append(GGUFTensorInfo(name: name, dims: dims, type: type, offset: Int(offset), byteCount: byteCount))
        }
        dataStart = (r.position + align - 1) / align * align
        let dataSize = mapped.count - dataStart
        var seen = Set<String>()
        for t in infos {
            guard seen.insert(t.name).inserted else {
                throw ModelError.malformedGGUF(file: file, context: "tensor '\(t.name)'", expected: "unique tensor names (duplicate)")
            }
            if let n = t.byteCount, t.offset + n > dataSize {
                throw ModelError.malformedGGUF(file: file, context: "tensor '\(t.name)'",
                                               expected: "data [\(t.offset), \(t.offset + n)) within the \(max(dataSize, 0))-byte data section; file truncated")
            }
        }
        let ranges = infos.filter { ($0.byteCount ?? 0) > 0 }.sorted { $0.offset < $1.offset }
        for i in ranges.indices.dropFirst() where ranges[i].offset < ranges[i - 1].offset + (ranges[i - 1].byteCount ?? 0) {
            throw ModelError.malformedGGUF(file: file, context: "tensor '\(ranges[i].name)'", expected: "data not overlapping tensor '\(ranges[i - 1].name)'")
        }
        tensors = infos
    }

    /// The info of the named tensor.
    public func tensorInfo(_ name: String) -> GGUFTensorInfo? { tensors.first { $0.name == name } }

    /// The tensor dequantised to Float32, in PyTorch shape (GGUF dims reversed).
    public func dequantize(_ info: GGUFTensorInfo) throws -> Tensor {
        guard info.type.isSupported, let n = info.byteCount else {
            throw ModelError.unsupportedTensorType(file: path, tensor: info.name, type: info.type.description)
        }
        guard let base = mapped.base, n > 0 else { return Tensor(zeros: info.shape) }
        let src = base + dataStart + info.offset
        return Tensor(shape: info.shape) { out in
            if let dst = out.baseAddress { GGUFQuants.dequantize(info.type, src, count: out.count, into: dst) }
        }
    }

    /// The named tensor dequantised; throws when absent.
    public func dequantize(_ name: String) throws -> Tensor {
        guard let info = tensorInfo(name) else { throw ModelError.missingWeight(name: name, source: path) }
        return try dequantize(info)
    }
}

/// Bounds-checked little-endian reader over the GGUF header.
struct GGUFReader {
    let bytes: UnsafeRawBufferPointer
    let file: String
    var position = 0

    init(bytes: UnsafeRawBufferPointer, file: String) {
        self.bytes = bytes
        self.file = file
    }

    private func truncated(_ context: String, _ expected: String) -> ModelError {
        .malformedGGUF(file: file, context: "\(context) (byte \(position))", expected: "\(expected); file truncated at \(bytes.count) bytes")
    }

    mutating func bytes(_ n: Int, context: String, expected: String) throws -> [UInt8] {
        guard n >= 0, position + n <= bytes.count else { throw truncated(context, expected) }
        defer { position += n }
        return Array(bytes[position..<(position + n)])
    }

    mutating func scalar<T: FixedWidthInteger>(_: T.Type, context: String) throws -> T {
        let size = MemoryLayout<T>.size
        guard position + size <= bytes.count, let base = bytes.baseAddress else {
            throw truncated(context, "\(size)-byte \(T.self)")
        }
        defer { position += size }
        return T(littleEndian: base.loadUnaligned(fromByteOffset: position, as: T.self))
    }

    mutating func u32(context: String) throws -> UInt32 { try scalar(UInt32.self, context: context) }
    mutating func u64(context: String) throws -> UInt64 { try scalar(UInt64.self, context: context) }

    mutating func string(context: String) throws -> String {
        let n = try u64(context: context + " length")
        guard n <= UInt64(bytes.count - position) else { throw truncated(context, "a string of \(n) bytes") }
        let raw = try bytes(Int(n), context: context, expected: "\(n) bytes")
        return String(decoding: raw, as: UTF8.self)
    }

    mutating func value(type: UInt32, context: String, depth: Int) throws -> GGUFValue {
        switch type {
        case 0: return .uint8(try scalar(UInt8.self, context: context))
        case 1: return .int8(try scalar(Int8.self, context: context))
        case 2: return .uint16(try scalar(UInt16.self, context: context))
        case 3: return .int16(try scalar(Int16.self, context: context))
        case 4: return .uint32(try scalar(UInt32.self, context: context))
        case 5: return .int32(try scalar(Int32.self, context: context))
        case 6: return .float32(Float(bitPattern: try scalar(UInt32.self, context: context)))
        case 7:
            let b = try scalar(UInt8.self, context: context)
            guard b <= 1 else { throw ModelError.malformedGGUF(file: file, context: context, expected: "a bool byte 0 or 1, got \(b)") }
            return .bool(b == 1)
        case 8: return .string(try string(context: context))
        case 9:
            guard depth < 8 else { throw ModelError.malformedGGUF(file: file, context: context, expected: "arrays nested at most 8 deep") }
            let elementType = try u32(context: context + " array type")
            let count = try u64(context: context + " array length")
            guard count <= UInt64(bytes.count - position) else { throw truncated(context, "an array of \(count) elements") }
            var items: [GGUFValue] = []
            items.reserveCapacity(Int(count))
            for i in 0..<Int(count) {
                items.append(try value(type: elementType, context: "\(context)[\(i)]", depth: depth + 1))
            }
            return .array(items)
        case 10: return .uint64(try scalar(UInt64.self, context: context))
        case 11: return .int64(try scalar(Int64.self, context: context))
        case 12: return .float64(Double(bitPattern: try scalar(UInt64.self, context: context)))
        default:
            throw ModelError.malformedGGUF(file: file, context: context, expected: "a value type 0...12, got \(type)")
        }
    }
}
