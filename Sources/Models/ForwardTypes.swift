// Inputs, options and results of a model forward pass.
//
// Dimension legend: B batch rows, T positions per row, D hidden width, V vocabulary,
// L decoder blocks; hidden-state index i in 0...L follows transformers' output_hidden_states.
import Numerics

/// A rectangular batch of token ids with an attention mask (1 = token, 0 = padding).
public struct TokenBatch: Sendable, Equatable {
    /// Row-major ids [B, T].
    public var ids: [Int]
    /// Row-major mask [B, T].
    public var mask: [Float]
    public let batch: Int
    public let length: Int

    /// A batch from equal-length rows and an optional mask of the same shape (default all ones).
    public init(ids rows: [[Int]], mask maskRows: [[Int]]? = nil) {
        let t = rows.first?.count ?? 0
        batch = rows.count
        length = t
        precondition(rows.allSatisfy { $0.count == t }, "TokenBatch rows must have equal length; use leftPadded")
        ids = rows.flatMap { $0 }
        if let maskRows {
            precondition(maskRows.count == rows.count && maskRows.allSatisfy { $0.count == t }, "mask shape differs from ids")
            mask = maskRows.flatMap { $0.map { Float($0) } }
        } else {
            mask = [Float](repeating: 1, count: ids.count)
        }
    }

    /// Rows of different lengths padded on the left with `padId` (as generation expects).
    public static func leftPadded(_ rows: [[Int]], padId: Int) -> TokenBatch {
        let t = rows.map(\.count).max() ?? 0
        let ids = rows.map { [Int](repeating: padId, count: t - $0.count) + $0 }
        let mask = rows.map { [Int](repeating: 0, count: t - $0.count) + [Int](repeating: 1, count: $0.count) }
        return TokenBatch(ids: ids, mask: mask)
    }

    /// Position ids: `.fromMask` = cumsum(mask) - 1 with padding at 0 (what transformers'
    /// `generate` uses), `.sequential` = 0..<T for every row (a plain forward without position_ids).
    public func positions(_ mode: PositionMode) -> [Int] {
        var out = [Int](repeating: 0, count: ids.count)
        for b in 0..<batch {
            var seen = 0
            for t in 0..<length {
                let i = b * length + t
                switch mode {
                case .sequential: out[i] = t
                case .fromMask:
                    if mask[i] != 0 { out[i] = seen; seen += 1 } else { out[i] = 0 }
                }
            }
        }
        return out
    }
}

/// How position ids are derived from a batch.
public enum PositionMode: Sendable {
    case fromMask, sequential
}

/// A point in the residual stream (DESIGN.md section 4, "Layers").
public enum LayerRef: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// Embedding output (Gemma: scaled) = input of block 0.
    case embedding
    /// Output of decoder block i (0-based), before the final norm.
    case block(Int)
    /// Block L/2.
    case mid
    /// Block L-1.
    case last

    /// Parses "embedding", "mid", "last" or an integer.
    public init?(_ text: String) {
        switch text {
        case "embedding", "emb": self = .embedding
        case "mid": self = .mid
        case "last": self = .last
        default:
            guard let i = Int(text) else { return nil }
            self = .block(i)
        }
    }

    /// Block index (-1 for the embedding) in a model with `layers` blocks.
    public func blockIndex(layers: Int) -> Int {
        switch self {
        case .embedding: return -1
        case .block(let i): return i
        case .mid: return layers / 2
        case .last: return layers - 1
        }
    }

    /// Index in the output_hidden_states list (0 = embedding, i + 1 = block i).
    public func hiddenIndex(layers: Int) -> Int { blockIndex(layers: layers) + 1 }

    public var description: String {
        switch self {
        case .embedding: return "embedding"
        case .block(let i): return "\(i)"
        case .mid: return "mid"
        case .last: return "last"
        }
    }
}

/// Which positions an intervention perturbs.
public enum InterventionScope: Sendable, Equatable {
    /// Prompt positions only (the prefill call; every position of a forward without cache).
    case prompt
    /// Prompt and generated positions.
    case all
    /// Positions in the range (0-based, per row).
    case positions(Range<Int>)

    /// Whether position `p` of a call whose prompt has `promptLength` positions is perturbed.
    func contains(_ p: Int, promptLength: Int) -> Bool {
        switch self {
        case .prompt: return p < promptLength
        case .all: return true
        case .positions(let r): return r.contains(p)
        }
    }
}

/// An additive perturbation of the residual stream: h <- h + delta at `layer`, for the
/// inference and the differentiable forward alike (gradients reach `delta` when it requires
/// them).
public struct Intervention: @unchecked Sendable {
    // @unchecked: forward passes only read `delta`; its gradient is written by the backward
    // pass of the thread that owns the tape.
    public var layer: LayerRef
    /// [D] shared by every perturbed position, or [P, D] one row per position (row p perturbs
    /// position p; positions from P on are not perturbed).
    public var delta: Variable
    public var scope: InterventionScope

    /// A perturbation by a variable (PGD's delta, whose gradient the backward pass fills).
    public init(layer: LayerRef, delta: Variable, scope: InterventionScope = .prompt) {
        self.layer = layer
        self.delta = delta
        self.scope = scope
    }

    /// A fixed perturbation.
    public init(layer: LayerRef, delta: Tensor, scope: InterventionScope = .prompt) {
        self.init(layer: layer, delta: Variable(delta), scope: scope)
    }

    /// A perturbation of the positions in `positions` (nil: every position of the call).
    public init(layer: LayerRef, delta: Variable, positions: Range<Int>?) {
        self.init(layer: layer, delta: delta, scope: positions.map { .positions($0) } ?? .prompt)
    }

    /// The (row of x, row of delta) pairs this intervention adds: x rows b*T + t of a call of
    /// `length` positions starting at cache position `offset`.
    func rows(hidden d: Int, batch: Int, length: Int, offset: Int, promptLength: Int) -> [(x: Int, delta: Int)] {
        let shared = delta.value.count == d, available = shared ? Int.max : delta.value.count / d
        var out: [(x: Int, delta: Int)] = []
        for t in 0..<length {
            let p = offset + t
            guard scope.contains(p, promptLength: promptLength), p < available else { continue }
            for b in 0..<batch { out.append((b * length + t, shared ? 0 : p)) }
        }
        return out
    }
}

/// Which logits a forward pass computes.
public enum LogitsMode: Sendable, Equatable {
    /// Every position: [B, T, V].
    case all
    /// Skip the LM head (hidden states only).
    case none
    /// The last position of every row: [B, V].
    case last
    /// Chosen flattened rows b*T + t: [R, V].
    case rows([Int])
}

/// Which hidden states a forward pass keeps.
public enum HiddenCapture: Sendable, Equatable {
    case none
    /// All L+1 entries.
    case all
    /// The listed output_hidden_states indices (0 = embedding, L = after the final norm).
    case indices(Set<Int>)

    func contains(_ i: Int) -> Bool {
        switch self {
        case .none: return false
        case .all: return true
        case .indices(let s): return s.contains(i)
        }
    }

    func maxIndex(layers: Int) -> Int {
        switch self {
        case .none: return -1
        case .all: return layers
        case .indices(let s): return s.max() ?? -1
        }
    }
}

/// Options of `TransformerModel.forward`.
public struct ForwardOptions: Sendable {
    public var positions: PositionMode = .fromMask
    public var hidden: HiddenCapture = .none
    public var logits: LogitsMode = .all
    public var interventions: [Intervention] = []

    public init(positions: PositionMode = .fromMask, hidden: HiddenCapture = .none, logits: LogitsMode = .all,
                interventions: [Intervention] = []) {
        self.positions = positions
        self.hidden = hidden
        self.logits = logits
        self.interventions = interventions
    }
}

/// Outputs of a forward pass.
public struct ForwardResult: Sendable {
    /// Logits in the shape `LogitsMode` asked for; nil with `.none`. Causal-LM heads only.
    public var logits: Tensor?
    /// L+1 slots in output_hidden_states order, each [B, T, D] where captured.
    public var hidden: [Tensor?]
    /// Sequence-classification heads: [B, numLabels] at each row's last non-pad token.
    public var scores: Tensor?
}
