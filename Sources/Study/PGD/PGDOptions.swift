// PGDOptions: the settings of one latent-space attack (DESIGN.md section 4 "PGD", paper
// Section 4 and Appendix C.1).
import Models

/// Which attack runs under the perturbation budget.
public enum AttackKind: String, Sendable, Codable, CaseIterable {
    /// Sign-gradient descent on the NLL of the target string (the paper's attack).
    case targeted
    /// Random signs times epsilon (seeded): the same L-inf norm, no optimisation.
    case random
    /// Sign-gradient ascent on the NLL of the clean greedy response y.
    case untargeted
}

/// How epsilon is read.
public enum EpsilonMode: String, Sendable, Codable, CaseIterable {
    /// eps x max|h| of the clean prompt's residual stream at the layer (authors' release).
    case relative
    /// eps in the units of the residual stream.
    case absolute
}

/// The shape of the perturbation.
public enum DeltaShape: String, Sendable, Codable, CaseIterable {
    /// One d-vector shared by every perturbed position (paper Appendix C.1).
    case shared
    /// One d-vector per prompt position (authors' release, [1, T_prompt, d]).
    case perPosition = "per-position"
}

/// Which positions receive the perturbation.
public enum DeltaPositions: String, Sendable, Codable, CaseIterable {
    /// The chat-formatted prompt (with its generation prompt) only.
    case prompt
    /// Prompt and every generated (or target) position; needs `DeltaShape.shared`.
    case all
}

/// Settings of `PGDAttack`.
public struct PGDOptions: Sendable, Equatable {
    /// Where delta is added: `embedding`, block `i`, `mid` (L/2) or `last` (L-1).
    public var layer: LayerRef
    /// The budget, read according to `epsilonMode`.
    public var epsilon: Double
    public var epsilonMode: EpsilonMode
    public var deltaShape: DeltaShape
    public var deltaPositions: DeltaPositions
    public var attack: AttackKind
    /// Sign-gradient steps (paper: 10).
    public var steps: Int
    /// Step size as a fraction of epsilon (paper: 1/4).
    public var stepFraction: Double

    /// Options; defaults follow the paper (10 steps of eps/4, shared delta on the prompt, relative eps).
    public init(layer: LayerRef, epsilon: Double, epsilonMode: EpsilonMode = .relative, deltaShape: DeltaShape = .shared,
                deltaPositions: DeltaPositions = .prompt, attack: AttackKind = .targeted, steps: Int = 10,
                stepFraction: Double = 0.25) {
        self.layer = layer
        self.epsilon = epsilon
        self.epsilonMode = epsilonMode
        self.deltaShape = deltaShape
        self.deltaPositions = deltaPositions
        self.attack = attack
        self.steps = steps
        self.stepFraction = stepFraction
    }

    /// Checks the combination; throws `StudyError.invalidConfiguration` with what to change.
    /// `layers`: the model's block count, nil before a model is known (the pipeline's
    /// plan-time check: everything but the layer's range).
    public func validate(layers: Int?) throws {
        guard epsilon.isFinite, epsilon >= 0 else {
            throw StudyError.invalidConfiguration("params.epsilon: must be a finite number >= 0, got \(epsilon)")
        }
        guard steps >= 0 else { throw StudyError.invalidConfiguration("params.steps: must be >= 0, got \(steps)") }
        guard stepFraction.isFinite, stepFraction > 0 else {
            throw StudyError.invalidConfiguration("params.step_fraction: must be > 0, got \(stepFraction)")
        }
        let k = layer.blockIndex(layers: layers ?? .max)
        guard k >= -1 && k < layers ?? .max else {
            let wanted = layers.map { "is outside the model's blocks 0..<\($0)" } ?? "is not a block index >= 0"
            throw StudyError.invalidConfiguration("params.layer: \(layer) \(wanted) (or embedding, mid, last)")
        }
        if deltaShape == .perPosition && deltaPositions == .all {
            throw StudyError.invalidConfiguration(
                "params.delta_positions: 'all' needs delta_shape 'shared' (generated positions have no per-position rows); use delta_positions 'prompt' or delta_shape 'shared'")
        }
    }
}
