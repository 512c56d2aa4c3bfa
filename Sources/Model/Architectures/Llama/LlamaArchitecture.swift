import Foundation
import Formats

/// Llama (`model_type` llama, GGUF `llama`): SmolLM2, Llama 2, Llama 3 without rope scaling.
/// Pre-norm block with two RMSNorms, rotary attention with GQA, SwiGLU MLP; tied or untied head.
/// Refused by name: `rope_scaling` of any type, attention or MLP biases, activations other than
/// SiLU, GGUF files with experts (llama.cpp stores Mixtral as `llama`).
public enum LlamaArchitecture: Architecture {
    public static let name = "llama"
    public static let modelTypes = ["llama"]
    public static let ggufArchitectures = ["llama"]

    public static func config(huggingFace data: Data, path: String) throws -> ModelConfig {
        try ConfigDecoding.decode(LlamaHFConfig.self, from: data, path: path).modelConfig(path: path)
    }

    public static func config(gguf file: GGUFFile) throws -> ModelConfig { try ggufConfig(file) }

    public static func huggingFaceConfigJSON(_ config: ModelConfig) throws -> Data {
        try encodeConfigJSON(LlamaHFConfig(config))
    }

    /// Names as convert_hf_to_gguf.py / gguf-py `tensor_mapping.py` and transformers' GGUF loader use them.
    public static let tensorNames = TensorNameTable(
        global: [("token_embd", "model.embed_tokens"), ("output_norm", "model.norm"), ("output", "lm_head")],
        layer: [
            ("attn_norm", "input_layernorm"),
            ("attn_q", "self_attn.q_proj"),
            ("attn_k", "self_attn.k_proj"),
            ("attn_v", "self_attn.v_proj"),
            ("attn_output", "self_attn.o_proj"),
            ("ffn_norm", "post_attention_layernorm"),
            ("ffn_gate", "mlp.gate_proj"),
            ("ffn_up", "mlp.up_proj"),
            ("ffn_down", "mlp.down_proj"),
        ])

    public static func normName(_ norm: LayerNorm) -> String? {
        switch norm {
        case .attentionInput: "input_layernorm"
        case .mlpInput: "post_attention_layernorm"
        case .attentionOutput, .mlpOutput, .query, .key: nil
        }
    }

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
