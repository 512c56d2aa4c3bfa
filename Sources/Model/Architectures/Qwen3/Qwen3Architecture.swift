import Foundation
import Formats

/// Qwen3 dense models (`model_type` qwen3, GGUF `qwen3`): Llama's block with per-head RMSNorm of
/// queries and keys before the rotary embedding (`self_attn.q_norm`, `self_attn.k_norm`), an
/// explicit `head_dim` (default 128, whatever hidden / heads is), and q, k, v and o biases when
/// `attention_bias`. Sliding windows as Qwen2's.
public enum Qwen3Architecture: Architecture {
    public static let name = "qwen3"
    public static let modelTypes = ["qwen3"]
    public static let ggufArchitectures = ["qwen3"]

    /// Defaults as transformers' `Qwen3Config`: `head_dim` 128, `rope_theta` 10000,
    /// `max_position_embeddings` 32768, `rms_norm_eps` 1e-6, untied head, no biases.
    public static func config(huggingFace data: Data, path: String) throws -> ModelConfig {
        let r = try DecoderHFConfig.reader(data, path: path, family: name)
        try r.checkShared()
        if let experts = r.config.numLocalExperts { throw r.refuse("num_local_experts \(experts) (a mixture of experts)") }
        let headDim = r.config.headDim ?? 128
        return try r.modelConfig(architecture: name, defaultModelType: "qwen3", headDim: headDim,
                                 block: block(headDim: headDim, attentionBias: r.config.attentionBias ?? false),
                                 rope: try r.rope(defaultTheta: 10_000), windows: try r.windows(windowsAllLayers: false),
                                 defaultMaxPositions: 32768, defaultEps: 1e-6)
    }

    public static func huggingFaceConfigJSON(_ config: ModelConfig) throws -> Data {
        var c = try Qwen2Architecture.windowedConfig(config, architecture: "Qwen3ForCausalLM", modelType: "qwen3")
        c.attentionBias = config.block.biases.contains(.q)
        return try encodeConfigJSON(c)
    }

    public static let tensorNames = TensorNameTable.standard(extra: [("attn_q_norm", "self_attn.q_norm"), ("attn_k_norm", "self_attn.k_norm")])

    /// Qwen3's block: Llama's with q/k norms, and biases on all four attention projections when asked.
    static func block(headDim: Int, attentionBias: Bool) -> BlockSpec {
        var block = BlockSpec.llama(headDim: max(headDim, 1))
        block.queryKeyNorm = true
        if attentionBias { block.biases = [.q, .k, .v, .o] }
        return block
    }

    /// `qwen3.*` keys as llama.cpp's converter writes them (q and k unpermuted, `attn_q_norm`,
    /// `attn_k_norm`); biases when the file has `blk.0.attn_q.bias`.
    public static func config(gguf file: GGUFFile) throws -> ModelConfig {
        let h = try GGUFHyperparameters(file, prefix: "qwen3")
        let rope = RopeSpec(theta: h.ropeTheta, scaling: try h.ropeScaling(family: name))
        return try h.modelConfig(architecture: name, modelType: "qwen3",
                                 block: block(headDim: h.headDim, attentionBias: file.info("blk.0.attn_q.bias") != nil),
                                 layers: Array(repeating: LayerAttention(rope: rope), count: h.layers))
            .checked(path: file.url.path, keys: .gguf("qwen3"))
    }
}
