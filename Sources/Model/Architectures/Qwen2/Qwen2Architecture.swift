import Foundation
import Formats

/// Qwen2 and Qwen2.5 (`model_type` qwen2, GGUF `qwen2`): Llama's block with biases on the q, k
/// and v projections (never on o). Full fine-tuning trains the biases; adapters leave them
/// frozen, as PEFT does. Sliding windows as transformers' `Qwen2Config` sets them (`layer_types`,
/// else every layer from `max_window_layers` on when `use_sliding_window`). Rope scaling as Llama's.
public enum Qwen2Architecture: Architecture {
    public static let name = "qwen2"
    public static let modelTypes = ["qwen2"]
    public static let ggufArchitectures = ["qwen2"]

    /// Defaults as transformers' `Qwen2Config`: `head_dim` hidden / heads, `rope_theta` 10000,
    /// `max_position_embeddings` 32768, `rms_norm_eps` 1e-6, untied head.
    public static func config(huggingFace data: Data, path: String) throws -> ModelConfig {
        let r = try DecoderHFConfig.reader(data, path: path, family: name)
        try r.checkShared()
        if let experts = r.config.numLocalExperts { throw r.refuse("num_local_experts \(experts) (a mixture of experts)") }
        return try r.modelConfig(architecture: name, defaultModelType: "qwen2", headDim: r.headDimOrDefault,
                                 block: block(headDim: r.headDimOrDefault), rope: try r.rope(defaultTheta: 10_000),
                                 windows: try r.windows(windowsAllLayers: false), defaultMaxPositions: 32768, defaultEps: 1e-6)
    }

    /// Writes both 5.x's `layer_types` and 4.x's `use_sliding_window` / `max_window_layers`
    /// (windows from the first sliding layer on, the only pattern 4.x can say).
    public static func huggingFaceConfigJSON(_ config: ModelConfig) throws -> Data {
        try encodeConfigJSON(try windowedConfig(config, architecture: "Qwen2ForCausalLM", modelType: "qwen2"))
    }

    /// The shared keys plus Qwen's window keys.
    static func windowedConfig(_ m: ModelConfig, architecture: String, modelType: String) throws -> DecoderHFConfig {
        var c = try DecoderHFConfig(m, architecture: architecture, modelType: modelType)
        let first = m.layers.firstIndex { $0.slidingWindow != nil }
        c.useSlidingWindow = first != nil
        c.maxWindowLayers = first ?? m.numHiddenLayers
        return c
    }

    public static let tensorNames = TensorNameTable.standard()

    /// Qwen2's block: Llama's with q, k and v biases.
    static func block(headDim: Int) -> BlockSpec {
        var block = BlockSpec.llama(headDim: max(headDim, 1))
        block.biases = [.q, .k, .v]
        return block
    }

    /// `qwen2.*` keys as llama.cpp's converter writes them; q and k are stored unpermuted.
    public static func config(gguf file: GGUFFile) throws -> ModelConfig {
        let h = try GGUFHyperparameters(file, prefix: "qwen2")
        let rope = RopeSpec(theta: h.ropeTheta, scaling: try h.ropeScaling(family: name))
        return try h.modelConfig(architecture: name, modelType: "qwen2", block: block(headDim: h.headDim),
                                 layers: Array(repeating: LayerAttention(rope: rope), count: h.layers))
            .checked(path: file.url.path, keys: .gguf("qwen2"))
    }
}
