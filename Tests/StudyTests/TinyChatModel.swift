import Foundation
import Models
@testable import Study

/// The attack tests' tiny random Llama (4 blocks, hidden 32) with the TinyTokenizer chat
/// template; weights large enough that small perturbations change greedy outputs.
enum TinyChatModel {
    static let hidden = 32, layers = 4

    static var options: TinyModelOptions {
        var o = TinyModelOptions()
        o.layers = layers
        o.hidden = hidden
        o.seed = 7
        o.initStd = 0.3
        o.maxPositions = 512
        return o
    }

    /// A model without files.
    static func model() throws -> TransformerModel { try TinyModelFactory.model(options) }

    /// Writes model + tokenizer into `parent/name`.
    static func write(to parent: URL, name: String = "tiny") throws -> URL {
        try TinyModelFactory.write(options, to: parent.appendingPathComponent(name))
    }

    /// A ChatModel loaded from a fresh directory.
    static func chat(in parent: URL) throws -> ChatModel {
        try ChatModel.load(path: write(to: parent))
    }
}
