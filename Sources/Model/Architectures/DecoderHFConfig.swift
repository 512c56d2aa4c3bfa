import Foundation
import Formats

/// The `config.json` keys that the Llama-like families share (llama, qwen2, qwen3, mistral,
/// mixtral, phi3), as transformers 4.x and 5.x write them. Each family reads what it needs
/// through the helpers below and refuses, by name, every value its block would otherwise ignore;
/// it writes the keys transformers reads for it (`nil` keys are left out).
///
/// Rotary keys: 5.x's `rope_parameters` (`rope_theta`, `rope_type` and the scaling fields) or
/// 4.x's top-level `rope_theta` with `rope_scaling`. Sliding windows: 5.x's `layer_types`, else
/// `sliding_window` (with Qwen's `use_sliding_window` / `max_window_layers`). Dtype: `torch_dtype`
/// or 5.x's `dtype`. An `eos_token_id` list keeps its first id.
struct DecoderHFConfig: Codable {
    /// `rope_parameters` (5.x) or `rope_scaling` (4.x, which calls the type `type` in older files).
    struct Rope: Codable {
        var ropeTheta: Double?
        var ropeType: String?
        var type: String?
        var factor: Double?
        var lowFreqFactor: Double?
        var highFreqFactor: Double?
        var originalMaxPositionEmbeddings: Int?
        var partialRotaryFactor: Double?

        enum CodingKeys: String, CodingKey {
            case ropeTheta = "rope_theta", ropeType = "rope_type", type, factor
            case lowFreqFactor = "low_freq_factor", highFreqFactor = "high_freq_factor"
            case originalMaxPositionEmbeddings = "original_max_position_embeddings"
            case partialRotaryFactor = "partial_rotary_factor"
        }

        var kind: String? { ropeType ?? type }
    }

    static let sliding = "sliding_attention", full = "full_attention"

    var architectures: [String]?
    var modelType: String?
    var hiddenSize: Int
    var intermediateSize: Int
    var numHiddenLayers: Int
    var numAttentionHeads: Int
    var numKeyValueHeads: Int?
    var headDim: Int?
    var hiddenAct: String?
    var rmsNormEps: Double?
    var ropeTheta: Double?
    var ropeParameters: Rope?
    var ropeScaling: Rope?
    var partialRotaryFactor: Double?
    var maxPositionEmbeddings: Int?
    var originalMaxPositionEmbeddings: Int?
    var vocabSize: Int
    var tieWordEmbeddings: Bool?
    var attentionBias: Bool?
    var mlpBias: Bool?
    var bosTokenId: Int?
    var eosTokenId: FirstTokenID?
    var padTokenId: Int?
    var slidingWindow: Int?
    var useSlidingWindow: Bool?
    var maxWindowLayers: Int?
    var layerTypes: [String]?
    var numLocalExperts: Int?
    var numExpertsPerTok: Int?
    var outputRouterLogits: Bool?
    var routerAuxLossCoef: Double?
    var attnLogitSoftcapping: Double?
    var attentionDropout: Double?
    var residPdrop: Double?
    var embdPdrop: Double?
    var finalLogitSoftcapping: Double?
    var torchDtype: String?
    var dtype: String?

    enum CodingKeys: String, CodingKey {
        case architectures, dtype
        case modelType = "model_type"
        case hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads"
        case headDim = "head_dim"
        case hiddenAct = "hidden_act"
        case rmsNormEps = "rms_norm_eps"
        case ropeTheta = "rope_theta"
        case ropeParameters = "rope_parameters"
        case ropeScaling = "rope_scaling"
        case partialRotaryFactor = "partial_rotary_factor"
        case maxPositionEmbeddings = "max_position_embeddings"
        case originalMaxPositionEmbeddings = "original_max_position_embeddings"
        case vocabSize = "vocab_size"
        case tieWordEmbeddings = "tie_word_embeddings"
        case attentionBias = "attention_bias"
        case mlpBias = "mlp_bias"
        case bosTokenId = "bos_token_id"
        case eosTokenId = "eos_token_id"
        case padTokenId = "pad_token_id"
        case slidingWindow = "sliding_window"
        case useSlidingWindow = "use_sliding_window"
        case maxWindowLayers = "max_window_layers"
        case layerTypes = "layer_types"
        case numLocalExperts = "num_local_experts"
        case numExpertsPerTok = "num_experts_per_tok"
        case outputRouterLogits = "output_router_logits"
        case routerAuxLossCoef = "router_aux_loss_coef"
        case attnLogitSoftcapping = "attn_logit_softcapping"
        case attentionDropout = "attention_dropout"
        case residPdrop = "resid_pdrop"
        case embdPdrop = "embd_pdrop"
        case finalLogitSoftcapping = "final_logit_softcapping"
        case torchDtype = "torch_dtype"
    }

    /// The sizes of `m`, the rotary base and scaling of its first layer (both the 4.x and the 5.x
    /// keys), its window as `layer_types`, token ids and dtype: what every family writes. A rotary
    /// scaling transformers has no type for (llama.cpp's `rope_freqs.weight`) is refused.
    init(_ m: ModelConfig, architecture: String, modelType: String) throws {
        if case .divisors = m.layers.first?.rope.scaling {
            throw ModelError.unsupportedModel(
                source: architecture, problem: "its rotary frequencies come from a GGUF rope_freqs.weight, which no transformers "
                    + "rope_scaling type expresses; convert the original Hugging Face model instead")
        }
        architectures = [architecture]
        self.modelType = modelType
        hiddenSize = m.hiddenSize
        intermediateSize = m.intermediateSize
        numHiddenLayers = m.numHiddenLayers
        numAttentionHeads = m.numAttentionHeads
        numKeyValueHeads = m.numKeyValueHeads
        headDim = m.headDim
        hiddenAct = m.block.activation.rawValue
        rmsNormEps = m.rmsNormEps
        maxPositionEmbeddings = m.maxPositionEmbeddings
        vocabSize = m.vocabSize
        tieWordEmbeddings = m.tieWordEmbeddings
        bosTokenId = m.bosTokenId
        eosTokenId = m.eosTokenId.map(FirstTokenID.init)
        padTokenId = m.padTokenId
        torchDtype = m.torchDtype
        let rope = m.layers.first?.rope ?? RopeSpec(theta: 10_000)
        ropeTheta = rope.theta
        ropeParameters = Self.rope(rope)
        ropeScaling = rope.scaling == nil ? nil : ropeParameters
        if let window = m.layers.compactMap(\.slidingWindow).first {
            slidingWindow = window
            layerTypes = m.layers.map { $0.slidingWindow == nil ? Self.full : Self.sliding }
        }
    }

    /// `rope_parameters` for `spec` (`.divisors` are refused by `init` before this).
    private static func rope(_ spec: RopeSpec) -> Rope {
        var r = Rope(ropeTheta: spec.theta, ropeType: "default")
        switch spec.scaling {
        case nil, .divisors: break
        case let .linear(factor): (r.ropeType, r.factor) = ("linear", factor)
        case let .dynamic(factor, _): (r.ropeType, r.factor) = ("dynamic", factor)
        case let .llama3(factor, low, high, original):
            (r.ropeType, r.factor, r.lowFreqFactor, r.highFreqFactor, r.originalMaxPositionEmbeddings) = ("llama3", factor, low, high, original)
        }
        return r
    }
}

// MARK: - Reading

extension DecoderHFConfig {
    /// One family's reading of the shared keys; `refuse(feature)` makes its refusal.
    struct Reader {
        let config: DecoderHFConfig
        let path: String
        let family: String

        func refuse(_ feature: String) -> ModelError {
            .unsupportedModel(source: path, problem: "\(family) with \(feature) is not supported yet (supported: \(ArchitectureRegistry.supportedList))")
        }

        /// Refusals every Llama-like family shares: an activation other than SiLU, logit
        /// soft-capping, dropout (training here never drops out, so it would not train the model
        /// transformers does).
        func checkShared() throws {
            let act = config.hiddenAct ?? "silu"
            guard act == "silu" else { throw refuse("hidden_act '\(act)'") }
            for (key, p) in [("attention_dropout", config.attentionDropout), ("resid_pdrop", config.residPdrop), ("embd_pdrop", config.embdPdrop)]
            where (p ?? 0) != 0 {
                throw refuse("\(key) \(p!) (training here uses no dropout)")
            }
            if let cap = config.attnLogitSoftcapping { throw refuse("attn_logit_softcapping \(cap) (attention soft-capping is Gemma 2's)") }
            if let cap = config.finalLogitSoftcapping { throw refuse("final_logit_softcapping \(cap)") }
        }

        /// The rotary embedding of every layer: base θ (`rope_theta`, default `defaultTheta`) and
        /// the scaling types transformers' Llama implements (linear, dynamic, llama3); any other
        /// type, or a partial rotation, refused by name.
        func rope(defaultTheta: Double) throws -> RopeSpec {
            let c = config
            let theta = c.ropeTheta ?? c.ropeParameters?.ropeTheta ?? defaultTheta
            if let partial = c.partialRotaryFactor ?? c.ropeParameters?.partialRotaryFactor, partial != 1 {
                throw refuse("partial_rotary_factor \(partial) (a partial rotary embedding)")
            }
            guard let r = c.ropeScaling ?? c.ropeParameters, let kind = r.kind, kind != "default" else { return RopeSpec(theta: theta) }
            func field<T>(_ value: T?, _ key: String) throws -> T {
                guard let value else { throw ModelError.invalidConfig(path: path, problem: "rope_scaling type '\(kind)' needs '\(key)'") }
                return value
            }
            let factor = try field(r.factor, "factor")
            guard factor.isFinite, factor >= 1 else {
                throw ModelError.invalidConfig(path: path, problem: "rope_scaling factor \(factor) is not a number ≥ 1")
            }
            switch kind {
            case "linear": return RopeSpec(theta: theta, scaling: .linear(factor: factor))
            case "dynamic": return RopeSpec(theta: theta, scaling: .dynamic(factor: factor, maxPositions: c.maxPositionEmbeddings ?? 2048))
            case "llama3":
                let low = try field(r.lowFreqFactor, "low_freq_factor"), high = try field(r.highFreqFactor, "high_freq_factor")
                let original = try field(r.originalMaxPositionEmbeddings, "original_max_position_embeddings")
                guard low > 0, high > low, original > 0 else {
                    throw ModelError.invalidConfig(path: path, problem: "rope_scaling llama3 needs 0 < low_freq_factor < high_freq_factor "
                        + "and a positive original_max_position_embeddings")
                }
                return RopeSpec(theta: theta, scaling: .llama3(factor: factor, lowFrequencyFactor: low, highFrequencyFactor: high,
                                                                originalMaxPositions: original))
            default:
                throw refuse("rope_scaling type '\(kind)' (supported: default, linear, dynamic, llama3)")
            }
        }

        /// Each layer's sliding window: `layer_types` when given, else every layer from
        /// `max_window_layers` on (Qwen, when `use_sliding_window`), else every layer when
        /// `windowsAllLayers` (Mistral, Mixtral, Phi-3) and `sliding_window` is set.
        func windows(windowsAllLayers: Bool) throws -> [Int?] {
            let c = config, count = max(0, min(c.numHiddenLayers, 4096))
            if let types = c.layerTypes {
                guard types.count == c.numHiddenLayers else {
                    throw ModelError.invalidConfig(path: path, problem: "layer_types has \(types.count) entries for \(c.numHiddenLayers) layers")
                }
                if let other = types.first(where: { $0 != sliding && $0 != full }) {
                    throw ModelError.invalidConfig(path: path, problem: "layer_types holds '\(other)', not \(sliding) or \(full)")
                }
                guard !types.contains(sliding) || c.slidingWindow != nil else {
                    throw ModelError.invalidConfig(path: path, problem: "layer_types has sliding layers but sliding_window is null")
                }
                return types.map { $0 == sliding ? c.slidingWindow : nil }
            }
            guard let window = c.slidingWindow else { return Array(repeating: nil, count: count) }
            if windowsAllLayers { return Array(repeating: window, count: count) }
            guard c.useSlidingWindow == true else { return Array(repeating: nil, count: count) }
            let first = c.maxWindowLayers ?? 28
            return (0..<count).map { $0 >= first ? window : nil }
        }

        /// The runtime config from the shared sizes and what the family decided.
        func modelConfig(architecture: String, defaultModelType: String, headDim: Int, block: BlockSpec, rope: RopeSpec,
                         windows: [Int?], defaultMaxPositions: Int, defaultEps: Double) throws -> ModelConfig {
            let c = config
            let config = ModelConfig(
                architecture: architecture, modelType: c.modelType ?? defaultModelType, hiddenSize: c.hiddenSize,
                intermediateSize: c.intermediateSize, numHiddenLayers: c.numHiddenLayers, numAttentionHeads: c.numAttentionHeads,
                numKeyValueHeads: c.numKeyValueHeads ?? c.numAttentionHeads, headDim: headDim, vocabSize: c.vocabSize,
                maxPositionEmbeddings: c.maxPositionEmbeddings ?? defaultMaxPositions, rmsNormEps: c.rmsNormEps ?? defaultEps,
                tieWordEmbeddings: c.tieWordEmbeddings ?? false, bosTokenId: c.bosTokenId, eosTokenId: c.eosTokenId?.id,
                padTokenId: c.padTokenId, torchDtype: c.torchDtype ?? c.dtype ?? "float32", block: block,
                layers: windows.map { LayerAttention(slidingWindow: $0, rope: rope) })
            return try config.checked(path: path, keys: .huggingFace)
        }

        /// `head_dim`, else hidden / heads (heads checked positive first).
        var headDimOrDefault: Int {
            config.headDim ?? config.hiddenSize / max(1, config.numAttentionHeads)
        }
    }

    /// Decodes `data` (from `path`) for `family`.
    static func reader(_ data: Data, path: String, family: String) throws -> Reader {
        let config = try ConfigDecoding.decode(DecoderHFConfig.self, from: data, path: path)
        guard config.numAttentionHeads > 0 else {
            throw ModelError.invalidConfig(path: path, problem: "num_attention_heads is \(config.numAttentionHeads), not in 1...\(1 << 24)")
        }
        return Reader(config: config, path: path, family: family)
    }
}
