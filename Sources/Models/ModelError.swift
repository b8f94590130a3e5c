// ModelError: every failure of the Models module, with the file, key or tensor it concerns.
import Numerics

/// Errors of checkpoint loading and model execution; each names what, where, and what was expected.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    /// A file or directory the checkpoint needs does not exist.
    case fileNotFound(path: String, what: String)
    /// A file exists but could not be read.
    case io(path: String, reason: String)
    /// A config value is missing or has the wrong type/value.
    case badConfig(file: String, key: String, expected: String)
    /// The architecture named by a config or GGUF file is not supported.
    case unsupportedArchitecture(file: String, name: String)
    /// A weight the model needs is absent from the checkpoint.
    case missingWeight(name: String, source: String)
    /// A weight is present but has the wrong shape.
    case badWeightShape(name: String, source: String, shape: [Int], expected: [Int])
    /// A GGUF file is malformed: `context` says where (header, key, tensor), `expected` what.
    case malformedGGUF(file: String, context: String, expected: String)
    /// A GGUF tensor uses a quantisation type this runtime does not decode.
    case unsupportedTensorType(file: String, tensor: String, type: String)
    /// A safetensors file is malformed (wraps the Numerics error).
    case safetensors(SafeTensorsError)
    /// Anything else about running a model (bad ids, shapes at the API boundary).
    case invalidInput(String)

    public var description: String {
        switch self {
        case .fileNotFound(let path, let what): return "\(what) not found: \(path)"
        case .io(let path, let reason): return "cannot read \(path): \(reason)"
        case .badConfig(let file, let key, let expected): return "\(file): key '\(key)': expected \(expected)"
        case .unsupportedArchitecture(let file, let name):
            return "\(file): unsupported architecture '\(name)' (supported: LlamaForCausalLM, Qwen2ForCausalLM, Gemma2ForCausalLM, GPT2LMHeadModel and their *ForSequenceClassification heads; GGUF: llama, qwen2, gemma2)"
        case .missingWeight(let name, let source): return "missing weight \(name) in \(source)"
        case .badWeightShape(let name, let source, let shape, let expected):
            return "weight \(name) in \(source) has shape \(shape), expected \(expected)"
        case .malformedGGUF(let file, let context, let expected): return "\(file): malformed GGUF at \(context): expected \(expected)"
        case .unsupportedTensorType(let file, let tensor, let type):
            return "\(file): tensor '\(tensor)' has GGUF type \(type), which is not supported (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q6_K); re-quantise the model"
        case .safetensors(let e): return e.description
        case .invalidInput(let what): return what
        }
    }
}
