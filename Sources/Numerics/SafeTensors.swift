// SafeTensors: read (memory-mapped, validated) and write the safetensors format.
//
// Dimension legend: N header length in bytes, D data-section size in bytes.
//
// Layout: u64 little-endian N, then an N-byte UTF-8 JSON header mapping each tensor name to
// {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the data section that
// starts at 8 + N) plus an optional "__metadata__" string map, then the data. Writers pad the
// header with spaces so 8 + N is a multiple of 8. Every tensor is converted to Float32 once.
import Dispatch
import Foundation

/// Element types of the safetensors format.
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .f64, .i64: 8
        case .f32, .i32: 4
        case .f16, .bf16, .i16: 2
        case .i8, .u8, .bool: 1
        }
    }
}

/// A malformed, truncated or unsupported safetensors file.
public struct SafeTensorsError: Error, CustomStringConvertible, Equatable {
    /// What is wrong.
    public enum Kind: Equatable, Sendable {
        case io(String)
        case truncated(String)
        case headerTooLarge(headerLength: UInt64, fileSize: Int)
        case badHeader(String)
        case unknownDType(String)
        case badOffsets(String)
        case overlapping(other: String)
        case sizeMismatch(expectedBytes: Int, actualBytes: Int)
        case missingTensor
        case unsupportedWriteDType(String)
    }

    public let kind: Kind
    /// Path of the file.
    public let file: String
    /// Tensor concerned, when there is one.
    public let tensor: String?

    public init(_ kind: Kind, file: String, tensor: String? = nil) {
        self.kind = kind
        self.file = file
        self.tensor = tensor
    }

    public var description: String {
        let subject = tensor.map { "\(file): tensor '\($0)'" } ?? file
        switch kind {
        case .io(let why): return "\(subject): \(why)"
        case .truncated(let why): return "\(subject): truncated file: \(why)"
        case .headerTooLarge(let n, let size):
            return "\(subject): header length \(n) goes beyond the end of the \(size)-byte file (expected 8 + header length <= file size; not a safetensors file or truncated)"
        case .badHeader(let why): return "\(subject): invalid JSON header: \(why)"
        case .unknownDType(let d):
            return "\(subject): unknown dtype '\(d)' (expected one of \(SafeTensorsDType.allCases.map(\.rawValue).joined(separator: ", ")))"
        case .badOffsets(let why): return "\(subject): bad data_offsets: \(why)"
        case .overlapping(let other): return "\(subject): data_offsets overlap those of tensor '\(other)'"
        case .sizeMismatch(let expected, let actual):
            return "\(subject): dtype and shape need \(expected) bytes but data_offsets span \(actual)"
        case .missingTensor: return "\(subject): no such tensor in the file"
        case .unsupportedWriteDType(let d): return "\(subject): cannot write dtype \(d) (supported: F32, F16, BF16)"
        }
    }
}

/// One validated entry of a safetensors header.
public struct SafeTensorsEntry: Sendable, Equatable {
    public let dtype: SafeTensorsDType
    public let shape: [Int]
    /// Byte range inside the data section.
    public let begin: Int, end: Int
}

/// A memory-mapped safetensors file with a validated header; tensors convert on demand.
public struct SafeTensorsFile: Sendable {
    /// The mapping (kept alive as long as this value).
    public let mapped: MappedFile
    /// Tensor entries by name.
    public let entries: [String: SafeTensorsEntry]
    /// `__metadata__` of the header (empty when absent).
    public let metadata: [String: String]
    /// Offset of the data section in the file (8 + N).
    public let dataStart: Int

    /// Tensor names, sorted.
    public var names: [String] { entries.keys.sorted() }

    /// Maps and validates `url`.
    public init(url: URL) throws {
        let file = url.path
        do { mapped = try MappedFile(url: url) } catch let e as MappedFileError {
            throw SafeTensorsError(.io(e.reason), file: file)
        }
        let size = mapped.count
        guard size >= 8, let base = mapped.base else {
            throw SafeTensorsError(.truncated("file is \(size) bytes; it must start with an 8-byte header length"), file: file)
        }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(base.load(fromByteOffset: i, as: UInt8.self)) << (8 * UInt64(i)) }
        guard n <= UInt64(size - 8) else { throw SafeTensorsError(.headerTooLarge(headerLength: n, fileSize: size), file: file) }
        let headerLength = Int(n)
        dataStart = 8 + headerLength
        let headerData = Data(bytes: base + 8, count: headerLength)
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: headerData) } catch {
            throw SafeTensorsError(.badHeader("not valid JSON (\(error.localizedDescription))"), file: file)
        }
        guard let object = json as? [String: Any] else {
            throw SafeTensorsError(.badHeader("expected a JSON object at the top level"), file: file)
        }
        let dataSize = size - dataStart
        var entries: [String: SafeTensorsEntry] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in object {
            if name == "__metadata__" {
                guard let meta = value as? [String: Any] else {
                    throw SafeTensorsError(.badHeader("__metadata__ must be an object of strings"), file: file)
                }
                for (k, v) in meta {
                    guard let s = v as? String else {
                        throw SafeTensorsError(.badHeader("__metadata__['\(k)'] must be a string"), file: file)
                    }
                    metadata[k] = s
                }
                continue
            }
            entries[name] = try Self.parseEntry(value, name: name, file: file, dataSize: dataSize)
        }
        // Non-overlapping: sort by begin and compare neighbours (empty tensors never overlap).
        let sorted = entries.filter { $0.value.end > $0.value.begin }.sorted { $0.value.begin < $1.value.begin }
        for i in sorted.indices.dropFirst() where sorted[i].value.begin < sorted[i - 1].value.end {
            throw SafeTensorsError(.overlapping(other: sorted[i - 1].key), file: file, tensor: sorted[i].key)
        }
        self.entries = entries
        self.metadata = metadata
    }

    private static func parseEntry(_ value: Any, name: String, file: String, dataSize: Int) throws -> SafeTensorsEntry {
        guard let dict = value as? [String: Any] else {
            throw SafeTensorsError(.badHeader("entry must be an object with dtype, shape, data_offsets"), file: file, tensor: name)
        }
        guard let dtypeName = dict["dtype"] as? String else {
            throw SafeTensorsError(.badHeader("missing string 'dtype'"), file: file, tensor: name)
        }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            throw SafeTensorsError(.unknownDType(dtypeName), file: file, tensor: name)
        }
        guard let shapeAny = dict["shape"] as? [Any] else {
            throw SafeTensorsError(.badHeader("missing array 'shape'"), file: file, tensor: name)
        }
        var shape: [Int] = []
        for d in shapeAny {
            guard let v = Self.integer(d), v >= 0 else {
                throw SafeTensorsError(.badHeader("shape must hold non-negative integers, got \(shapeAny)"), file: file, tensor: name)
            }
            shape.append(v)
        }
        guard let offs = dict["data_offsets"] as? [Any], offs.count == 2,
              let begin = Self.integer(offs[0]), let end = Self.integer(offs[1]) else {
            throw SafeTensorsError(.badHeader("missing 'data_offsets' [begin, end]"), file: file, tensor: name)
        }
        guard begin >= 0, end >= begin else {
            throw SafeTensorsError(.badOffsets("[\(begin), \(end)] is not a valid range"), file: file, tensor: name)
        }
        guard end <= dataSize else {
            throw SafeTensorsError(.truncated("data_offsets [\(begin), \(end)] extend beyond the \(dataSize)-byte data section"),
                                   file: file, tensor: name)
        }
        var elements = 1
        for d in shape {
            let (m, overflow) = elements.multipliedReportingOverflow(by: d)
            guard !overflow else { throw SafeTensorsError(.badHeader("shape \(shape) is too large"), file: file, tensor: name) }
            elements = m
        }
        let expected = elements * dtype.size
        guard expected == end - begin else {
            throw SafeTensorsError(.sizeMismatch(expectedBytes: expected, actualBytes: end - begin), file: file, tensor: name)
        }
        return SafeTensorsEntry(dtype: dtype, shape: shape, begin: begin, end: end)
    }

    private static func integer(_ v: Any) -> Int? {
        if let i = v as? Int { return i }
        if let d = v as? Double, d.rounded() == d, abs(d) < 9e15 { return Int(d) }
        return nil
    }

    /// The named tensor converted to Float32.
    public func tensor(_ name: String) throws -> Tensor {
        guard let entry = entries[name] else { throw SafeTensorsError(.missingTensor, file: mapped.url.path, tensor: name) }
        return tensor(entry)
    }

    /// Converts one validated entry to a Float32 tensor.
    public func tensor(_ entry: SafeTensorsEntry) -> Tensor {
        Tensor(shape: entry.shape) { out in
            guard let base = mapped.base, let dst = out.baseAddress, out.count > 0 else { return }
            let src = base + dataStart + entry.begin
            Self.convert(src, dtype: entry.dtype, count: out.count, to: dst)
        }
    }

    static func convert(_ src: UnsafeRawPointer, dtype: SafeTensorsDType, count n: Int, to dst: UnsafeMutablePointer<Float>) {
        switch dtype {
        case .f32: HalfPrecision.convertF32(src, count: n, to: dst)
        case .f16: HalfPrecision.convertF16(src, count: n, to: dst)
        case .bf16: HalfPrecision.convertBF16(src, count: n, to: dst)
        case .f64: for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)) }
        case .i64: for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)) }
        case .i32: for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)) }
        case .i16: for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self)) }
        case .i8: for i in 0..<n { dst[i] = Float(src.load(fromByteOffset: i, as: Int8.self)) }
        case .u8, .bool: for i in 0..<n { dst[i] = Float(src.load(fromByteOffset: i, as: UInt8.self)) }
        }
    }

    /// Every tensor converted to Float32 (in parallel over tensors).
    public func allTensors(names: [String]? = nil) throws -> [String: Tensor] {
        let wanted = names ?? self.names
        for name in wanted where entries[name] == nil {
            throw SafeTensorsError(.missingTensor, file: mapped.url.path, tensor: name)
        }
        let results = ResultSlots<Tensor>(count: wanted.count)
        DispatchQueue.concurrentPerform(iterations: wanted.count) { i in
            if let entry = entries[wanted[i]] { results.set(i, tensor(entry)) }
        }
        var out: [String: Tensor] = [:]
        for (i, name) in wanted.enumerated() { out[name] = results.get(i) }
        return out
    }
}

/// Result slots filled by concurrent workers (lock-protected, hence `@unchecked Sendable`).
final class ResultSlots<T>: @unchecked Sendable {
    private var slots: [T?]
    private let lock = NSLock()
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ v: T) { lock.lock(); slots[i] = v; lock.unlock() }
    func get(_ i: Int) -> T? { lock.lock(); defer { lock.unlock() }; return slots[i] }
}

/// Reading and writing whole safetensors files.
public enum SafeTensors {
    /// Every tensor of the file at `url`, converted to Float32.
    public static func read(_ url: URL) throws -> [String: Tensor] {
        try SafeTensorsFile(url: url).allTensors()
    }

    /// Every tensor and the `__metadata__` map of the file at `url`.
    public static func readWithMetadata(_ url: URL) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        let file = try SafeTensorsFile(url: url)
        return (try file.allTensors(), file.metadata)
    }

    /// Writes `tensors` (sorted by name) as `dtype` (F32, F16 or BF16) with optional metadata.
    /// The file is written next to `url` and renamed into place.
    public static func write(_ tensors: [String: Tensor], to url: URL, dtype: SafeTensorsDType = .f32,
                             metadata: [String: String]? = nil) throws {
        guard [.f32, .f16, .bf16].contains(dtype) else {
            throw SafeTensorsError(.unsupportedWriteDType(dtype.rawValue), file: url.path)
        }
        let names = tensors.keys.sorted()
        var header = "{"
        var parts: [String] = []
        if let metadata, !metadata.isEmpty {
            let items = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0] ?? ""))" }
            parts.append("\"__metadata__\":{\(items.joined(separator: ","))}")
        }
        var offset = 0
        for name in names {
            guard let t = tensors[name] else { continue }
            let bytes = t.count * dtype.size
            let shape = t.shape.map(String.init).joined(separator: ",")
            parts.append("\(jsonString(name)):{\"dtype\":\"\(dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + bytes)]}")
            offset += bytes
        }
        header += parts.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        while (8 + headerBytes.count) % 8 != 0 { headerBytes.append(0x20) }
        let tmp = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).tmp-\(ProcessInfo.processInfo.processIdentifier)")
        guard FileManager.default.createFile(atPath: tmp.path, contents: nil),
              let handle = try? FileHandle(forWritingTo: tmp) else {
            throw SafeTensorsError(.io("cannot create \(tmp.path)"), file: url.path)
        }
        do {
            var prefix = Data(count: 8)
            let n = UInt64(headerBytes.count)
            for i in 0..<8 { prefix[i] = UInt8(truncatingIfNeeded: n >> (8 * UInt64(i))) }
            try handle.write(contentsOf: prefix)
            try handle.write(contentsOf: Data(headerBytes))
            for name in names {
                guard let t = tensors[name] else { continue }
                var chunk = Data(count: t.count * dtype.size)
                chunk.withUnsafeMutableBytes { raw in
                    t.withUnsafeBufferPointer { src in
                        guard let s = src.baseAddress, let d = raw.baseAddress else { return }
                        switch dtype {
                        case .bf16: HalfPrecision.encodeBF16(s, count: src.count, to: d)
                        case .f16: HalfPrecision.encodeF16(s, count: src.count, to: d)
                        default: d.copyMemory(from: s, byteCount: src.count * 4)
                        }
                    }
                }
                try handle.write(contentsOf: chunk)
            }
            try handle.close()
            if FileManager.default.fileExists(atPath: url.path) { try FileManager.default.removeItem(at: url) }
            try FileManager.default.moveItem(at: tmp, to: url)
        } catch {
            try? handle.close()
            try? FileManager.default.removeItem(at: tmp)
            throw SafeTensorsError(.io("write failed: \(error.localizedDescription)"), file: url.path)
        }
    }

    /// A JSON string literal for `s` (quotes, backslash and control characters escaped).
    public static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
