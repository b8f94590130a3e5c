// The registry of the study's stage kinds: the paper's pipeline stages, plugged into Pipeline.
import Pipeline

/// Every stage kind the Study module provides.
public enum StudyKinds {
    /// The study kinds, one line per kind (each kind lives in its own file in its concept's folder).
    public static var all: [any StageKind] {
        var kinds: [any StageKind] = []
        // Data, judges, probes and behaviour:
        kinds.append(SyntheticModelKind())
        kinds.append(LoadPromptsKind())
        kinds.append(PrepareEvalKind())
        kinds.append(ContrastTriplesKind())
        kinds.append(RefusalFilterKind())
        kinds.append(SyntheticRefusalsKind())
        kinds.append(GenerateKind())
        kinds.append(JudgeKind())
        kinds.append(FeaturesKind())
        kinds.append(ProbeKind())
        kinds.append(ProbeEvalKind())
        kinds.append(BehaviorKind())
        // Training: the dissociated model and fine-tuning.
        kinds.append(DissociateKind())
        kinds.append(SFTKind())
        // Latent attacks, their scores and the report.
        kinds.append(PGDKind())
        kinds.append(LVSKind())
        kinds.append(ReportKind())
        return kinds
    }

    /// Registers every study kind into `registry`.
    public static func register(into registry: inout KindRegistry) {
        for kind in all { registry.register(kind) }
    }

    /// The kinds pipelines may use: the built-in `shell` plus every study kind. The command
    /// line runs pipelines with this registry, and docs/stages.md documents it.
    public static func registry() -> KindRegistry {
        var r = KindRegistry.builtin()
        register(into: &r)
        return r
    }
}
