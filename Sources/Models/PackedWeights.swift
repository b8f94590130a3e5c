// PackedWeights: frozen weight matrices packed once for the GEMM kernel of `PackedMatrix`
// (both layouts: x W^T and dy W), used by products of at most `packedMaxRows` rows with a
// frozen weight: PGD and other gradients to interventions, few-row LM heads, short
// prefills and batched decoding steps. OpenBLAS would copy the whole weight on every call,
// a quarter of a one-prompt PGD step. Built lazily per weight (keyed like the fused projections and compact
// copies), rebuilt when the tensor is replaced, and limited by a process-wide budget
// (twice the float32 size of every packed weight): weights past the budget keep sgemm.
//
// Dimension legend: N rows of a call, D input width, O output width.
import Foundation
import Numerics

/// Lock-protected cache of packed weights by key. Each entry remembers the tensor it was
/// built from (storage object, weakly, and offset) so a replaced weight is repacked; nil
/// records "over the budget".
final class PackedWeightCache: @unchecked Sendable {
    // @unchecked: every access goes through `lock`.
    private struct Entry {
        weak var storage: TensorStorage?
        let offset: Int
        let shape: [Int]
        let matrix: PackedMatrix?
    }
    private let lock = NSLock()
    private var entries: [String: Entry] = [:]

    func matrix(_ key: String, _ weight: Tensor) -> PackedMatrix? {
        lock.withLock {
            if let hit = entries[key], hit.storage === weight.storage, hit.offset == weight.offset, hit.shape == weight.shape {
                return hit.matrix
            }
            entries[key] = nil  // frees a stale copy before the budget check
            let bytes = 2 * weight.count * MemoryLayout<Float>.size
            let built = PackedMatrix.liveBytes + bytes <= TransformerModel.packedWeightBudget ? PackedMatrix(weight) : nil
            entries[key] = Entry(storage: weight.storage, offset: weight.offset, shape: weight.shape, matrix: built)
            return built
        }
    }

    func removeAll() { lock.withLock { entries = [:] } }

    /// Number of weights held packed.
    var packedCount: Int { lock.withLock { entries.values.filter { $0.matrix != nil }.count } }
}

extension TransformerModel {
    /// Bytes all packed weights of the process may hold: `AUDITGAP_PACKED_WEIGHTS_MB`
    /// (0 turns packing off), default 2048 (SmolLM2-135M needs about 1080). Tests set it
    /// to compare against sgemm. `nonisolated(unsafe)`: set at start-up.
    nonisolated(unsafe) static var packedWeightBudget: Int = {
        if let raw = ProcessInfo.processInfo.environment["AUDITGAP_PACKED_WEIGHTS_MB"], let mb = Int(raw), mb >= 0 {
            return mb << 20
        }
        return 2048 << 20
    }()

    /// Rows from which a product goes to sgemm instead of a packed copy: with hundreds of
    /// rows OpenBLAS's repacking is a small share of the product and its kernel is as fast
    /// or faster (`auditgap bench matmul`; the SmolLM2 forward at 1024 rows and the LoRA step
    /// at 512 were 3-10% slower on packed copies, and the copies cost memory).
    nonisolated(unsafe) static var packedMaxRows: Int = 256

    /// The packed copy of the frozen weight `weight` stored under `key`, for a product with
    /// `rows` rows (nil when packing is off, the product has many rows, the weight is not a
    /// matrix, or the budget is spent).
    func packedWeight(_ key: String, _ weight: Tensor, rows: Int) -> PackedMatrix? {
        guard Self.packedWeightBudget > 0, rows <= Self.packedMaxRows, weight.rank == 2, weight.count > 0 else { return nil }
        return packedCache.matrix(key, weight)
    }

    /// The packed copy of `weight` [O, D] for a product with the input x [..., D].
    func packedWeight(_ key: String, _ weight: Tensor, input x: Variable) -> PackedMatrix? {
        packedWeight(key, weight, rows: x.value.count / Swift.max(1, weight.shape.last ?? 1))
    }

    /// The packed copy of the parameter at `name` when it is frozen, for a product with x.
    func packedParameter(_ name: String, input x: Variable) -> PackedMatrix? {
        guard let p = parameters[name], !p.requiresGrad else { return nil }
        return packedWeight(name, p.value, input: x)
    }
}
