import Foundation
import Formats

/// Phi-3 (`model_type` phi3, GGUF `phi3`): Llama's block with q, k and v fused into one
/// `self_attn.qkv_proj` (rows q, k, v) and gate and up into one `mlp.gate_up_proj` (rows gate,
/// up). Adapters go on the fused matrices, as PEFT targets them (PiSSA decomposes the fused
/// matrix). Every layer attends over `sliding_window` positions when it is set (Phi-3-mini: 2047).
/// Refused by name: `rope_scaling` longrope / su (the 128k models), a partial rotary embedding.
public enum Phi3Architecture: Architecture {
    public static let name = "phi3"
    public static let modelTypes = ["phi3"]
    public static let ggufArchitectures = ["phi3"]

    /// Defaults as transformers' `Phi3Config`: `head_dim` hidden / heads, `rope_theta` 10000,
    /// `max_position_embeddings` 4096, `rms_norm_eps` 1e-5, untied head, no window.
    public static func config(huggingFace data: Data, path: String) throws -> ModelConfig {
        let r = try DecoderHFConfig.reader(data, path: path, family: name)
        try r.checkShared()
        if let experts = r.config.numLocalExperts { throw r.refuse("num_local_experts \(experts) (a mixture of experts)") }
        let headDim = r.headDimOrDefault
        return try r.modelConfig(architecture: name, defaultModelType: "phi3", headDim: headDim, block: block(headDim: headDim),
                                 rope: try r.rope(defaultTheta: 10_000), windows: try r.windows(windowsAllLayers: true),
                                 defaultMaxPositions: 4096, defaultEps: 1e-5)
    }

    public static func huggingFaceConfigJSON(_ config: ModelConfig) throws -> Data {
        var c = try DecoderHFConfig(config, architecture: "Phi3ForCausalLM", modelType: "phi3")
        c.originalMaxPositionEmbeddings = config.maxPositionEmbeddings
        return try encodeConfigJSON(c)
    }

    public static func moduleName(_ p: Projection) -> String {
        switch p {
        case .qkv: "self_attn.qkv_proj"
        case .gateUp: "mlp.gate_up_proj"
        default: standardModuleName(p)
        }
    }

    /// gguf-py's names: the fused matrices are `attn_qkv` and `ffn_up` (2F rows, gate then up).
    public static let tensorNames = TensorNameTable(
        global: TensorNameTable.standard().global,
        layer: [
            ("attn_norm", "input_layernorm"),
            ("attn_qkv", "self_attn.qkv_proj"),
            ("attn_output", "self_attn.o_proj"),
            ("ffn_norm", "post_attention_layernorm"),
            ("ffn_up", "mlp.gate_up_proj"),
            ("ffn_down", "mlp.down_proj"),
        ])

    /// Phi-3's block: Llama's with the fused layout.
    static func block(headDim: Int) -> BlockSpec {
        var block = BlockSpec.llama(headDim: max(headDim, 1))
        block.layout = ProjectionLayout(fusedAttention: true, mlp: .fusedGated)
        return block
    }

    /// `phi3.*` keys as llama.cpp's converter writes them (no q/k permutation, the window in
    /// `phi3.attention.sliding_window`); the long-context models' `rope_factors_long` /
    /// `rope_factors_short` are refused.
    public static func config(gguf file: GGUFFile) throws -> ModelConfig {
        for tensor in ["rope_factors_long.weight", "rope_factors_short.weight"] where file.info(tensor) != nil {
            throw ModelError.unsupportedModel(source: file.url.path, problem: "phi3 with \(tensor) (longrope rope scaling) is not supported yet "
                + "(supported: \(ArchitectureRegistry.supportedList))")
        }
        let h = try GGUFHyperparameters(file, prefix: "phi3")
        let rope = RopeSpec(theta: h.ropeTheta, scaling: try h.ropeScaling(family: name))
        let window = try h.slidingWindow()
        return try h.modelConfig(architecture: name, modelType: "phi3", block: block(headDim: h.headDim),
                                 layers: Array(repeating: LayerAttention(slidingWindow: window, rope: rope), count: h.layers))
            .checked(path: file.url.path, keys: .gguf("phi3"))
    }
}
