// LoRA: low-rank adapters wrapping chosen linear modules, y = x W^T + b + s * (drop(x) A^T) B^T,
// with PEFT's initialisation (A kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(in), 1/sqrt(in));
// B zero) and scaling s = alpha / r (or alpha / sqrt(r) with rsLoRA). The base model is frozen.
//
// Dimension legend: r rank, In / Out widths of the wrapped linear (weight [Out, In]);
// A [r, In], B [Out, r].
import Foundation
import Numerics

/// LoRA hyper-parameters (PEFT's LoraConfig fields).
public struct LoRAConfig: Sendable, Equatable, Codable {
    public var rank: Int
    public var alpha: Double
    public var dropout: Double
    /// Module name suffixes to wrap ("q_proj", "k_proj", ...).
    public var targetModules: [String]
    /// rsLoRA: scale alpha / sqrt(r) instead of alpha / r.
    public var useRSLoRA: Bool
    /// Seed of A's initialisation and of dropout masks.
    public var seed: UInt64

    public init(rank: Int = 16, alpha: Double = 32, dropout: Double = 0.05,
                targetModules: [String] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                useRSLoRA: Bool = false, seed: UInt64 = 0) {
        self.rank = rank
        self.alpha = alpha
        self.dropout = dropout
        self.targetModules = targetModules
        self.useRSLoRA = useRSLoRA
        self.seed = seed
    }

    /// The multiplier of the low-rank update.
    public var scale: Float {
        Float(useRSLoRA ? alpha / Double(rank).squareRoot() : alpha / Double(rank))
    }
}

/// One adapter: trainable A and B around a frozen linear module.
public final class LoRAAdapter {
    /// Wrapped module path (`model.layers.0.self_attn.q_proj`).
    public let module: String
    /// [r, In], named `<module>.lora_A.weight`.
    public let a: Variable
    /// [Out, r], named `<module>.lora_B.weight`.
    public let b: Variable
    public let scale: Float
    public let dropout: Float

    public init(module: String, a: Variable, b: Variable, scale: Float, dropout: Float) {
        self.module = module
        self.a = a
        self.b = b
        self.scale = scale
        self.dropout = dropout
    }
}

extension LoRAAdapter {
    /// weight + scale * B A: the adapter folded into its base weight [Out, In].
    public func merged(into weight: Tensor) -> Tensor {
        var merged = weight
        let outDim = merged.shape[0], inDim = merged.shape[1], r = a.shape[0]
        precondition(b.shape == [outDim, r] && a.shape == [r, inDim], "LoRA \(module): A \(a.shape), B \(b.shape) for \(weight.shape)")
        b.value.withUnsafeBufferPointer { pb in
            a.value.withUnsafeBufferPointer { pa in
                merged.withUnsafeMutableBufferPointer { pw in
                    sgemm(transA: false, transB: false, m: outDim, n: inDim, k: r, alpha: scale,
                          a: pb.baseAddress!, lda: r, b: pa.baseAddress!, ldb: inDim, beta: 1,
                          c: pw.baseAddress!, ldc: inDim)
                }
            }
        }
        return merged
    }
}

extension TransformerModel {
    /// Wraps every linear module whose last path component is in `config.targetModules`;
    /// freezes all base parameters. Returns the adapters (also in `adapters`).
    @discardableResult
    public func addLoRA(_ config: LoRAConfig) throws -> [LoRAAdapter] {
        guard config.rank > 0 else { throw ModelError.invalidInput("LoRA rank must be positive, got \(config.rank)") }
        if self.config.architecture == .gpt2 {
            throw ModelError.invalidInput("LoRA on GPT-2 (fused Conv1D c_attn) is not supported")
        }
        freezeAll()
        var rng = SplitMix64(seed: config.seed)
        var added: [LoRAAdapter] = []
        let modules = spec.blocks.flatMap(\.linears).filter { m in
            config.targetModules.contains { m.hasSuffix("." + $0) }
        }
        guard !modules.isEmpty else {
            throw ModelError.invalidInput("LoRA target modules \(config.targetModules) match no linear layer")
        }
        for m in modules {
            let w = tensor(m + ".weight")
            let outDim = w.shape[0], inDim = w.shape[1]
            let bound = 1 / Float(inDim).squareRoot()
            let aInit = Tensor(shape: [config.rank, inDim]) { p in
                for i in 0..<p.count { p[i] = (rng.nextFloat() * 2 - 1) * bound }
            }
            let a = Variable(aInit, requiresGrad: true)
            a.name = m + ".lora_A.weight"
            let b = Variable(Tensor(zeros: [outDim, config.rank]), requiresGrad: true)
            b.name = m + ".lora_B.weight"
            let adapter = LoRAAdapter(module: m, a: a, b: b, scale: config.scale, dropout: Float(config.dropout))
            adapters[m] = adapter
            added.append(adapter)
        }
        loraConfig = config
        return added
    }

    /// LoRA parameters by internal path (`<module>.lora_A.weight`), for optimisers.
    public var loraParameters: [String: Variable] {
        var out: [String: Variable] = [:]
        for (m, ad) in adapters {
            out[m + ".lora_A.weight"] = ad.a
            out[m + ".lora_B.weight"] = ad.b
        }
        return out
    }

    /// Marks every base parameter frozen.
    public func freezeAll() {
        for v in parameters.values { v.requiresGrad = false; v.grad = nil }
    }

    /// Makes base parameters selected by `predicate` (all by default) trainable.
    public func setTrainable(_ predicate: (String) -> Bool = { _ in true }) {
        for (name, v) in parameters { v.requiresGrad = predicate(name) }
        // Trainable weights are updated in place: cached copies would go stale.
        derived.removeAll()
    }

    /// Parameters (base and LoRA) that currently require gradients, sorted by path.
    public var trainableParameters: [(name: String, variable: Variable)] {
        let base = parameters.filter { $0.value.requiresGrad }.map { (name: $0.key, variable: $0.value) }
        let lora = loraParameters.filter { $0.value.requiresGrad }.map { (name: $0.key, variable: $0.value) }
        return (base + lora).sorted { $0.name < $1.name }
    }

    /// Folds every adapter into its base weight (W += s * B A) and removes the adapters.
    public func mergeLoRA() {
        for (m, ad) in adapters {
            let w = parameter(m + ".weight")
            w.value = ad.merged(into: w.value)
        }
        adapters = [:]
        loraConfig = nil
    }

    /// Removes adapters without merging.
    public func removeLoRA() {
        adapters = [:]
        loraConfig = nil
    }

    /// Installs adapter weights read from a PEFT directory (adapter_config.json +
    /// adapter_model.safetensors).
    public func loadLoRA(directory: URL) throws {
        let cfgURL = directory.appendingPathComponent("adapter_config.json")
        guard let data = FileManager.default.contents(atPath: cfgURL.path),
              let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ModelError.io(path: cfgURL.path, reason: "missing or unreadable adapter_config.json")
        }
        let r = (json["r"] as? NSNumber)?.intValue ?? 8
        let alpha = (json["lora_alpha"] as? NSNumber)?.doubleValue ?? Double(r)
        let targets = json["target_modules"] as? [String] ?? []
        let cfg = LoRAConfig(rank: r, alpha: alpha, dropout: (json["lora_dropout"] as? NSNumber)?.doubleValue ?? 0,
                             targetModules: targets, useRSLoRA: json["use_rslora"] as? Bool ?? false)
        try addLoRA(cfg)
        let tensors = try SafeTensors.read(directory.appendingPathComponent("adapter_model.safetensors"))
        for (key, t) in tensors {
            guard let name = ModelSaving.internalLoRAName(peftName: key),
                  let v = loraParameters[name] else { continue }
            guard v.shape == t.shape else {
                throw ModelError.badWeightShape(name: key, source: directory.path, shape: t.shape, expected: v.shape)
            }
            v.value = t
        }
    }
}
