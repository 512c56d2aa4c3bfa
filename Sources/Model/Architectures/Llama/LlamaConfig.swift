import Foundation
import Formats

/// A Hugging Face `config.json` for `LlamaForCausalLM`, with the keys transformers writes.
///
/// `rope_theta` is written both at the top level (transformers 4.x) and inside `rope_parameters`
/// (5.x); each version reads its own and ignores the other. Decoding reads the configs both write.
/// The five sizes (`hidden_size`, `intermediate_size`, `num_hidden_layers`, `num_attention_heads`,
/// `vocab_size`) are required; the rest default as in transformers' `LlamaConfig`:
/// `num_key_value_heads` = heads, `head_dim` = hidden / heads, `rms_norm_eps` 1e-6, `rope_theta`
/// 10000, `max_position_embeddings` 2048, `tie_word_embeddings` false; `torch_dtype` is also read
/// from 5.x's `dtype` (default float32). An `eos_token_id` list (Llama 3) keeps its first id.
struct LlamaHFConfig: Codable {
    struct RopeParameters: Codable {
        var ropeTheta: Double?
        var ropeType: String?

        enum CodingKeys: String, CodingKey {
            case ropeTheta = "rope_theta"
            case ropeType = "rope_type"
        }
    }

    /// `rope_scaling` (transformers 4.x): only its type is read, to refuse it by name.
    struct RopeScaling: Codable {
        var ropeType: String?
        var type: String?
        enum CodingKeys: String, CodingKey {
            case ropeType = "rope_type"
            case type
        }
    }

    var architectures: [String]
    var modelType: String
    var hiddenSize: Int
    var intermediateSize: Int
    var numHiddenLayers: Int
    var numAttentionHeads: Int
    var numKeyValueHeads: Int
    var headDim: Int
    var hiddenAct: String
    var rmsNormEps: Double
    var ropeTheta: Double
    var ropeParameters: RopeParameters?
    var ropeScaling: RopeScaling?
    var maxPositionEmbeddings: Int
    var vocabSize: Int
    var tieWordEmbeddings: Bool
    var attentionBias: Bool
    var mlpBias: Bool
    var bosTokenId: Int?
    var eosTokenId: Int?
    var padTokenId: Int?
    var torchDtype: String

    enum CodingKeys: String, CodingKey {
        case architectures
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
        case maxPositionEmbeddings = "max_position_embeddings"
        case vocabSize = "vocab_size"
        case tieWordEmbeddings = "tie_word_embeddings"
        case attentionBias = "attention_bias"
        case mlpBias = "mlp_bias"
        case bosTokenId = "bos_token_id"
        case eosTokenId = "eos_token_id"
        case padTokenId = "pad_token_id"
        case torchDtype = "torch_dtype"
    }

    private enum ExtraKeys: String, CodingKey { case dtype }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        architectures = try c.decodeIfPresent([String].self, forKey: .architectures) ?? ["LlamaForCausalLM"]
        modelType = try c.decodeIfPresent(String.self, forKey: .modelType) ?? "llama"
        hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
        intermediateSize = try c.decode(Int.self, forKey: .intermediateSize)
        numHiddenLayers = try c.decode(Int.self, forKey: .numHiddenLayers)
        numAttentionHeads = try c.decode(Int.self, forKey: .numAttentionHeads)
        vocabSize = try c.decode(Int.self, forKey: .vocabSize)
        guard numAttentionHeads > 0 else {
            throw DecodingError.dataCorruptedError(forKey: .numAttentionHeads, in: c, debugDescription: "must be positive")
        }
        numKeyValueHeads = try c.decodeIfPresent(Int.self, forKey: .numKeyValueHeads) ?? numAttentionHeads
        headDim = try c.decodeIfPresent(Int.self, forKey: .headDim) ?? hiddenSize / numAttentionHeads
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? "silu"
        rmsNormEps = try c.decodeIfPresent(Double.self, forKey: .rmsNormEps) ?? 1e-6
        ropeParameters = try c.decodeIfPresent(RopeParameters.self, forKey: .ropeParameters)
        ropeScaling = try c.decodeIfPresent(RopeScaling.self, forKey: .ropeScaling)
        ropeTheta = try c.decodeIfPresent(Double.self, forKey: .ropeTheta) ?? ropeParameters?.ropeTheta ?? 10_000
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? 2048
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? false
        attentionBias = try c.decodeIfPresent(Bool.self, forKey: .attentionBias) ?? false
        mlpBias = try c.decodeIfPresent(Bool.self, forKey: .mlpBias) ?? false
        bosTokenId = try c.decodeIfPresent(Int.self, forKey: .bosTokenId)
        if let ids = try? c.decodeIfPresent([Int].self, forKey: .eosTokenId) {
            eosTokenId = ids.first
        } else {
            eosTokenId = try c.decodeIfPresent(Int.self, forKey: .eosTokenId)
        }
        padTokenId = try c.decodeIfPresent(Int.self, forKey: .padTokenId)
        let extra = try decoder.container(keyedBy: ExtraKeys.self)
        torchDtype = try c.decodeIfPresent(String.self, forKey: .torchDtype)
            ?? extra.decodeIfPresent(String.self, forKey: .dtype) ?? "float32"
    }

    /// The config of a Llama `ModelConfig`, as transformers writes it.
    init(_ m: ModelConfig) {
        architectures = ["LlamaForCausalLM"]
        modelType = "llama"
        hiddenSize = m.hiddenSize
        intermediateSize = m.intermediateSize
        numHiddenLayers = m.numHiddenLayers
        numAttentionHeads = m.numAttentionHeads
        numKeyValueHeads = m.numKeyValueHeads
        headDim = m.headDim
        hiddenAct = "silu"
        rmsNormEps = m.rmsNormEps
        ropeTheta = m.layers.first?.rope.theta ?? 10_000
        ropeParameters = RopeParameters(ropeTheta: ropeTheta, ropeType: "default")
        ropeScaling = nil
        maxPositionEmbeddings = m.maxPositionEmbeddings
        vocabSize = m.vocabSize
        tieWordEmbeddings = m.tieWordEmbeddings
        attentionBias = false
        mlpBias = false
        bosTokenId = m.bosTokenId
        eosTokenId = m.eosTokenId
        padTokenId = m.padTokenId
        torchDtype = m.torchDtype
    }

    /// The runtime config, refusing by name what Llama's block here does not implement.
    func modelConfig(path: String) throws -> ModelConfig {
        let ropeType = ropeScaling?.ropeType ?? ropeScaling?.type ?? ropeParameters?.ropeType
        if let ropeType, ropeType != "default" {
            throw LlamaArchitecture.refusal(path: path, feature: "rope_scaling type '\(ropeType)'")
        }
        if attentionBias { throw LlamaArchitecture.refusal(path: path, feature: "attention_bias: true") }
        if mlpBias { throw LlamaArchitecture.refusal(path: path, feature: "mlp_bias: true") }
        guard hiddenAct == "silu" else { throw LlamaArchitecture.refusal(path: path, feature: "hidden_act '\(hiddenAct)'") }
        let config = ModelConfig(
            architecture: LlamaArchitecture.name, modelType: modelType, hiddenSize: hiddenSize,
            intermediateSize: intermediateSize, numHiddenLayers: numHiddenLayers, numAttentionHeads: numAttentionHeads,
            numKeyValueHeads: numKeyValueHeads, headDim: headDim, vocabSize: vocabSize,
            maxPositionEmbeddings: maxPositionEmbeddings, rmsNormEps: rmsNormEps, tieWordEmbeddings: tieWordEmbeddings,
            bosTokenId: bosTokenId, eosTokenId: eosTokenId, padTokenId: padTokenId, torchDtype: torchDtype,
            block: .llama(headDim: max(headDim, 1)),
            layers: Array(repeating: LayerAttention(rope: RopeSpec(theta: ropeTheta)), count: max(0, min(numHiddenLayers, 4096))))
        return try config.checked(path: path, keys: .huggingFace)
    }
}

extension LlamaArchitecture {
    /// The hyperparameters of a `llama` GGUF file (`llama.*` keys, as llama.cpp's converter
    /// writes them). Defaults follow llama.cpp where a key is optional: `head_count_kv` =
    /// `head_count`, `rope.freq_base` = 10000, head dimension = `attention.key_length`, else
    /// `rope.dimension_count`, else `embedding_length / head_count`. The vocabulary size is the
    /// row count of `token_embd.weight`, else the length of `tokenizer.ggml.tokens`.
    static func ggufConfig(_ file: GGUFFile) throws -> ModelConfig {
        let path = file.url.path
        let m = GGUFMetadataReader(file: file)
        if let experts = try m.optionalInt("llama.expert_count"), experts > 0 {
            throw refusal(path: path, feature: "llama.expert_count \(experts) (a mixture of experts)")
        }
        if m.has("llama.rope.scaling.type"), let type = try? m.string("llama.rope.scaling.type"), type != "none" {
            throw refusal(path: path, feature: "llama.rope.scaling.type '\(type)'")
        }
        if file.info("rope_freqs.weight") != nil { throw refusal(path: path, feature: "rope_freqs.weight (Llama 3.1 rope scaling)") }
        let layers = try m.positive("llama.block_count")
        guard layers <= 4096 else {
            throw GGUFError.invalidHyperparameter(path: path, key: "llama.block_count", problem: "is \(layers), more than 4096 layers")
        }
        let hidden = try m.positive("llama.embedding_length")
        let heads = try m.positive("llama.attention.head_count")
        let kvHeads = try m.positive("llama.attention.head_count_kv", default: heads)
        let ropeDims = try m.positive("llama.rope.dimension_count", default: hidden / heads)
        let headDim = try m.positive("llama.attention.key_length", default: ropeDims)
        let theta = try m.double("llama.rope.freq_base", default: 10_000)
        let config = ModelConfig(
            architecture: name, modelType: "llama", hiddenSize: hidden,
            intermediateSize: try m.positive("llama.feed_forward_length"), numHiddenLayers: layers,
            numAttentionHeads: heads, numKeyValueHeads: kvHeads, headDim: headDim, vocabSize: try ggufVocabularySize(file),
            maxPositionEmbeddings: try m.positive("llama.context_length"),
            rmsNormEps: try m.double("llama.attention.layer_norm_rms_epsilon"), tieWordEmbeddings: file.info("output.weight") == nil,
            bosTokenId: try m.optionalInt("tokenizer.ggml.bos_token_id"), eosTokenId: try m.optionalInt("tokenizer.ggml.eos_token_id"),
            padTokenId: try m.optionalInt("tokenizer.ggml.padding_token_id"), torchDtype: "float32",
            block: .llama(headDim: headDim), layers: Array(repeating: LayerAttention(rope: RopeSpec(theta: theta)), count: layers))
        return try config.checked(path: path, keys: .gguf("llama"))
    }
}

/// The vocabulary size of a GGUF model: the rows of `token_embd.weight` (what the weights need),
/// else the length of `tokenizer.ggml.tokens`, else `<arch>.vocab_size`.
func ggufVocabularySize(_ file: GGUFFile) throws -> Int {
    if let embedding = file.info("token_embd.weight"), embedding.dimensions.count == 2 { return embedding.dimensions[1] }
    if let tokens = file.metadata["tokenizer.ggml.tokens"]?.array { return tokens.count }
    return try GGUFMetadataReader(file: file).positive("\(file.architecture ?? "llama").vocab_size")
}
