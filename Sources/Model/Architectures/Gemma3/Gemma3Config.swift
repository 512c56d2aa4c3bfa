import Foundation
import Formats

/// A Hugging Face `config.json` for `Gemma3ForCausalLM` (`model_type` gemma3_text), as
/// transformers 4.5x and 5.x write it. Defaults are transformers' `Gemma3TextConfig`'s.
///
/// Layer types: `layer_types` ("sliding_attention" / "full_attention" per layer), else
/// `sliding_window_pattern` (every n-th layer full, default 6). Rotary bases: 5.x's
/// `rope_parameters` by layer type, else 4.x's `rope_theta` (full layers) and
/// `rope_local_base_freq` (sliding layers).
struct Gemma3HFConfig: Codable {
    struct Rope: Codable {
        var ropeTheta: Double?
        var ropeType: String?
        var factor: Double?
        enum CodingKeys: String, CodingKey {
            case ropeTheta = "rope_theta"
            case ropeType = "rope_type"
            case factor
        }
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
    var hiddenActivation: String?
    var rmsNormEps: Double?
    var maxPositionEmbeddings: Int?
    var vocabSize: Int
    var tieWordEmbeddings: Bool?
    var bosTokenId: Int?
    var eosTokenId: FirstTokenID?
    var padTokenId: Int?
    var queryPreAttnScalar: Double?
    var slidingWindow: Int?
    var slidingWindowPattern: Int?
    var layerTypes: [String]?
    var ropeTheta: Double?
    var ropeLocalBaseFreq: Double?
    var ropeScaling: Rope?
    var ropeParameters: [String: Rope]?
    var finalLogitSoftcapping: Double?
    var attnLogitSoftcapping: Double?
    var attentionBias: Bool?
    var useBidirectionalAttention: Bool?
    var torchDtype: String?
    var dtype: String?

    enum CodingKeys: String, CodingKey {
        case architectures
        case modelType = "model_type"
        case hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads"
        case headDim = "head_dim"
        case hiddenActivation = "hidden_activation"
        case rmsNormEps = "rms_norm_eps"
        case maxPositionEmbeddings = "max_position_embeddings"
        case vocabSize = "vocab_size"
        case tieWordEmbeddings = "tie_word_embeddings"
        case bosTokenId = "bos_token_id"
        case eosTokenId = "eos_token_id"
        case padTokenId = "pad_token_id"
        case queryPreAttnScalar = "query_pre_attn_scalar"
        case slidingWindow = "sliding_window"
        case slidingWindowPattern = "sliding_window_pattern"
        case layerTypes = "layer_types"
        case ropeTheta = "rope_theta"
        case ropeLocalBaseFreq = "rope_local_base_freq"
        case ropeScaling = "rope_scaling"
        case ropeParameters = "rope_parameters"
        case finalLogitSoftcapping = "final_logit_softcapping"
        case attnLogitSoftcapping = "attn_logit_softcapping"
        case attentionBias = "attention_bias"
        case useBidirectionalAttention = "use_bidirectional_attention"
        case torchDtype = "torch_dtype"
        case dtype
    }

    /// The runtime config, refusing by name what this block does not implement.
    func modelConfig(path: String) throws -> ModelConfig {
        func refuse(_ feature: String) -> ModelError { Gemma3Architecture.refusal(path: path, feature: feature) }
        if let cap = finalLogitSoftcapping { throw refuse("final_logit_softcapping \(cap)") }
        if let cap = attnLogitSoftcapping { throw refuse("attn_logit_softcapping \(cap)") }
        if attentionBias == true { throw refuse("attention_bias: true") }
        if useBidirectionalAttention == true { throw refuse("use_bidirectional_attention: true") }
        let activation = hiddenActivation ?? GatedActivation.geluTanh.rawValue
        guard activation == GatedActivation.geluTanh.rawValue else { throw refuse("hidden_activation '\(activation)'") }
        if let scaling = ropeScaling { throw refuse("rope_scaling type '\(scaling.ropeType ?? "?")'") }
        for (kind, rope) in ropeParameters ?? [:] where (rope.ropeType ?? "default") != "default" {
            throw refuse("rope_parameters.\(kind) type '\(rope.ropeType ?? "?")'")
        }

        let layerCount = max(0, min(numHiddenLayers, 4096))
        let types: [String]
        if let layerTypes {
            guard layerTypes.count == numHiddenLayers else {
                throw ModelError.invalidConfig(path: path, problem: "layer_types has \(layerTypes.count) entries for \(numHiddenLayers) layers")
            }
            if let other = layerTypes.first(where: { $0 != Self.sliding && $0 != Self.full }) {
                throw ModelError.invalidConfig(path: path, problem: "layer_types holds '\(other)', not \(Self.sliding) or \(Self.full)")
            }
            types = layerTypes
        } else {
            let pattern = slidingWindowPattern ?? 6
            guard pattern > 0 else { throw ModelError.invalidConfig(path: path, problem: "sliding_window_pattern \(pattern) is not positive") }
            types = (0..<layerCount).map { ($0 + 1) % pattern == 0 ? Self.full : Self.sliding }
        }
        let fullTheta = ropeParameters?[Self.full]?.ropeTheta ?? ropeTheta ?? 1_000_000
        let localTheta = ropeParameters?[Self.sliding]?.ropeTheta ?? ropeLocalBaseFreq ?? 10_000
        let window = slidingWindow ?? 4096
        let headDim = headDim ?? 256
        let scalar = queryPreAttnScalar ?? 256
        guard scalar.isFinite, scalar > 0 else {
            throw ModelError.invalidConfig(path: path, problem: "query_pre_attn_scalar \(scalar) is not a positive number")
        }
        let config = ModelConfig(
            architecture: Gemma3Architecture.name, modelType: modelType ?? "gemma3_text", hiddenSize: hiddenSize,
            intermediateSize: intermediateSize, numHiddenLayers: numHiddenLayers, numAttentionHeads: numAttentionHeads,
            numKeyValueHeads: numKeyValueHeads ?? numAttentionHeads, headDim: headDim, vocabSize: vocabSize,
            maxPositionEmbeddings: maxPositionEmbeddings ?? 131_072, rmsNormEps: rmsNormEps ?? 1e-6,
            tieWordEmbeddings: tieWordEmbeddings ?? true, bosTokenId: bosTokenId ?? 2, eosTokenId: eosTokenId?.id ?? 1,
            padTokenId: padTokenId ?? 0, torchDtype: torchDtype ?? dtype ?? "float32",
            block: Gemma3Architecture.block(hiddenSize: hiddenSize, queryPreAttnScalar: scalar),
            layers: types.map { type in
                type == Self.sliding ? LayerAttention(slidingWindow: window, rope: RopeSpec(theta: localTheta))
                                     : LayerAttention(rope: RopeSpec(theta: fullTheta))
            })
        return try config.checked(path: path, keys: .huggingFace)
    }

    /// The config transformers writes for `m` (both 4.x's and 5.x's rotary keys).
    init(_ m: ModelConfig) {
        let full = m.layers.first { $0.slidingWindow == nil }?.rope.theta ?? 1_000_000
        let local = m.layers.first { $0.slidingWindow != nil }?.rope.theta ?? 10_000
        architectures = ["Gemma3ForCausalLM"]
        modelType = "gemma3_text"
        hiddenSize = m.hiddenSize
        intermediateSize = m.intermediateSize
        numHiddenLayers = m.numHiddenLayers
        numAttentionHeads = m.numAttentionHeads
        numKeyValueHeads = m.numKeyValueHeads
        headDim = m.headDim
        hiddenActivation = GatedActivation.geluTanh.rawValue
        rmsNormEps = m.rmsNormEps
        maxPositionEmbeddings = m.maxPositionEmbeddings
        vocabSize = m.vocabSize
        tieWordEmbeddings = m.tieWordEmbeddings
        bosTokenId = m.bosTokenId
        eosTokenId = m.eosTokenId.map(FirstTokenID.init)
        padTokenId = m.padTokenId
        queryPreAttnScalar = m.block.queryPreAttnScalar
        slidingWindow = m.layers.compactMap(\.slidingWindow).first
        layerTypes = m.layers.map { $0.slidingWindow == nil ? Self.full : Self.sliding }
        ropeTheta = full
        ropeLocalBaseFreq = local
        ropeParameters = [Self.full: Rope(ropeTheta: full, ropeType: "default"), Self.sliding: Rope(ropeTheta: local, ropeType: "default")]
        attentionBias = false
        useBidirectionalAttention = false
        torchDtype = m.torchDtype
    }
}

extension Gemma3Architecture {
    /// The hyperparameters of a `gemma3` GGUF file. llama.cpp fixes what the file does not say:
    /// every 6th layer is global (the others slide over `attention.sliding_window` positions),
    /// sliding layers rotate with base 10000, and the attention scale is 1/√key_length (for the
    /// 62-layer 27B model 1/√(embedding_length / head_count)).
    static func ggufConfig(_ file: GGUFFile) throws -> ModelConfig {
        let path = file.url.path
        let m = GGUFMetadataReader(file: file)
        if m.has("gemma3.rope.scaling.type"), let type = try? m.string("gemma3.rope.scaling.type"), type != "none" {
            throw refusal(path: path, feature: "gemma3.rope.scaling.type '\(type)'")
        }
        if let cap = try m.optionalDouble("gemma3.final_logit_softcapping") { throw refusal(path: path, feature: "final_logit_softcapping \(cap)") }
        if let cap = try m.optionalDouble("gemma3.attn_logit_softcapping") { throw refusal(path: path, feature: "attn_logit_softcapping \(cap)") }
        let layers = try m.positive("gemma3.block_count")
        guard layers <= 4096 else {
            throw GGUFError.invalidHyperparameter(path: path, key: "gemma3.block_count", problem: "is \(layers), more than 4096 layers")
        }
        let hidden = try m.positive("gemma3.embedding_length")
        let heads = try m.positive("gemma3.attention.head_count")
        let headDim = try m.positive("gemma3.attention.key_length", default: 256)
        let window = try m.positive("gemma3.attention.sliding_window")
        let fullTheta = try m.double("gemma3.rope.freq_base", default: 1_000_000)
        let scalar = Double(layers == 62 ? hidden / heads : headDim)
        let config = ModelConfig(
            architecture: name, modelType: "gemma3_text", hiddenSize: hidden,
            intermediateSize: try m.positive("gemma3.feed_forward_length"), numHiddenLayers: layers,
            numAttentionHeads: heads, numKeyValueHeads: try m.positive("gemma3.attention.head_count_kv", default: heads),
            headDim: headDim, vocabSize: try ggufVocabularySize(file), maxPositionEmbeddings: try m.positive("gemma3.context_length"),
            rmsNormEps: try m.double("gemma3.attention.layer_norm_rms_epsilon"), tieWordEmbeddings: file.info("output.weight") == nil,
            bosTokenId: try m.optionalInt("tokenizer.ggml.bos_token_id"), eosTokenId: try m.optionalInt("tokenizer.ggml.eos_token_id"),
            padTokenId: try m.optionalInt("tokenizer.ggml.padding_token_id"), torchDtype: "float32",
            block: block(hiddenSize: hidden, queryPreAttnScalar: scalar),
            layers: (0..<layers).map { i in
                (i + 1) % 6 == 0 ? LayerAttention(rope: RopeSpec(theta: fullTheta))
                                 : LayerAttention(slidingWindow: window, rope: RopeSpec(theta: 10_000))
            })
        return try config.checked(path: path, keys: .gguf("gemma3"))
    }
}

/// A token id written as a number or, for several stop tokens, a list whose first entry is kept.
struct FirstTokenID: Codable {
    var id: Int

    init(_ id: Int) { self.id = id }

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let list = try? c.decode([Int].self) {
            guard let first = list.first else {
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "an empty list of token ids")
            }
            id = first
        } else {
            id = try c.decode(Int.self)
        }
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(id)
    }
}
