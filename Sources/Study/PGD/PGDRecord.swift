// PGDRecord: one line of a `pgd` stage's records.jsonl (read back by `lvs` and `report`).
import Foundation

/// The per-example record of a latent attack.
public struct PGDRecord: Sendable, Codable, Equatable {
    public var id: String
    public var prompt: String
    public var source: String?
    /// Model name (grouping key of LVS tables).
    public var model: String
    /// Layer as configured (`embedding`, `mid`, `last` or a block index) and its block index (-1 = embedding).
    public var layer: String
    public var layerIndex: Int
    /// `targeted`, `random` or `untargeted`.
    public var attack: String
    /// The budget as configured and how it was read.
    public var epsilon: Double
    public var epsilonMode: String
    /// The budget relative to max|h| of the clean prompt (nil when that is 0) and in stream units.
    public var epsilonRelative: Double?
    public var epsilonAbsolute: Double
    public var hiddenMaxAbs: Double
    public var deltaShape: String
    public var deltaPositions: String
    public var steps: Int
    public var stepFraction: Double
    /// ||delta||_inf and ||delta||_2 of the perturbation tensor ([D] shared, [P, D] per position).
    public var deltaLinf: Double
    public var deltaL2: Double
    /// ||.||_2 of everything added to the prompt positions (sqrt(P) x deltaL2 when shared).
    public var deltaL2Prompt: Double
    public var target: String
    /// Mean per-token NLL of the target after the prompt, before and after the attack.
    public var targetNLLBefore: Double?
    public var targetNLLAfter: Double?
    /// The attack's objective (target NLL, or clean-response NLL for `untargeted`).
    public var objectiveNLLBefore: Double?
    public var objectiveNLLAfter: Double?
    public var promptTokens: Int
    /// Clean response y and perturbed response y'.
    public var responseClean: String
    public var responsePerturbed: String
    public var cleanTokens: Int
    public var perturbedTokens: Int
    /// S(y) and S(y') per configured scorer (higher = more harmless).
    public var scoresClean: [String: Double]
    public var scoresPerturbed: [String: Double]
    /// Judge labels of y and y' (refusal / compliance / empty / ...).
    public var labelClean: String
    public var labelPerturbed: String
    /// Whether y (resp. y') counts as an attack success (judged compliance).
    public var asrClean: Bool
    public var asr: Bool
    /// The random baseline's seed for this example.
    public var seed: UInt64

    enum CodingKeys: String, CodingKey {
        case id, prompt, source, model, layer, attack, epsilon, target, steps, seed, asr
        case layerIndex = "layer_index", epsilonMode = "epsilon_mode", epsilonRelative = "epsilon_relative"
        case epsilonAbsolute = "epsilon_absolute", hiddenMaxAbs = "hidden_max_abs", deltaShape = "delta_shape"
        case deltaPositions = "delta_positions", stepFraction = "step_fraction", deltaLinf = "delta_linf"
        case deltaL2 = "delta_l2", deltaL2Prompt = "delta_l2_prompt", targetNLLBefore = "target_nll_before"
        case targetNLLAfter = "target_nll_after", objectiveNLLBefore = "objective_nll_before"
        case objectiveNLLAfter = "objective_nll_after", promptTokens = "prompt_tokens", responseClean = "response_clean"
        case responsePerturbed = "response_perturbed", cleanTokens = "clean_tokens", perturbedTokens = "perturbed_tokens"
        case scoresClean = "scores_clean", scoresPerturbed = "scores_perturbed", labelClean = "label_clean"
        case labelPerturbed = "label_perturbed", asrClean = "asr_clean"
    }

    /// One compact JSON line (sorted keys, no NaN: non-finite optionals are written as null).
    public func jsonLine() throws -> String {
        var r = self
        for k in [\PGDRecord.targetNLLBefore, \.targetNLLAfter, \.objectiveNLLBefore, \.objectiveNLLAfter, \.epsilonRelative] {
            if let v = r[keyPath: k], !v.isFinite { r[keyPath: k] = nil }
        }
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        enc.nonConformingFloatEncodingStrategy = .throw
        do {
            return String(decoding: try enc.encode(r), as: UTF8.self)
        } catch {
            throw StudyError.invalidConfiguration("record \(id): cannot encode as JSON (\(error.localizedDescription)); a norm or score is not finite")
        }
    }

    /// Every record of a records.jsonl file.
    public static func read(_ url: URL) throws -> [PGDRecord] {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw StudyError.unreadable(file: url.path, reason: error.localizedDescription)
        }
        let dec = JSONDecoder()
        var out: [PGDRecord] = []
        for (i, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let t = line.trimmingCharacters(in: .whitespaces)
            guard !t.isEmpty else { continue }
            do { out.append(try dec.decode(PGDRecord.self, from: Data(t.utf8))) } catch {
                throw StudyError.malformed(SourceLocation(file: url.path, line: i + 1), reason: "not a PGD record: \(error.localizedDescription)")
            }
        }
        return out
    }
}

/// Which perturbation norm enters the LVS denominator.
public enum LVSNorm: String, Sendable, Codable, CaseIterable {
    /// ||delta||_2 of the perturbation tensor (`delta_l2`; the release's [1, T, d] tensor when per-position).
    case delta
    /// ||.||_2 of everything added to the prompt positions (`delta_l2_prompt`).
    case prompt
}

extension PGDRecord {
    /// The record as an LVS observation under scorer `score` (nil when the record lacks that score).
    public func observation(score: String, norm: LVSNorm = .delta) -> LVSObservation? {
        guard let clean = scoresClean[score], let pert = scoresPerturbed[score] else { return nil }
        return LVSObservation(key: LVSGroupKey(model: model, layer: layer, epsilon: epsilon, attack: attack),
                              cleanScore: clean, perturbedScore: pert, deltaL2: norm == .delta ? deltaL2 : deltaL2Prompt,
                              cleanSuccess: asrClean, perturbedSuccess: asr)
    }

    /// Score names present in every record, sorted.
    public static func commonScores(_ records: [PGDRecord]) -> [String] {
        guard let first = records.first else { return [] }
        var names = Set(first.scoresClean.keys)
        for r in records { names.formIntersection(r.scoresClean.keys); names.formIntersection(r.scoresPerturbed.keys) }
        return names.sorted()
    }
}
