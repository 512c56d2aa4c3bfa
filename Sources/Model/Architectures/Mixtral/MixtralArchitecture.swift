import Foundation
import Formats

/// Mixtral (`model_type` mixtral; llama.cpp: GGUF `llama` with `llama.expert_count`): Llama's
/// attention, and a sparse mixture of experts in place of the MLP. A router
/// (`block_sparse_moe.gate`, E × C) sends each token to its `num_experts_per_tok` most probable
/// experts, weighted by their renormalised router probabilities; expert e is a SwiGLU MLP
/// (`block_sparse_moe.experts.e.w1` gate, `w3` up, `w2` down). Each expert's three matrices are
/// adapter targets, named as PEFT names them; the router stays frozen (full fine-tuning trains
/// it, as transformers does). Refused by name: router jitter noise and the load-balancing loss
/// (`output_router_logits`), which would change what training optimises.
public enum MixtralArchitecture: Architecture {
    public static let name = "mixtral"
    public static let modelTypes = ["mixtral"]
    public static let ggufArchitectures = ["llama"]

    /// Defaults as transformers' `MixtralConfig`: 8 experts, 2 per token, `head_dim` hidden / heads,
    /// `rope_theta` 10⁶, `max_position_embeddings` 131072, `rms_norm_eps` 1e-5, untied head.
    public static func config(huggingFace data: Data, path: String) throws -> ModelConfig {
        struct Router: Decodable { var router_jitter_noise: Double? }
        let r = try DecoderHFConfig.reader(data, path: path, family: name)
        try r.checkShared()
        if let noise = (try? JSONDecoder().decode(Router.self, from: data))?.router_jitter_noise, noise != 0 {
            throw r.refuse("router_jitter_noise \(noise) (training here adds no noise)")
        }
        if r.config.outputRouterLogits == true { throw r.refuse("output_router_logits: true (the load-balancing loss)") }
        let experts = r.config.numLocalExperts ?? 8, topK = r.config.numExpertsPerTok ?? 2
        guard (1...1024).contains(experts), (1...experts).contains(topK) else {
            throw ModelError.invalidConfig(path: path, problem: "num_experts_per_tok \(topK) of num_local_experts \(experts) is not in 1...\(min(experts, 1024))")
        }
        let headDim = r.headDimOrDefault
        return try r.modelConfig(architecture: name, defaultModelType: "mixtral", headDim: headDim,
                                 block: block(headDim: headDim, experts: experts, topK: topK), rope: try r.rope(defaultTheta: 1_000_000),
                                 windows: try r.windows(windowsAllLayers: true), defaultMaxPositions: 131_072, defaultEps: 1e-5)
    }

    public static func huggingFaceConfigJSON(_ config: ModelConfig) throws -> Data {
        var c = try DecoderHFConfig(config, architecture: "MixtralForCausalLM", modelType: "mixtral")
        (c.numLocalExperts, c.numExpertsPerTok) = config.block.layout.expertShape
        c.outputRouterLogits = false
        return try encodeConfigJSON(c)
    }

    public static func moduleName(_ p: Projection) -> String {
        switch p {
        case .router: "block_sparse_moe.gate"
        case let .expert(e, .gate): "block_sparse_moe.experts.\(e).w1"
        case let .expert(e, .down): "block_sparse_moe.experts.\(e).w2"
        case let .expert(e, .up): "block_sparse_moe.experts.\(e).w3"
        default: standardModuleName(p)
        }
    }

    /// llama.cpp's names: the router is `ffn_gate_inp`; the experts' matrices are stacked per layer
    /// (`ggufExpertStacks`).
    public static let tensorNames = TensorNameTable(
        global: TensorNameTable.standard().global,
        layer: TensorNameTable.standard().layer.filter { !$0.gguf.hasPrefix("ffn_") || $0.gguf == "ffn_norm" }
            + [("ffn_gate_inp", "block_sparse_moe.gate")])

    public static let ggufExpertStacks: [(gguf: String, matrix: ExpertMatrix)] = [
        ("ffn_gate_exps", .gate), ("ffn_down_exps", .down), ("ffn_up_exps", .up),
    ]

    /// Converted as Llama: q and k rows permuted.
    public static func ggufPermutedHeads(huggingFace name: String, config: ModelConfig) -> Int? {
        LlamaArchitecture.ggufPermutedHeads(huggingFace: name, config: config)
    }

    public static func claims(gguf file: GGUFFile) -> Bool { (file.metadata["llama.expert_count"]?.int ?? 0) > 0 }

    /// Mixtral's block: Llama's attention, E experts, K per token.
    static func block(headDim: Int, experts: Int, topK: Int) -> BlockSpec {
        var block = BlockSpec.llama(headDim: max(headDim, 1))
        block.layout = ProjectionLayout(mlp: .experts(count: experts, topK: topK))
        return block
    }

    /// `llama.*` keys with `llama.expert_count` / `llama.expert_used_count`; the experts' per-expert
    /// width is `llama.expert_feed_forward_length` when present, else `feed_forward_length`.
    public static func config(gguf file: GGUFFile) throws -> ModelConfig {
        let m = GGUFMetadataReader(file: file)
        let h = try GGUFHyperparameters(file, prefix: "llama")
        let experts = try m.positive("llama.expert_count"), topK = try m.positive("llama.expert_used_count")
        guard topK <= experts, experts <= 1024 else {
            throw GGUFError.invalidHyperparameter(path: file.url.path, key: "llama.expert_used_count",
                                                  problem: "is \(topK) of \(experts) experts")
        }
        let rope = RopeSpec(theta: h.ropeTheta, scaling: try h.ropeScaling(family: name))
        var config = h.modelConfig(architecture: name, modelType: "mixtral", block: block(headDim: h.headDim, experts: experts, topK: topK),
                                   layers: Array(repeating: LayerAttention(rope: rope), count: h.layers))
        config.intermediateSize = try m.positive("llama.expert_feed_forward_length", default: h.intermediate)
        return try config.checked(path: file.url.path, keys: .gguf("llama"))
    }
}
