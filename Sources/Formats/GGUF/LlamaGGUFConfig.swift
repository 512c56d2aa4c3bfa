/// The hyperparameters of a Llama-architecture GGUF file, read from its metadata
/// (`llama.*` keys, as llama.cpp's converter writes them).
///
/// Defaults follow llama.cpp where a key is optional: `head_count_kv` = `head_count`,
/// `rope.freq_base` = 10000, head dimension = `attention.key_length`, else `rope.dimension_count`,
/// else `embedding_length / head_count`. The vocabulary size is the length of
/// `tokenizer.ggml.tokens` (else `llama.vocab_size`); if `token_embd.weight` has a different
/// number of rows, its row count wins, since that is what the weights need.
public struct GGUFLlamaHyperparameters: Codable, Sendable, Equatable {
    public var blockCount: Int
    public var contextLength: Int
    public var embeddingLength: Int
    public var feedForwardLength: Int
    public var headCount: Int
    public var headCountKV: Int
    public var headDim: Int
    public var ropeDimensionCount: Int
    public var ropeFreqBase: Double
    public var rmsNormEpsilon: Double
    public var vocabSize: Int
    /// True when the file has no `output.weight`: the output projection reuses `token_embd.weight`.
    public var tiedEmbeddings: Bool
    public var bosTokenID: Int?
    public var eosTokenID: Int?
    public var padTokenID: Int?

    enum CodingKeys: String, CodingKey {
        case blockCount = "block_count"
        case contextLength = "context_length"
        case embeddingLength = "embedding_length"
        case feedForwardLength = "feed_forward_length"
        case headCount = "attention.head_count"
        case headCountKV = "attention.head_count_kv"
        case headDim = "head_dim"
        case ropeDimensionCount = "rope.dimension_count"
        case ropeFreqBase = "rope.freq_base"
        case rmsNormEpsilon = "attention.layer_norm_rms_epsilon"
        case vocabSize = "vocab_size"
        case tiedEmbeddings = "tied_embeddings"
        case bosTokenID = "bos_token_id"
        case eosTokenID = "eos_token_id"
        case padTokenID = "padding_token_id"
    }

    /// Reads and checks the hyperparameters of `file`, whose `general.architecture` must be `llama`.
    public init(file: GGUFFile) throws(GGUFError) {
        let path = file.url.path
        let metadata = MetadataReader(file: file)
        let architecture = try metadata.string("general.architecture")
        guard architecture == "llama" else { throw .unsupportedArchitecture(path: path, architecture: architecture) }

        blockCount = try metadata.positive("llama.block_count")
        guard blockCount <= 4096 else {
            throw .invalidHyperparameter(path: path, key: "llama.block_count", problem: "is \(blockCount), more than 4096 layers")
        }
        contextLength = try metadata.positive("llama.context_length")
        embeddingLength = try metadata.positive("llama.embedding_length")
        feedForwardLength = try metadata.positive("llama.feed_forward_length")
        headCount = try metadata.positive("llama.attention.head_count")
        headCountKV = try metadata.positive("llama.attention.head_count_kv", default: headCount)
        guard headCount % headCountKV == 0 else {
            throw .invalidHyperparameter(path: path, key: "llama.attention.head_count_kv",
                                         problem: "\(headCountKV) does not divide head_count \(headCount)")
        }
        let defaultHeadDim = embeddingLength / headCount
        ropeDimensionCount = try metadata.positive("llama.rope.dimension_count", default: defaultHeadDim)
        headDim = try metadata.positive("llama.attention.key_length", default: ropeDimensionCount)
        guard headDim > 0, headDim % 2 == 0 else {
            throw .invalidHyperparameter(path: path, key: "head dimension", problem: "\(headDim) is not a positive even number (rotary embeddings rotate pairs)")
        }
        ropeFreqBase = try metadata.double("llama.rope.freq_base", default: 10_000)
        rmsNormEpsilon = try metadata.double("llama.attention.layer_norm_rms_epsilon")

        let embedding = file.info("token_embd.weight")
        if let tokens = file.metadata["tokenizer.ggml.tokens"]?.array {
            vocabSize = tokens.count
        } else if let embedding, embedding.dimensions.count == 2 {
            vocabSize = embedding.dimensions[1]
        } else {
            vocabSize = try metadata.positive("llama.vocab_size")
        }
        if let embedding, embedding.dimensions.count == 2, embedding.dimensions[1] != vocabSize {
            vocabSize = embedding.dimensions[1]
        }
        tiedEmbeddings = file.info("output.weight") == nil
        bosTokenID = try metadata.optionalInt("tokenizer.ggml.bos_token_id")
        eosTokenID = try metadata.optionalInt("tokenizer.ggml.eos_token_id")
        padTokenID = try metadata.optionalInt("tokenizer.ggml.padding_token_id")
    }

    /// The Hugging Face `config.json` of the same model (`LlamaForCausalLM`).
    public func huggingFaceConfig(torchDtype: String = "float32") -> ModelConfig {
        ModelConfig(
            hiddenSize: embeddingLength, intermediateSize: feedForwardLength, numHiddenLayers: blockCount,
            numAttentionHeads: headCount, numKeyValueHeads: headCountKV, headDim: headDim,
            rmsNormEps: rmsNormEpsilon, ropeTheta: ropeFreqBase, maxPositionEmbeddings: contextLength,
            vocabSize: vocabSize, tieWordEmbeddings: tiedEmbeddings,
            bosTokenId: bosTokenID, eosTokenId: eosTokenID, padTokenId: padTokenID, torchDtype: torchDtype)
    }
}

/// A Hugging Face `config.json` for `LlamaForCausalLM`, with the keys transformers writes.
///
/// `rope_theta` is written both at the top level (transformers 4.x) and inside
/// `rope_parameters` (5.x); each version reads its own and ignores the other.
///
/// Decoding reads the configs both versions write. The five sizes (`hidden_size`,
/// `intermediate_size`, `num_hidden_layers`, `num_attention_heads`, `vocab_size`) are required;
/// the rest default as in transformers' `LlamaConfig`: `num_key_value_heads` = heads, `head_dim`
/// = hidden / heads, `rms_norm_eps` 1e-6, `rope_theta` 10000 (top level, else
/// `rope_parameters.rope_theta`), `max_position_embeddings` 2048, `tie_word_embeddings` false,
/// `hidden_act` silu, no biases; `torch_dtype` is also read from 5.x's `dtype` (default float32).
/// An `eos_token_id` list (Llama 3) keeps its first id.
public struct ModelConfig: Codable, Sendable, Equatable {
    public struct RopeParameters: Codable, Sendable, Equatable {
        public var ropeTheta: Double
        public var ropeType: String

        public init(ropeTheta: Double, ropeType: String = "default") {
            self.ropeTheta = ropeTheta
            self.ropeType = ropeType
        }

        enum CodingKeys: String, CodingKey {
            case ropeTheta = "rope_theta"
            case ropeType = "rope_type"
        }
    }

    public var architectures: [String]
    public var modelType: String
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    public var headDim: Int
    public var hiddenAct: String
    public var rmsNormEps: Double
    public var ropeTheta: Double
    public var ropeParameters: RopeParameters?
    public var maxPositionEmbeddings: Int
    public var vocabSize: Int
    public var tieWordEmbeddings: Bool
    public var attentionBias: Bool
    public var mlpBias: Bool
    public var bosTokenId: Int?
    public var eosTokenId: Int?
    public var padTokenId: Int?
    public var torchDtype: String

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

    public init(from decoder: Decoder) throws {
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
        try checkSizes(c)
    }

    /// Refuses sizes a model cannot have, so that no weight size computed from them overflows:
    /// every dimension in `1...2^24` (layers up to 4096), heads divisible by KV heads, an even
    /// head dimension (rotary pairs), finite positive `rms_norm_eps` and `rope_theta`.
    private func checkSizes(_ c: KeyedDecodingContainer<CodingKeys>) throws {
        let limit = 1 << 24
        for (key, value, maximum) in [(CodingKeys.hiddenSize, hiddenSize, limit), (.intermediateSize, intermediateSize, limit),
                                      (.numHiddenLayers, numHiddenLayers, 4096), (.numAttentionHeads, numAttentionHeads, limit),
                                      (.numKeyValueHeads, numKeyValueHeads, limit), (.headDim, headDim, limit),
                                      (.vocabSize, vocabSize, limit), (.maxPositionEmbeddings, maxPositionEmbeddings, 1 << 30)]
        where !(1...maximum).contains(value) {
            throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "\(value) is not in 1...\(maximum)")
        }
        guard numAttentionHeads % numKeyValueHeads == 0 else {
            throw DecodingError.dataCorruptedError(
                forKey: .numKeyValueHeads, in: c,
                debugDescription: "\(numAttentionHeads) attention heads are not a multiple of \(numKeyValueHeads) key/value heads")
        }
        guard headDim % 2 == 0 else {
            throw DecodingError.dataCorruptedError(forKey: .headDim, in: c, debugDescription: "\(headDim) is odd (rotary embeddings rotate pairs)")
        }
        guard rmsNormEps.isFinite, rmsNormEps > 0 else {
            throw DecodingError.dataCorruptedError(forKey: .rmsNormEps, in: c, debugDescription: "\(rmsNormEps) is not a positive number")
        }
        guard ropeTheta.isFinite, ropeTheta > 0 else {
            throw DecodingError.dataCorruptedError(forKey: .ropeTheta, in: c, debugDescription: "\(ropeTheta) is not a positive number")
        }
    }

    public init(
        hiddenSize: Int, intermediateSize: Int, numHiddenLayers: Int, numAttentionHeads: Int,
        numKeyValueHeads: Int, headDim: Int, rmsNormEps: Double, ropeTheta: Double,
        maxPositionEmbeddings: Int, vocabSize: Int, tieWordEmbeddings: Bool,
        bosTokenId: Int? = nil, eosTokenId: Int? = nil, padTokenId: Int? = nil, torchDtype: String = "float32"
    ) {
        architectures = ["LlamaForCausalLM"]
        modelType = "llama"
        hiddenAct = "silu"
        attentionBias = false
        mlpBias = false
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.numKeyValueHeads = numKeyValueHeads
        self.headDim = headDim
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.ropeParameters = RopeParameters(ropeTheta: ropeTheta)
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.vocabSize = vocabSize
        self.tieWordEmbeddings = tieWordEmbeddings
        self.bosTokenId = bosTokenId
        self.eosTokenId = eosTokenId
        self.padTokenId = padTokenId
        self.torchDtype = torchDtype
    }
}

/// Typed reads of metadata with errors that name the file and key.
private struct MetadataReader {
    let file: GGUFFile
    var path: String { file.url.path }

    func value(_ key: String) throws(GGUFError) -> GGUFValue {
        guard let value = file.metadata[key] else { throw .missingMetadata(path: path, key: key) }
        return value
    }

    func string(_ key: String) throws(GGUFError) -> String {
        let value = try value(key)
        guard let text = value.string else { throw .wrongMetadataType(path: path, key: key, expected: "a string", found: value.type) }
        return text
    }

    func optionalInt(_ key: String) throws(GGUFError) -> Int? {
        guard let value = file.metadata[key] else { return nil }
        guard let int = value.int else { throw .wrongMetadataType(path: path, key: key, expected: "an integer", found: value.type) }
        return int
    }

    /// A positive integer; `default` when the key is absent (required when nil).
    func positive(_ key: String, default fallback: Int? = nil) throws(GGUFError) -> Int {
        if file.metadata[key] == nil, let fallback { return fallback }
        let value = try value(key)
        guard let int = value.int else { throw .wrongMetadataType(path: path, key: key, expected: "an integer", found: value.type) }
        guard int > 0 else { throw .invalidHyperparameter(path: path, key: key, problem: "is \(int), must be positive") }
        // Products of two sizes (weight element counts) then cannot overflow.
        guard int <= 1 << 30 else { throw .invalidHyperparameter(path: path, key: key, problem: "is \(int), larger than 2^30") }
        return int
    }

    /// A finite, positive float (any numeric type); `default` when the key is absent (required when nil).
    func double(_ key: String, default fallback: Double? = nil) throws(GGUFError) -> Double {
        if file.metadata[key] == nil, let fallback { return fallback }
        let value = try value(key)
        guard let double = value.double else { throw .wrongMetadataType(path: path, key: key, expected: "a number", found: value.type) }
        guard double.isFinite, double > 0 else {
            throw .invalidHyperparameter(path: path, key: key, problem: "is \(double), must be finite and positive")
        }
        return double
    }
}
