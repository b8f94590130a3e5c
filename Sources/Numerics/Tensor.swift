// Tensor: contiguous row-major Float32 storage with a shape.
//
// Dimension legend used across Numerics: B batch, T sequence positions, D model width,
// H heads, Dh head width, V vocabulary, M/N/K matmul dimensions.
//
// Storage is reference counted and shared by views (reshape, row slices); mutation goes
// through `withUnsafeMutableBufferPointer`, which copies first when the storage is shared
// (copy-on-write), so a view can never be changed behind another tensor's back.

/// A reference-counted, 64-byte aligned Float32 buffer.
public final class TensorStorage: @unchecked Sendable {
    /// First element.
    public let pointer: UnsafeMutablePointer<Float>
    /// Number of elements.
    public let count: Int

    /// Allocates `count` elements, zero-initialised unless `zeroed` is false (then the caller
    /// must write every element before reading it; Float is a trivial type, so this is safe).
    public init(count: Int, zeroed: Bool = true) {
        precondition(count >= 0, "negative tensor size")
        let capacity = BufferPool.capacity(for: count)
        let raw = BufferPool.shared.allocate(capacity: capacity)
        if zeroed {
            raw.initializeMemory(as: Float.self, repeating: 0, count: Swift.max(count, 1))
        } else {
            raw.bindMemory(to: Float.self, capacity: capacity)
        }
        pointer = raw.assumingMemoryBound(to: Float.self)
        self.count = count
        self.capacity = capacity
    }

    /// Allocated elements (count rounded up for pooled buffers).
    let capacity: Int

    deinit { BufferPool.shared.release(UnsafeMutableRawPointer(pointer), capacity: capacity) }
}

/// A dense Float32 tensor in row-major order.
public struct Tensor: @unchecked Sendable {
    /// Sizes of each dimension, outermost first.
    public private(set) var shape: [Int]
    /// Shared backing buffer.
    public private(set) var storage: TensorStorage
    /// Offset of element 0 inside `storage`.
    public private(set) var offset: Int

    /// Number of elements (product of `shape`).
    public var count: Int { shape.reduce(1, *) }
    /// Number of dimensions.
    public var rank: Int { shape.count }

    /// A zero tensor of the given shape.
    public init(zeros shape: [Int]) {
        self.shape = shape
        self.storage = TensorStorage(count: shape.reduce(1, *))
        self.offset = 0
    }

    /// A tensor whose elements are not initialised: the caller must write every element
    /// (used for kernel outputs that are fully overwritten, e.g. sgemm with beta = 0).
    public init(uninitialized shape: [Int]) {
        self.shape = shape
        self.storage = TensorStorage(count: shape.reduce(1, *), zeroed: false)
        self.offset = 0
    }

    /// A tensor filled with `value`.
    public init(shape: [Int], repeating value: Float) {
        self.init(zeros: shape)
        if value != 0 { storage.pointer.update(repeating: value, count: count) }
    }

    /// A tensor holding a copy of `data`; `data.count` must equal the product of `shape`.
    public init(shape: [Int], data: [Float]) {
        precondition(shape.reduce(1, *) == data.count,
                     "Tensor(shape: \(shape)) needs \(shape.reduce(1, *)) values, got \(data.count)")
        self.init(zeros: shape)
        data.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { storage.pointer.update(from: base, count: data.count) }
        }
    }

    /// A tensor whose contents are written by `fill` into a fresh zeroed buffer.
    public init(shape: [Int], fill: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows {
        self.init(zeros: shape)
        try fill(UnsafeMutableBufferPointer(start: storage.pointer, count: count))
    }

    /// First element for reading (valid while this tensor is alive; internal kernel helper).
    @usableFromInline var basePointer: UnsafePointer<Float> { UnsafePointer(storage.pointer + offset) }

    /// A scalar (rank-0) tensor.
    public init(scalar: Float) { self.init(shape: [], data: [scalar]) }

    init(storage: TensorStorage, offset: Int, shape: [Int]) {
        self.storage = storage
        self.offset = offset
        self.shape = shape
    }

    /// Read access to the elements.
    @inlinable
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.pointer + offset, count: count))
    }

    /// Write access to the elements (copies first if the storage is shared).
    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        if !isKnownUniquelyReferenced(&storage) || offset != 0 || storage.count != count {
            let fresh = TensorStorage(count: count)
            fresh.pointer.update(from: storage.pointer + offset, count: count)
            storage = fresh
            offset = 0
        }
        return try body(UnsafeMutableBufferPointer(start: storage.pointer, count: count))
    }

    /// Writable first element after making the storage unique (copy-on-write); valid while
    /// this tensor is alive and not copied. Kernel helper for freshly created outputs.
    @usableFromInline mutating func mutablePointer() -> UnsafeMutablePointer<Float> {
        withUnsafeMutableBufferPointer { $0.baseAddress! }
    }

    /// The elements as an array (copies).
    public var scalars: [Float] { withUnsafeBufferPointer { Array($0) } }

    /// The single element of a one-element tensor.
    public var item: Float {
        precondition(count == 1, "item needs a one-element tensor, shape is \(shape)")
        return storage.pointer[offset]
    }

    /// Element at a multi-index (slow; for tests and small lookups).
    public subscript(_ index: Int...) -> Float {
        precondition(index.count == shape.count, "index rank \(index.count) != tensor rank \(shape.count)")
        var flat = 0
        for (i, n) in zip(index, shape) {
            precondition(i >= 0 && i < n, "index \(index) out of bounds for shape \(shape)")
            flat = flat * n + i
        }
        return storage.pointer[offset + flat]
    }

    /// A view with a new shape and the same elements; one dimension may be -1.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var dims = newShape
        if let inferred = dims.firstIndex(of: -1) {
            let known = dims.enumerated().filter { $0.offset != inferred }.reduce(1) { $0 * $1.element }
            precondition(known > 0 && count % known == 0, "cannot reshape \(shape) to \(newShape)")
            dims[inferred] = count / known
        }
        precondition(dims.reduce(1, *) == count, "cannot reshape \(shape) (\(count) elements) to \(newShape)")
        return Tensor(storage: storage, offset: offset, shape: dims)
    }

    /// A view of rows `range` along the first dimension.
    public func rows(_ range: Range<Int>) -> Tensor {
        precondition(rank >= 1 && range.lowerBound >= 0 && range.upperBound <= shape[0],
                     "rows \(range) out of bounds for shape \(shape)")
        let rowSize = shape.dropFirst().reduce(1, *)
        var newShape = shape
        newShape[0] = range.count
        return Tensor(storage: storage, offset: offset + range.lowerBound * rowSize, shape: newShape)
    }

    /// A contiguous copy that owns its storage.
    public func copy() -> Tensor {
        var out = Tensor(uninitialized: shape)
        out.mutablePointer().update(from: basePointer, count: count)
        return out
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let preview = withUnsafeBufferPointer { Array($0.prefix(8)) }
        return "Tensor(shape: \(shape), first: \(preview)\(count > 8 ? "..." : ""))"
    }
}
