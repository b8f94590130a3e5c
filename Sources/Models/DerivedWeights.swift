// DerivedWeights: the copies of a model's frozen weights that faster kernels read, in one
// cache with one staleness rule, and the one function that picks the kernel of a linear.
//   - fused projections: q/k/v and gate/up concatenated, one GEMM instead of several (LoRA
//     terms are added per module after it);
//   - packed matrices: a frozen weight packed once for the PackedMatrix GEMM kernel (both
//     layouts: x W^T and dy W), for products of at most `packedMaxRows` rows (PGD and other
//     gradients to interventions, few-row LM heads, short prefills, batched decoding);
//     OpenBLAS would copy the whole weight on every call. Limited by a process-wide budget
//     (twice the float32 size of every packed weight): weights past it keep sgemm;
//   - compact copies: a frozen weight whose every entry is exactly a bfloat16 value, read
//     from a lossless half-size copy by decoding steps (bound by the bytes they stream).
// Entries are built when first needed and freed with the model. An entry is valid while
// every tensor it was built from is the same tensor (storage object, offset, shape); only
// frozen weights are derived, and making weights trainable drops every entry (training
// updates them in place).
//
// Dimension legend: N rows of a call, D input width, O output width; fused [sum O_i, D].
import Foundation
import Numerics

/// A fused projection: the concatenated weight (and biases) of modules reading one input.
final class FusedProjection: @unchecked Sendable {
    // @unchecked: immutable after construction.
    let weight: Tensor
    let bias: Tensor?
    let widths: [Int]

    init(weight: Tensor, bias: Tensor?, widths: [Int]) {
        self.weight = weight
        self.bias = bias
        self.widths = widths
    }
}

/// Lock-protected derived copies by kind and key.
final class DerivedWeights: @unchecked Sendable {
    // @unchecked: every access goes through `lock`.
    enum Kind: Hashable { case fused, packed, compact }

    /// The identity of a tensor an entry was built from.
    private struct Source {
        weak var storage: TensorStorage?
        let offset: Int
        let shape: [Int]

        init(_ t: Tensor) {
            storage = t.storage
            offset = t.offset
            shape = t.shape
        }

        func matches(_ t: Tensor) -> Bool { storage === t.storage && offset == t.offset && shape == t.shape }
    }

    private struct Entry {
        let sources: [Source]
        /// nil records "cannot be derived" (over the budget, not bf16-exact).
        let value: AnyObject?
    }

    private let lock = NSLock()
    private var entries: [Kind: [String: Entry]] = [:]

    /// The `kind` copy stored under `key`, built from `sources` by `build` when missing or stale.
    func value<T: AnyObject>(_ kind: Kind, _ key: String, from sources: [Tensor], build: () -> T?) -> T? {
        lock.withLock {
            if let hit = entries[kind]?[key], hit.sources.count == sources.count,
               zip(hit.sources, sources).allSatisfy({ $0.matches($1) }) {
                return hit.value as? T
            }
            entries[kind]?[key] = nil  // frees a stale copy before building (the packed budget counts live copies)
            let built = build()
            entries[kind, default: [:]][key] = Entry(sources: sources.map(Source.init), value: built)
            return built
        }
    }

    /// Number of copies of `kind` held.
    func count(_ kind: Kind) -> Int { lock.withLock { entries[kind]?.values.filter { $0.value != nil }.count ?? 0 } }

    /// Drops every copy.
    func removeAll() { lock.withLock { entries = [:] } }
}

/// How a linear layer's product reads its weight.
enum LinearKernel {
    /// The lossless bf16 copy (decoding steps).
    case compact(BF16Matrix)
    /// The packed copy (frozen weights, at most `packedMaxRows` rows).
    case packed(PackedMatrix)
    /// sgemm (sgemv for one row) on the float32 weight in place.
    case blas
}

extension TransformerModel {
    /// Calls with at most this many rows (decoding steps of up to 8 sequences) use the
    /// compact copies; larger ones are compute-bound and go to sgemm.
    static let compactMaxRows = 8

    /// Whether decoding steps read bf16-exact weights from compact copies (tests turn it off
    /// to compare against the float32 path; AUDITGAP_COMPACT_DECODE=0). `nonisolated(unsafe)`:
    /// set once at start-up.
    nonisolated(unsafe) static var compactDecoding: Bool = ProcessInfo.processInfo.environment["AUDITGAP_COMPACT_DECODE"] != "0"

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

    /// The kernel of a product of `rows` rows with `weight` [O, D] stored under `key`. Only
    /// frozen weights have derived copies. Inference products of at most `compactMaxRows`
    /// rows read a bf16-exact weight's compact copy; a one-row inference product goes to
    /// sgemv, which reads the weight in place; other products of at most `packedMaxRows`
    /// rows (and every differentiable one, whose backward reads the packed copy too) use the
    /// packed copy while the budget allows.
    func linearKernel(_ key: String, _ weight: Tensor, rows n: Int, frozen: Bool, differentiable: Bool) -> LinearKernel {
        guard frozen, weight.rank == 2, weight.count > 0, n >= 1 else { return .blas }
        if !differentiable, Self.compactDecoding, n <= Self.compactMaxRows,
           let compact = derived.value(.compact, key, from: [weight], build: { BF16Matrix(exactly: weight) }) {
            return .compact(compact)
        }
        guard differentiable || n >= 2, Self.packedWeightBudget > 0, n <= Self.packedMaxRows else { return .blas }
        let packed = derived.value(.packed, key, from: [weight]) { () -> PackedMatrix? in
            let bytes = 2 * weight.count * MemoryLayout<Float>.size
            return PackedMatrix.liveBytes + bytes <= Self.packedWeightBudget ? PackedMatrix(weight) : nil
        }
        return packed.map { .packed($0) } ?? .blas
    }

    /// The packed copy `linearKernel` picks for a differentiable product with input x [..., D].
    func packedWeight(_ key: String, _ weight: Tensor, input x: Variable) -> PackedMatrix? {
        let rows = x.value.count / Swift.max(1, weight.shape.last ?? 1)
        guard case .packed(let p) = linearKernel(key, weight, rows: rows, frozen: true, differentiable: true) else { return nil }
        return p
    }

    /// The packed copy of the parameter at `name` when it is frozen, for a product with x.
    func packedParameter(_ name: String, input x: Variable) -> PackedMatrix? {
        guard let p = parameters[name], !p.requiresGrad else { return nil }
        return packedWeight(name, p.value, input: x)
    }

    /// y = x W^T (+ b) (+ residual) for x [N, D], W [O, D] stored under `key`, on the
    /// kernel `linearKernel` picks for an inference product.
    func inferenceLinear(_ x: Tensor, weight: Tensor, bias: Tensor?, key: String, frozen: Bool,
                         accumulateOnto residual: Tensor? = nil) -> Tensor {
        let d = x.shape[x.rank - 1], n = x.count / Swift.max(d, 1)
        let kernel = weight.rank == 2 && weight.shape[1] == d
            ? linearKernel(key, weight, rows: n, frozen: frozen, differentiable: false) : .blas
        switch kernel {
        case .blas: return Kernels.linear(x, weight: weight, bias: bias, accumulateOnto: residual)
        case .packed(let p): return Kernels.linear(x, weight: weight, bias: bias, accumulateOnto: residual, packed: p)
        case .compact(let compact):
            let o = compact.rows
            var out = Tensor(uninitialized: [n, o])
            x.withUnsafeBufferPointer { px in
                out.withUnsafeMutableBufferPointer { po in
                    compact.product(x: px.baseAddress!, m: n, ldx: d, y: po.baseAddress!, ldy: o)
                }
            }
            if let bias { out = Kernels.add(out, bias) }
            if let residual { out = Kernels.add(residual, out) }
            return out
        }
    }

    /// Whether the parameter at `name` is frozen (absent counts as frozen).
    func isFrozen(_ name: String) -> Bool { parameters[name]?.requiresGrad != true }

    /// The fused base weight of `modules`, or nil when fusing is not safe (trainable weights,
    /// mixed biases) or not useful (one module). LoRA adapters do not prevent it: their
    /// low-rank terms are added to each module's slice of the fused output.
    func fusedProjection(_ modules: [String]) -> FusedProjection? {
        guard modules.count > 1 else { return nil }
        var weights: [Tensor] = [], biases: [Tensor] = []
        for m in modules {
            guard let w = parameters[m + ".weight"], !w.requiresGrad else { return nil }
            weights.append(w.value)
            if let b = parameters[m + ".bias"] {
                guard !b.requiresGrad else { return nil }
                biases.append(b.value)
            }
        }
        guard biases.isEmpty || biases.count == modules.count else { return nil }
        let inDim = weights[0].shape[1]
        guard weights.allSatisfy({ $0.rank == 2 && $0.shape[1] == inDim }) else { return nil }
        return derived.value(.fused, modules.joined(separator: "|"), from: weights + biases) {
            let widths = weights.map { $0.shape[0] }
            let w = Kernels.concat(weights, axis: 0)
            let b: Tensor? = biases.isEmpty ? nil : Kernels.concat(biases, axis: 0)
            return FusedProjection(weight: w, bias: b, widths: widths)
        }
    }
}
