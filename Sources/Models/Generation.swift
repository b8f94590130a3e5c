// Generation: batched greedy (or seeded sampling) decoding with a KV cache, left padding,
// stop ids and optional interventions that persist into generated positions.
//
// Dimension legend: B batch rows, T prompt length (after left padding), V vocabulary,
// C = T + max new tokens cache capacity.
import Foundation
import Numerics

/// Seeded sampling settings (transformers order: temperature, then top-k, then top-p).
public struct Sampling: Sendable, Equatable {
    public var temperature: Float
    public var topK: Int?
    public var topP: Float?
    public var seed: UInt64

    public init(temperature: Float = 1, topK: Int? = nil, topP: Float? = nil, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
    }
}

/// Options of `TransformerModel.generate`.
public struct GenerationOptions: Sendable {
    public var maxNewTokens: Int
    /// Stop ids; nil = the config's `eosTokenIds`.
    public var eosTokenIds: [Int]?
    /// nil = greedy.
    public var sampling: Sampling?
    /// Interventions; scope `.all` keeps them active on generated positions.
    public var interventions: [Intervention]
    /// Id used to left-pad prompts of different lengths.
    public var padTokenId: Int?

    public init(maxNewTokens: Int = 64, eosTokenIds: [Int]? = nil, sampling: Sampling? = nil,
                interventions: [Intervention] = [], padTokenId: Int? = nil) {
        self.maxNewTokens = maxNewTokens
        self.eosTokenIds = eosTokenIds
        self.sampling = sampling
        self.interventions = interventions
        self.padTokenId = padTokenId
    }
}

/// Generated continuations.
public struct GenerationResult: Sendable, Equatable {
    /// New ids per row, including the stop id that ended the row (if any).
    public var tokens: [[Int]]
    /// Whether each row stopped at a stop id (rather than at max new tokens).
    public var stoppedAtEOS: [Bool]
}

extension TransformerModel {
    /// Generates continuations of prompts of any lengths (left-padded internally).
    public func generate(prompts: [[Int]], options: GenerationOptions = GenerationOptions()) throws -> GenerationResult {
        guard !prompts.isEmpty, prompts.allSatisfy({ !$0.isEmpty }) else {
            throw ModelError.invalidInput("generate needs at least one non-empty prompt")
        }
        let pad = options.padTokenId ?? config.padTokenId ?? 0
        return try generate(TokenBatch.leftPadded(prompts, padId: pad), options: options)
    }

    /// Generates continuations of a (left-padded) batch.
    public func generate(_ batch: TokenBatch, options: GenerationOptions = GenerationOptions()) throws -> GenerationResult {
        guard config.head == .causalLM else { throw ModelError.invalidInput("generate needs a causal-LM head") }
        try checkIds(batch.ids)
        let b = batch.batch, t = batch.length
        let eos = Set(options.eosTokenIds ?? config.eosTokenIds)
        let pad = options.padTokenId ?? config.padTokenId ?? 0
        if config.architecture == .gpt2, t + options.maxNewTokens > config.maxPositions {
            throw ModelError.invalidInput("prompt + new tokens (\(t + options.maxNewTokens)) exceed GPT-2's \(config.maxPositions) positions")
        }
        var tokens = [[Int]](repeating: [], count: b)
        var finished = [Bool](repeating: false, count: b)
        var stopped = [Bool](repeating: false, count: b)
        guard options.maxNewTokens > 0 else { return GenerationResult(tokens: tokens, stoppedAtEOS: stopped) }
        let cache = KVCache(config: config, batch: b, capacity: t + options.maxNewTokens)
        var rng = SplitMix64(seed: options.sampling?.seed ?? 0)
        var positions = batch.positions(.fromMask)
        var nextPosition = (0..<b).map { positions[$0 * t + t - 1] + 1 }
        var out = run(ids: batch.ids, mask: batch.mask, positions: positions, batch: b, length: t, cache: cache,
                      promptLength: t, interventions: options.interventions, capture: .none, logits: .last).result
        for step in 0..<options.maxNewTokens {
            guard let logits = out.logits else { break }
            var next = [Int](repeating: pad, count: b)
            logits.withUnsafeBufferPointer { p in
                for r in 0..<b where !finished[r] {
                    let row = UnsafeBufferPointer(rebasing: p[(r * config.vocabSize)..<((r + 1) * config.vocabSize)])
                    next[r] = options.sampling.map { Self.sample(row, $0, rng: &rng) } ?? Self.argmax(row)
                }
            }
            for r in 0..<b where !finished[r] {
                tokens[r].append(next[r])
                if eos.contains(next[r]) { finished[r] = true; stopped[r] = true }
            }
            if finished.allSatisfy({ $0 }) || step == options.maxNewTokens - 1 { break }
            positions = nextPosition
            nextPosition = nextPosition.map { $0 + 1 }
            out = run(ids: next, mask: [Float](repeating: 1, count: b), positions: positions, batch: b, length: 1,
                      cache: cache, promptLength: t, interventions: options.interventions, capture: .none, logits: .last).result
        }
        return GenerationResult(tokens: tokens, stoppedAtEOS: stopped)
    }

    /// Index of the largest value (first on ties, like torch.argmax).
    static func argmax(_ row: UnsafeBufferPointer<Float>) -> Int {
        var best = 0
        var bestValue = -Float.infinity
        for i in 0..<row.count where row[i] > bestValue { best = i; bestValue = row[i] }
        return best
    }

    /// Draws one id after temperature, top-k and top-p filtering.
    static func sample(_ row: UnsafeBufferPointer<Float>, _ s: Sampling, rng: inout SplitMix64) -> Int {
        let temp = max(s.temperature, 1e-6)
        var order = Array(0..<row.count)
        order.sort { row[$0] > row[$1] }
        if let k = s.topK, k > 0, k < order.count { order.removeSubrange(k...) }
        let maxv = row[order[0]] / temp
        var probs = order.map { exp(row[$0] / temp - maxv) }
        var total = probs.reduce(0, +)
        if let p = s.topP, p < 1 {
            var cumulative: Float = 0
            var keep = probs.count
            for (i, q) in probs.enumerated() {
                cumulative += q / total
                if cumulative >= p { keep = i + 1; break }
            }
            probs.removeSubrange(keep...)
            order.removeSubrange(keep...)
            total = probs.reduce(0, +)
        }
        var u = rng.nextFloat() * total
        for (i, q) in probs.enumerated() {
            u -= q
            if u <= 0 { return order[i] }
        }
        return order[order.count - 1]
    }
}
