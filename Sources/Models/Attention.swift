// The key/value cache of incremental decoding: one LayerKVCache per block (Numerics) and
// the padding mask of every cached position.
//
// Dimension legend: B batch, Hkv key/value heads, Dh head width, C cache capacity.
import Foundation
import Numerics

/// Key/value cache for incremental decoding, with the key padding mask of every cached position.
public final class KVCache: @unchecked Sendable {
    // @unchecked: owned by one generation loop; not shared across threads.
    /// Per layer buffers.
    public let layers: [LayerKVCache]
    /// Positions filled so far (same for every batch row; left padding keeps rows aligned).
    public internal(set) var length = 0
    /// Capacity in positions.
    public let capacity: Int
    /// 1 where a cached position is a real token, 0 for padding [B, C].
    public internal(set) var keyMask: [Float]
    public let batch: Int

    /// An empty cache for `batch` rows and up to `capacity` positions.
    public init(config: ModelConfig, batch: Int, capacity: Int, layers count: Int? = nil) {
        self.batch = batch
        self.capacity = capacity
        layers = (0..<(count ?? config.numLayers)).map { _ in
            LayerKVCache(batch: batch, kvHeads: config.numKVHeads, capacity: capacity, headDim: config.headDim)
        }
        keyMask = [Float](repeating: 0, count: batch * capacity)
    }

    /// Records the padding mask of `t` new positions ([B, T], 1 = token) before a forward call.
    func appendMask(_ mask: [Float], t: Int) {
        precondition(length + t <= capacity, "KV cache overflow: \(length) + \(t) > \(capacity)")
        for b in 0..<batch { for i in 0..<t { keyMask[b * capacity + length + i] = mask[b * t + i] } }
    }
}

