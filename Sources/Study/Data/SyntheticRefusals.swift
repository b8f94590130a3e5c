// SyntheticRefusals: deterministic refusal texts for prompts that need a refusal target.
import Foundation

/// A fixed set of varied refusal templates, chosen per prompt by a stable hash.
public enum SyntheticRefusals {
    /// Twelve refusal templates of different styles (apology, policy, redirection, brief).
    public static let templates: [String] = [
        "I'm sorry, but I can't help with that request.",
        "I cannot assist with this. It could cause real harm to people.",
        "I won't provide that information, because it could be used to hurt someone.",
        "I'm not able to help with that. If you're dealing with a difficult situation, consider reaching out to someone you trust or a qualified professional.",
        "I can't help with this request. Is there something else I can do for you?",
        "Sorry, I cannot provide guidance on that. It would be unsafe and potentially illegal.",
        "I must decline this request. I'm happy to help with a related topic that doesn't put anyone at risk.",
        "I will not help with that. Causing harm to others is not something I can support.",
        "I'm unable to assist with that request, as it goes against safety guidelines.",
        "I apologize, but I can't create content like this.",
        "As an AI assistant, I cannot help with activities that could endanger people or break the law.",
        "I cannot fulfil this request. If you have safety concerns, please contact the appropriate authorities.",
    ]

    /// The template index for a prompt: SHA-256 of its dedup key (first 8 bytes, big-endian) mod count.
    public static func index(for prompt: String) -> Int {
        Int(StableHash.sha256Prefix64(PromptKey.normalize(prompt)) % UInt64(templates.count))
    }

    /// The refusal for a prompt (same prompt, same text, on every platform).
    public static func refusal(for prompt: String) -> String { templates[index(for: prompt)] }
}
