// LinearProbe: the latent monitor / audit probe g(h) = w2 (W1 flatten(h)) + b2 (paper Section 3, Appendix B).
//
// Dimension legend: B batch, L layers (hidden_states[1:]), D hidden width, F = L*D flattened
// features (layer-major: index l*D + d), P projection width (512).
// Stored tensors (safetensors): `proj.weight` [P, F] (no bias), `head.weight` [1, P],
// `head.bias` [1]; `probe.json` holds the config. Larger logits = more unsafe.
import Foundation
import Pipeline
import Numerics

/// Hyper-parameters of a probe.
public struct LinearProbeConfig: Sendable, Codable, Equatable {
    /// Layers L of the pooled features.
    public var layers: Int
    /// Hidden width D.
    public var hidden: Int
    /// Projection width P (paper: 512).
    public var projection: Int

    public init(layers: Int, hidden: Int, projection: Int = 512) {
        self.layers = layers
        self.hidden = hidden
        self.projection = projection
    }

    /// Flattened feature width F = L * D.
    public var featureDim: Int { layers * hidden }
}

/// flatten -> linear P (no bias) -> linear logit, as Variables so callers can train it or
/// differentiate through it (the dissociation loss uses `logits(features:)` on model states).
public final class LinearProbe: @unchecked Sendable {
    // @unchecked: parameters are mutated only by the owner's optimiser, one thread at a time.
    public let config: LinearProbeConfig
    /// [P, F]
    public let projection: Variable
    /// [1, P]
    public let headWeight: Variable
    /// [1]
    public let headBias: Variable

    /// Tensor names in probe.safetensors.
    public static let projectionName = "proj.weight", headWeightName = "head.weight", headBiasName = "head.bias"

    /// A probe initialised like PyTorch's nn.Linear (Kaiming-uniform weights and bias bound 1/sqrt(fan_in)).
    public init(config: LinearProbeConfig, seed: UInt64) {
        self.config = config
        var rng = SplitMix64(seed: seed)
        projection = Variable(Tensor.kaimingUniform(shape: [config.projection, config.featureDim], fanIn: config.featureDim, rng: &rng),
                              requiresGrad: true)
        headWeight = Variable(Tensor.kaimingUniform(shape: [1, config.projection], fanIn: config.projection, rng: &rng), requiresGrad: true)
        headBias = Variable(Tensor.kaimingUniform(shape: [1], fanIn: config.projection, rng: &rng), requiresGrad: true)
        name()
    }

    /// A probe from stored tensors (shapes checked).
    public init(config: LinearProbeConfig, tensors: [String: Tensor], file: String = "probe") throws {
        self.config = config
        func get(_ n: String, _ shape: [Int]) throws -> Variable {
            guard let t = tensors[n] else { throw StudyError.schemaMismatch(SourceLocation(file: file, line: 0), field: n, expected: "tensor \(shape)") }
            guard t.shape == shape else {
                throw StudyError.schemaMismatch(SourceLocation(file: file, line: 0), field: n, expected: "shape \(shape), got \(t.shape)")
            }
            return Variable(t.copy(), requiresGrad: true)
        }
        projection = try get(Self.projectionName, [config.projection, config.featureDim])
        headWeight = try get(Self.headWeightName, [1, config.projection])
        headBias = try get(Self.headBiasName, [1])
        name()
    }

    private func name() {
        projection.name = Self.projectionName
        headWeight.name = Self.headWeightName
        headBias.name = Self.headBiasName
    }

    /// The trainable parameters.
    public var parameters: [Variable] { [projection, headWeight, headBias] }

    /// Logits [B] of features [B, L, D] or [B, F] (differentiable in features and parameters).
    public func logits(features: Variable) -> Variable {
        let f = config.featureDim
        precondition(features.value.count % f == 0, "LinearProbe: features \(features.shape) do not flatten to width \(f)")
        let flat = features.shape.count == 2 && features.shape[1] == f ? features : Ops.reshape(features, [features.value.count / f, f])
        let hidden = Ops.linear(flat, weight: projection)
        let out = Ops.linear(hidden, weight: headWeight, bias: headBias)
        return Ops.reshape(out, [out.value.count])
    }

    /// Logits of a feature tensor [N, L, D] or [N, F], computed without recording gradients.
    public func logits(_ features: Tensor) -> [Float] {
        Autograd.withNoGrad { logits(features: Variable(features)).value.scalars }
    }

    /// A copy with its own parameter storage.
    public func copy() -> LinearProbe {
        // Force-try is safe: the tensors come from this probe and have the right names and shapes.
        do { return try LinearProbe(config: config, tensors: tensors) } catch { preconditionFailure("LinearProbe.copy: \(error)") }
    }

    /// Current parameter values by stored name.
    public var tensors: [String: Tensor] {
        [Self.projectionName: projection.value, Self.headWeightName: headWeight.value, Self.headBiasName: headBias.value]
    }

    /// Writes `probe.safetensors` and `probe.json` (config plus `extra` fields) into `directory`.
    public func save(to directory: URL, extra: [String: Value] = [:]) throws {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try SafeTensors.write(tensors, to: directory.appendingPathComponent("probe.safetensors"),
                                  metadata: ["format": "pt", "layers": String(config.layers), "hidden": String(config.hidden),
                                             "projection": String(config.projection)])
        } catch {
            throw StudyError.writeFailed(path: directory.path, reason: "\(error)")
        }
        var json: [String: Value] = [
            "architecture": .string("flatten -> linear(no bias) -> linear logit"),
            "layers": .int(config.layers), "hidden": .int(config.hidden),
            "projection": .int(config.projection), "feature_dim": .int(config.featureDim),
            "flatten_order": .string("layer-major: index = layer * hidden + d, layers = hidden_states[1:]"),
            "tensors": .map([Self.projectionName: .string("[projection, feature_dim]"), Self.headWeightName: .string("[1, projection]"),
                                Self.headBiasName: .string("[1]")]),
            "logit_meaning": .string("larger = more unsafe"),
        ]
        for (k, v) in extra { json[k] = v }
        try StageSupport.writeJSON(Value.map(json), to: directory.appendingPathComponent("probe.json"))
    }

    /// Loads a probe from a directory holding probe.safetensors and probe.json (or from the safetensors file).
    public static func load(from url: URL) throws -> LinearProbe {
        var isDir: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir)
        let dir = isDir.boolValue ? url : url.deletingLastPathComponent()
        let weights = isDir.boolValue ? url.appendingPathComponent("probe.safetensors") : url
        let tensors: [String: Tensor]
        do { tensors = try SafeTensors.read(weights) } catch {
            throw StudyError.unreadable(file: weights.path, reason: "\(error)")
        }
        let cfgURL = dir.appendingPathComponent("probe.json")
        let cfg = try StageSupport.readJSONValue(from: cfgURL)
        func int(_ k: String) throws -> Int {
            guard let d = cfg.value(at: k)?.doubleValue else {
                throw StudyError.schemaMismatch(SourceLocation(file: cfgURL.path, line: 0), field: k, expected: "an integer")
            }
            return Int(d)
        }
        return try LinearProbe(config: LinearProbeConfig(layers: try int("layers"), hidden: try int("hidden"), projection: try int("projection")),
                               tensors: tensors, file: weights.path)
    }
}
