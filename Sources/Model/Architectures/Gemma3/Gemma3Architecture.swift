import Foundation
import Formats
import Tokenizer

/// Gemma 3 text models (`model_type` gemma3_text, GGUF `gemma3`): Gemma 3 270M and 1B, and the
/// language model of the larger ones. Against Llama's block:
/// - the embedding rows are multiplied by √C;
/// - RMSNorm scales by (1 + w), and there are four per layer: before and after attention, before
///   and after the MLP (the "after" norms act on the sub-layer's output before the residual add);
/// - queries and keys are RMS-normed per head before the rotary embedding;
/// - the MLP is gated with GELU (tanh approximation);
/// - layers alternate: five of every six attend over a sliding window with rotary base 10000,
///   every sixth attends globally with base 10⁶;
/// - q·kᵀ is scaled by `query_pre_attn_scalar^(−1/2)`; the head is tied to the embedding.
///
/// Refused by name: logit soft-capping (Gemma 2), rope scaling (the 4B–27B models' global
/// layers), bidirectional attention, and multimodal checkpoints (`model_type` gemma3 with a
/// vision tower).
public enum Gemma3Architecture: Architecture {
    public static let name = "gemma3"
    public static let modelTypes = ["gemma3_text", "gemma3"]
    public static let ggufArchitectures = ["gemma3"]

    public static func config(huggingFace data: Data, path: String) throws -> ModelConfig {
        struct Multimodal: Decodable {
            var text_config: [String: JSONScalar]?
            var vision_config: [String: JSONScalar]?
        }
        if let header = try? JSONDecoder().decode(Multimodal.self, from: data), header.text_config != nil || header.vision_config != nil {
            throw refusal(path: path, feature: "a vision tower (Gemma3ForConditionalGeneration); save the language model as "
                + "Gemma3ForCausalLM (model_type gemma3_text)")
        }
        return try ConfigDecoding.decode(Gemma3HFConfig.self, from: data, path: path).modelConfig(path: path)
    }

    public static func config(gguf file: GGUFFile) throws -> ModelConfig { try ggufConfig(file) }

    public static func huggingFaceConfigJSON(_ config: ModelConfig) throws -> Data {
        try encodeConfigJSON(Gemma3HFConfig(config))
    }

    /// gguf-py's `tensor_mapping.py` names for Gemma 3: Llama's, its MLP-input norm called
    /// `pre_feedforward_layernorm`, and the q/k and sandwich norms.
    public static let tensorNames = TensorNameTable.standard(
        renaming: ["ffn_norm": "pre_feedforward_layernorm"],
        extra: [("attn_q_norm", "self_attn.q_norm"), ("attn_k_norm", "self_attn.k_norm"),
                ("post_attention_norm", "post_attention_layernorm"), ("post_ffw_norm", "post_feedforward_layernorm")])

    public static func normName(_ norm: LayerNorm) -> String? {
        switch norm {
        case .attentionInput: "input_layernorm"
        case .attentionOutput: "post_attention_layernorm"
        case .mlpInput: "pre_feedforward_layernorm"
        case .mlpOutput: "post_feedforward_layernorm"
        case .query: "self_attn.q_norm"
        case .key: "self_attn.k_norm"
        }
    }

    /// llama.cpp's converter stores every norm weight as 1 + w (its RMSNorm multiplies by the
    /// weight alone); transformers' GGUF loader subtracts the 1 again.
    public static func ggufValueOffset(huggingFace name: String) -> Float {
        name.hasSuffix("norm.weight") ? 1 : 0
    }

    /// The Gemma 3 270M GGUF ships no `tokenizer.chat_template`: Gemma's turns are the default.
    public static var defaultChatTemplate: ChatTemplate? { .gemma }

    /// Gemma 3's block for hidden size C and `query_pre_attn_scalar`.
    static func block(hiddenSize: Int, queryPreAttnScalar: Double) -> BlockSpec {
        BlockSpec(normWeightOffset: 1, sandwichNorms: true, queryKeyNorm: true, activation: .geluTanh,
                  attentionScale: 1 / queryPreAttnScalar.squareRoot(), queryPreAttnScalar: queryPreAttnScalar,
                  embeddingScale: Float(Double(hiddenSize).squareRoot()))
    }

    /// "<path>: gemma3 with <feature> is not supported yet".
    static func refusal(path: String, feature: String) -> ModelError {
        .unsupportedModel(source: path, problem: "gemma3 with \(feature) is not supported yet (supported: \(ArchitectureRegistry.supportedList))")
    }
}

/// Any JSON value, read only to see that a key is there.
struct JSONScalar: Decodable {
    init(from decoder: Decoder) throws {}
}
