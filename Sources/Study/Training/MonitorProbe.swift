// MonitorProbe: the latent monitor g_phi of the dissociation objective (paper Section 3,
// Appendix B): flatten the pooled L x D states -> linear 512 (no bias) -> linear logit; and the
// differentiable probe features h_theta (attention-masked mean of every layer above the
// embedding, transformers' hidden_states[1:], the last after the final norm).
//
// Dimension legend: B batch, T positions, N = B*T, D hidden, L blocks, F = L*D features,
// H probe width (512).
// Safetensors layout: `proj.weight` [H, F], `head.weight` [1, H], `head.bias` [1]. Loading
// also accepts any file holding exactly one [H, F] matrix, one [1, H] matrix and an optional
// one-element bias, identified by shape (so probe files with other key names load too).
import Foundation
import Models
import Numerics

/// The probe/monitor: logit = head(proj(features)).
public final class MonitorProbe {
    /// [H, F], no bias.
    public let proj: Variable
    /// [1, H].
    public let head: Variable
    /// [1].
    public let bias: Variable

    /// A probe from its tensors.
    public init(proj: Tensor, head: Tensor, bias: Tensor) {
        self.proj = Variable(proj)
        self.head = Variable(head)
        self.bias = Variable(bias)
        for (v, n) in [(self.proj, "proj.weight"), (self.head, "head.weight"), (self.bias, "head.bias")] { v.name = n }
    }

    /// A randomly initialised probe (PyTorch nn.Linear default: U(-1/sqrt(in), 1/sqrt(in))).
    public convenience init(features: Int, width: Int = 512, seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        func uniform(_ shape: [Int], fanIn: Int) -> Tensor {
            let bound = 1 / Float(fanIn).squareRoot()
            return Tensor(shape: shape) { p in for i in 0..<p.count { p[i] = (rng.nextFloat() * 2 - 1) * bound } }
        }
        self.init(proj: uniform([width, features], fanIn: features), head: uniform([1, width], fanIn: width),
                  bias: uniform([1], fanIn: width))
    }

    /// Number of input features F.
    public var featureCount: Int { proj.shape[1] }
    /// The trainable parameters (phi).
    public var parameters: [Variable] { [proj, head, bias] }

    /// Whether phi collects gradients.
    public var trainable: Bool {
        get { proj.requiresGrad }
        set { for p in parameters { p.requiresGrad = newValue } }
    }

    /// Logits [B] of features [B, F].
    public func logits(features: Variable) -> Variable {
        precondition(features.shape.last == featureCount,
                     "MonitorProbe: features \(features.shape) but the probe expects \(featureCount)")
        let hidden = Ops.linear(features, weight: proj)
        let out = Ops.linear(hidden, weight: head, bias: bias)
        return Ops.reshape(out, [features.shape[0]])
    }

    /// Reads a probe from safetensors (see the layout at the top of this file).
    public static func load(_ url: URL) throws -> MonitorProbe {
        let tensors: [String: Tensor]
        do { tensors = try SafeTensors.read(url) } catch {
            throw StudyError.unreadable(file: url.path, reason: "not a safetensors probe file: \(error)")
        }
        if let p = tensors["proj.weight"], let h = tensors["head.weight"], let b = tensors["head.bias"] {
            return try checked(p, h, b, url)
        }
        let matrices = tensors.values.filter { $0.rank == 2 }
        let projs = matrices.filter { $0.shape[0] > 1 }, heads = matrices.filter { $0.shape[0] == 1 }
        let biases = tensors.values.filter { $0.count == 1 && $0.rank <= 1 }
        guard projs.count == 1, heads.count == 1, biases.count <= 1 else {
            throw StudyError.schemaMismatch(SourceLocation(file: url.path, line: 0), field: "tensors",
                                            expected: "proj.weight [H, F], head.weight [1, H], head.bias [1]; found "
                                                + tensors.map { "\($0.key) \($0.value.shape)" }.sorted().joined(separator: ", "))
        }
        return try checked(projs[0], heads[0], biases.first ?? Tensor(zeros: [1]), url)
    }

    private static func checked(_ p: Tensor, _ h: Tensor, _ b: Tensor, _ url: URL) throws -> MonitorProbe {
        guard p.rank == 2, h.rank == 2, h.shape == [1, p.shape[0]], b.count == 1 else {
            throw StudyError.schemaMismatch(SourceLocation(file: url.path, line: 0), field: "shapes",
                                            expected: "proj [H, F], head [1, H], bias [1]; got \(p.shape), \(h.shape), \(b.shape)")
        }
        return MonitorProbe(proj: p, head: h, bias: b.reshaped([1]))
    }

    /// Writes the probe as safetensors.
    public func save(_ url: URL) throws {
        try SafeTensors.write(["proj.weight": proj.value, "head.weight": head.value, "head.bias": bias.value], to: url,
                              metadata: ["format": "pt", "architecture": "flatten-linear\(proj.shape[0])-nobias-linear1"])
    }

    /// Probe features [B, L*D] from a differentiable forward's hidden states (slots 1...L,
    /// [N, D] each): per layer the attention-masked mean over positions, layers concatenated in
    /// order (the flattened L x D matrix). Gradients flow into the hidden states.
    public static func features(hidden: [Variable?], batch: TokenBatch) -> Variable {
        let layers = hidden.count - 1
        var pooled: [Variable] = []
        for l in 1...layers {
            guard let h = hidden[l] else { preconditionFailure("MonitorProbe.features: hidden state \(l) not captured") }
            let d = h.shape[h.shape.count - 1]
            pooled.append(Ops.maskedMeanPool(Ops.reshape(h, [batch.batch, batch.length, d]), mask: batch.mask))
        }
        return Ops.concat(pooled, axis: 1)
    }
}
