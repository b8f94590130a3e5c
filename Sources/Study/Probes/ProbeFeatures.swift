// ProbeFeatures: the one pooling of hidden states into probe features h(p, y), shared by
// feature extraction (audit probe, monitor initialisation) and the dissociation loss.
//
// Dimension legend: B batch, T positions, D hidden, L blocks; features [B, L*D] layer-major
// (row b holds layer 1's mean, then layer 2's, ...), the flattening LinearProbe reads.
import Models
import Numerics

/// Attention-masked mean pooling of every layer above the embedding.
public enum ProbeFeatures {
    /// Features [B, L*D] from hidden-state slots 1...L (transformers `hidden_states[1:]`, each
    /// [B*T, D] or [B, T, D]): per layer the mean over the batch's unmasked positions, layers
    /// concatenated in order. Differentiable: gradients flow into the hidden states.
    public static func pooled(hidden: [Variable?], batch: TokenBatch) -> Variable {
        let layers = hidden.count - 1
        precondition(layers >= 1, "probe features need at least one layer above the embedding")
        var pooled: [Variable] = []
        for l in 1...layers {
            guard let h = hidden[l] else { preconditionFailure("probe features: hidden state \(l) not captured") }
            let d = h.shape[h.shape.count - 1]
            pooled.append(Ops.maskedMeanPool(Ops.reshape(h, [batch.batch, batch.length, d]), mask: batch.mask))
        }
        return Ops.concat(pooled, axis: 1)
    }

    /// The same features of an inference pass's hidden states, without a tape.
    public static func pooled(hidden: [Tensor?], batch: TokenBatch) -> Tensor {
        Autograd.withNoGrad { pooled(hidden: hidden.map { $0.map { Variable($0) } }, batch: batch).value }
    }
}
