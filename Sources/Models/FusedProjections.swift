// FusedProjections: concatenated weights of linears that read the same input (q/k/v and
// gate/up) so inference runs one GEMM instead of several. Built lazily, only for frozen
// base weights (LoRA terms are added per module after the fused GEMM); rebuilt when a
// component tensor is replaced.
//
// Dimension legend: D input width, O_i output widths; fused weight [sum O_i, D].
import Foundation
import Numerics

/// A fused projection and the identities of the tensors it was built from.
final class FusedProjection: @unchecked Sendable {
    // @unchecked: immutable after construction.
    let weight: Tensor
    let bias: Tensor?
    let widths: [Int]
    let sources: [ObjectIdentifier]

    init(weight: Tensor, bias: Tensor?, widths: [Int], sources: [ObjectIdentifier]) {
        self.weight = weight
        self.bias = bias
        self.widths = widths
        self.sources = sources
    }
}

/// Lock-protected cache of fused projections, keyed by the joined module paths.
final class FusedProjectionCache: @unchecked Sendable {
    // @unchecked: every access goes through `lock`.
    private let lock = NSLock()
    private var entries: [String: FusedProjection] = [:]

    func get(_ key: String) -> FusedProjection? { lock.withLock { entries[key] } }
    func set(_ key: String, _ value: FusedProjection) { lock.withLock { entries[key] = value } }
    func removeAll() { lock.withLock { entries = [:] } }
}

extension TransformerModel {
    /// The fused base weight of `modules`, or nil when fusing is not safe (trainable weights,
    /// mixed biases) or not useful (one module). LoRA adapters do not prevent it: their
    /// low-rank terms are added to each module's slice of the fused output.
    func fusedProjection(_ modules: [String]) -> FusedProjection? {
        guard modules.count > 1 else { return nil }
        var weights: [Variable] = [], biases: [Variable] = []
        for m in modules {
            guard let w = parameters[m + ".weight"], !w.requiresGrad else { return nil }
            weights.append(w)
            if let b = parameters[m + ".bias"] {
                guard !b.requiresGrad else { return nil }
                biases.append(b)
            }
        }
        guard biases.isEmpty || biases.count == modules.count else { return nil }
        let sources = (weights + biases).map { ObjectIdentifier($0.value.storage) }
        let key = modules.joined(separator: "|")
        if let hit = fusedCache.get(key), hit.sources == sources { return hit }
        let inDim = weights[0].shape[1]
        guard weights.allSatisfy({ $0.shape[1] == inDim }) else { return nil }
        let widths = weights.map { $0.shape[0] }
        let total = widths.reduce(0, +)
        let w = Tensor(shape: [total, inDim]) { out in
            var row = 0
            for v in weights {
                v.value.withUnsafeBufferPointer { p in
                    (out.baseAddress! + row * inDim).update(from: p.baseAddress!, count: p.count)
                }
                row += v.shape[0]
            }
        }
        let b: Tensor? = biases.isEmpty ? nil : Tensor(shape: [total], data: biases.flatMap { $0.value.scalars })
        let fused = FusedProjection(weight: w, bias: b, widths: widths, sources: sources)
        fusedCache.set(key, fused)
        return fused
    }
}
