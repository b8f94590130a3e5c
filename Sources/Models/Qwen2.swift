// Qwen2 / Qwen2.5: the Llama block with biases on q/k/v projections (picked up from the
// checkpoint's `.bias` tensors) and usually untied embeddings.
//
// Dimension legend: as in Llama.swift; q/k/v biases [H*Dh], [Hkv*Dh], [Hkv*Dh].

/// Qwen2 family layout.
public enum Qwen2 {
    /// The Qwen2 layout for `config` (Llama paths; biases come with the weights).
    public static func spec(_ config: ModelConfig) -> ArchitectureSpec { Llama.spec(config) }
}
