import Foundation
import Formats

/// Llama (`model_type` llama, GGUF `llama`): SmolLM2, Llama 2, Llama 3 / 3.1 / 3.2.
/// Pre-norm block with two RMSNorms, rotary attention with GQA, SwiGLU MLP; tied or untied head;
/// `rope_scaling` linear, dynamic or llama3 (GGUF: `rope_freqs.weight`); optional attention and
/// MLP biases. Refused by name: other rope types, activations other than SiLU, soft-capping.
/// GGUF `llama` files with experts are Mixtral's (`MixtralArchitecture`).
public enum LlamaArchitecture: Architecture {
    public static let name = "llama"
    public static let modelTypes = ["llama"]
    public static let ggufArchitectures = ["llama"]

    public static func config(huggingFace data: Data, path: String) throws -> ModelConfig { try decode(data, path: path) }

    public static func config(gguf file: GGUFFile) throws -> ModelConfig { try ggufConfig(file) }

    public static func huggingFaceConfigJSON(_ config: ModelConfig) throws -> Data { try encode(config) }

    public static let tensorNames = TensorNameTable.standard()

    /// llama.cpp writes Mixtral as `llama` with `llama.expert_count`: those files are Mixtral's.
    public static func claims(gguf file: GGUFFile) -> Bool { (file.metadata["llama.expert_count"]?.int ?? 0) == 0 }

    /// llama.cpp's converter interleaves the row pairs of q (H heads) and k (KV heads) for its
    /// rotary layout (`GGUFRowPermutation`).
    public static func ggufPermutedHeads(huggingFace name: String, config: ModelConfig) -> Int? {
        if name.hasSuffix("self_attn.q_proj.weight") || name.hasSuffix("self_attn.q_proj.bias") { return config.numAttentionHeads }
        if name.hasSuffix("self_attn.k_proj.weight") || name.hasSuffix("self_attn.k_proj.bias") { return config.numKeyValueHeads }
        return nil
    }

    /// "<path>: llama with <feature> is not supported yet".
    static func refusal(path: String, feature: String) -> ModelError {
        .unsupportedModel(source: path, problem: "llama with \(feature) is not supported yet (supported: \(ArchitectureRegistry.supportedList))")
    }
}

/// Pretty-printed JSON with sorted keys, ending in a newline: how config files are written.
func encodeConfigJSON<T: Encodable>(_ value: T) throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return try encoder.encode(value) + Data("\n".utf8)
}
