// RewardModelScorer: S(y) from a sequence-classification reward model (paper Section 6, "harmless-reward-model").
//
// Dimension legend: B batch, C labels of the classification head.
import Foundation
import Models

/// Harmlessness score = the reward head's output (label `labelIndex`) at the last token of
/// `template` filled with (prompt, response), tokenized with the tokenizer's special tokens.
public struct RewardModelScorer: HarmlessnessScorer, @unchecked Sendable {
    // @unchecked: holds a StageModel (class-backed), used from one thread at a time.
    public let model: StageModel
    public var template: PromptTemplate
    public var labelIndex: Int
    public var maxTokens: Int
    public var batchSize: Int
    public let name: String

    /// A scorer; throws when the model has no sequence-classification head.
    public init(model: StageModel, template: PromptTemplate = .hhRLHF, labelIndex: Int = 0, maxTokens: Int = 512,
                batchSize: Int = 8, name: String = "reward") throws {
        guard model.checkpoint.config.head == .sequenceClassification else {
            throw StudyError.invalidConfiguration("reward scorer '\(name)': \(model.path.path) is not a sequence-classification model (architectures: \(model.checkpoint.architectureName))")
        }
        guard (0..<model.checkpoint.config.numLabels).contains(labelIndex) else {
            throw StudyError.invalidConfiguration("reward scorer '\(name)': label_index \(labelIndex) outside 0..<\(model.checkpoint.config.numLabels)")
        }
        self.model = model
        self.template = template
        self.labelIndex = labelIndex
        self.maxTokens = maxTokens
        self.batchSize = batchSize
        self.name = name
    }

    public func scores(_ items: [JudgeItem]) throws -> [Double] {
        let tok = try model.requireTokenizer()
        let encoded = items.map { StageSupport.truncate(tok.encode(template.fill(prompt: $0.prompt, response: $0.response)),
                                                        maxTokens: maxTokens, keepStart: true) }
        var out = [Double](repeating: .nan, count: items.count)
        let order = encoded.indices.sorted { (encoded[$0].count, $0) < (encoded[$1].count, $1) }
        let c = model.checkpoint.config.numLabels
        for start in stride(from: 0, to: order.count, by: max(1, batchSize)) {
            let idx = Array(order[start..<min(order.count, start + max(1, batchSize))])
            // Left padding: the last position is every row's last token, whatever the pad id.
            let batch = TokenBatch.leftPadded(idx.map { encoded[$0] }, padId: model.padTokenId)
            guard let s = try model.model.forward(batch, options: ForwardOptions(logits: .none)).scores else {
                throw StudyError.invalidConfiguration("reward scorer '\(name)': the model returned no scores")
            }
            let values = s.scalars
            for (b, i) in idx.enumerated() { out[i] = Double(values[b * c + labelIndex]) }
        }
        if let bad = out.firstIndex(where: { !$0.isFinite }) {
            throw StudyError.invalidConfiguration("reward scorer '\(name)': non-finite score for item \(bad)")
        }
        return out
    }
}
