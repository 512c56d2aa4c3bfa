import Foundation
import Formats

/// Mistral (`model_type` mistral): Llama's block attending over a sliding window of
/// `sliding_window` positions in every layer when it is set (Mistral 7B v0.1), in training and in
/// the KV cache alike. llama.cpp writes Mistral as `llama` (without the window), so its GGUF
/// files are read by `LlamaArchitecture`, and its LoRA adapters use Llama's names and q/k rows.
public enum MistralArchitecture: Architecture {
    public static let name = "mistral"
    public static let modelTypes = ["mistral"]
    public static let ggufArchitectures: [String] = []

    /// Defaults as transformers' `MistralConfig`: `head_dim` hidden / heads, `rope_theta` 10000,
    /// `max_position_embeddings` 131072, `rms_norm_eps` 1e-6, no window, untied head.
    public static func config(huggingFace data: Data, path: String) throws -> ModelConfig {
        let r = try DecoderHFConfig.reader(data, path: path, family: name)
        try r.checkShared()
        if let experts = r.config.numLocalExperts { throw r.refuse("num_local_experts \(experts) (use model_type mixtral)") }
        if r.config.attentionBias == true { throw r.refuse("attention_bias: true") }
        let headDim = r.headDimOrDefault
        return try r.modelConfig(architecture: name, defaultModelType: "mistral", headDim: headDim, block: .llama(headDim: max(headDim, 1)),
                                 rope: try r.rope(defaultTheta: 10_000), windows: try r.windows(windowsAllLayers: true),
                                 defaultMaxPositions: 131_072, defaultEps: 1e-6)
    }

    /// `sliding_window` for 4.x (every layer's), `layer_types` beside it for 5.x.
    public static func huggingFaceConfigJSON(_ config: ModelConfig) throws -> Data {
        try encodeConfigJSON(try DecoderHFConfig(config, architecture: "MistralForCausalLM", modelType: "mistral"))
    }

    public static let tensorNames = TensorNameTable.standard()

    public static let llamaCppArchitecture: String? = "llama"

    public static func ggufPermutedHeads(huggingFace name: String, config: ModelConfig) -> Int? {
        LlamaArchitecture.ggufPermutedHeads(huggingFace: name, config: config)
    }

    public static func config(gguf file: GGUFFile) throws -> ModelConfig {
        throw ModelError.unsupportedModel(source: file.url.path, problem: "llama.cpp writes Mistral as general.architecture llama")
    }
}
