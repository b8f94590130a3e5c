// The tokenizer that belongs to a checkpoint: tokenizer.json of an HF directory or GGUF metadata.
import Tokenizers

extension Checkpoint {
    /// Builds the checkpoint's tokenizer (HF `tokenizer.json` + `tokenizer_config.json`, else the
    /// GGUF `tokenizer.ggml.*` metadata and `tokenizer.chat_template`).
    public func makeTokenizer() throws -> Tokenizer {
        if let json = tokenizer.tokenizerJSON {
            return try Tokenizer.load(tokenizerJSON: json, tokenizerConfigJSON: tokenizer.tokenizerConfigJSON)
        }
        let meta = tokenizer.ggufMetadata
        guard let model = meta["tokenizer.ggml.model"]?.string,
              let tokens = meta["tokenizer.ggml.tokens"]?.array?.compactMap({ $0.string }) else {
            throw ModelError.fileNotFound(path: source.path,
                                          what: "tokenizer (tokenizer.json, or GGUF tokenizer.ggml.* metadata)")
        }
        let scores: [Float]? = meta["tokenizer.ggml.scores"]?.array?.map { v -> Float in
            if case .float32(let f) = v { return f }
            return Float(v.int ?? 0)
        }
        var addBos: Bool?
        if case .bool(let b)? = meta["tokenizer.ggml.add_bos_token"] { addBos = b }
        return try Tokenizer.fromGGUF(
            model: model, pre: meta["tokenizer.ggml.pre"]?.string, tokens: tokens,
            merges: meta["tokenizer.ggml.merges"]?.array?.compactMap { $0.string } ?? [],
            tokenTypes: meta["tokenizer.ggml.token_type"]?.array?.map { $0.int ?? 1 } ?? [],
            scores: scores, bosId: meta["tokenizer.ggml.bos_token_id"]?.int,
            eosId: meta["tokenizer.ggml.eos_token_id"]?.int,
            addBos: addBos, chatTemplate: meta["tokenizer.chat_template"]?.string ?? tokenizer.chatTemplate,
            padId: meta["tokenizer.ggml.padding_token_id"]?.int, unkId: meta["tokenizer.ggml.unknown_token_id"]?.int)
    }
}
