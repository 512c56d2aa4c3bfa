import Formats

/// The hyperparameters llama.cpp's converter writes under `<prefix>.` for the Llama-like
/// families (llama, qwen2, qwen3, phi3), with llama.cpp's defaults where a key is optional:
/// `head_count_kv` = `head_count`, `rope.freq_base` 10000, head dimension `attention.key_length`,
/// else `rope.dimension_count`, else `embedding_length / head_count`. The vocabulary is the row
/// count of `token_embd.weight`, else the length of `tokenizer.ggml.tokens`; the head is tied
/// when the file has no `output.weight`.
struct GGUFHyperparameters {
    let file: GGUFFile
    let prefix: String
    let layers, hidden, intermediate, heads, kvHeads, headDim, positions, vocabulary: Int
    let eps, ropeTheta: Double

    init(_ file: GGUFFile, prefix: String) throws {
        self.file = file
        self.prefix = prefix
        let m = GGUFMetadataReader(file: file)
        layers = try m.positive("\(prefix).block_count")
        guard layers <= 4096 else {
            throw GGUFError.invalidHyperparameter(path: file.url.path, key: "\(prefix).block_count", problem: "is \(layers), more than 4096 layers")
        }
        hidden = try m.positive("\(prefix).embedding_length")
        intermediate = try m.positive("\(prefix).feed_forward_length")
        heads = try m.positive("\(prefix).attention.head_count")
        kvHeads = try m.positive("\(prefix).attention.head_count_kv", default: heads)
        let ropeDims = try m.positive("\(prefix).rope.dimension_count", default: hidden / heads)
        headDim = try m.positive("\(prefix).attention.key_length", default: ropeDims)
        positions = try m.positive("\(prefix).context_length")
        vocabulary = try ggufVocabularySize(file)
        eps = try m.double("\(prefix).attention.layer_norm_rms_epsilon")
        ropeTheta = try m.double("\(prefix).rope.freq_base", default: 10_000)
    }

    /// `<prefix>.rope.scaling.type`: none (nil) or linear (by `rope.scaling.factor`); other types
    /// are refused by name.
    func ropeScaling(family: String) throws -> RopeScaling? {
        let m = GGUFMetadataReader(file: file), key = "\(prefix).rope.scaling.type"
        guard m.has(key) else { return nil }
        let type = try m.string(key)
        switch type {
        case "none": return nil
        case "linear": return .linear(factor: try m.double("\(prefix).rope.scaling.factor"))
        default:
            throw ModelError.unsupportedModel(source: file.url.path, problem: "\(family) with \(key) '\(type)' is not supported yet "
                + "(supported: none, linear; \(ArchitectureRegistry.supportedList))")
        }
    }

    /// `<prefix>.attention.sliding_window`, when the file has it.
    func slidingWindow() throws -> Int? {
        let key = "\(prefix).attention.sliding_window"
        return GGUFMetadataReader(file: file).has(key) ? try GGUFMetadataReader(file: file).positive(key) : nil
    }

    /// A config of these sizes with the family's block and layers.
    func modelConfig(architecture: String, modelType: String, block: BlockSpec, layers attention: [LayerAttention]) -> ModelConfig {
        let m = GGUFMetadataReader(file: file)
        return ModelConfig(
            architecture: architecture, modelType: modelType, hiddenSize: hidden, intermediateSize: intermediate,
            numHiddenLayers: layers, numAttentionHeads: heads, numKeyValueHeads: kvHeads, headDim: headDim, vocabSize: vocabulary,
            maxPositionEmbeddings: positions, rmsNormEps: eps, tieWordEmbeddings: file.info("output.weight") == nil,
            bosTokenId: try? m.optionalInt("tokenizer.ggml.bos_token_id"), eosTokenId: try? m.optionalInt("tokenizer.ggml.eos_token_id"),
            padTokenId: try? m.optionalInt("tokenizer.ggml.padding_token_id"), torchDtype: "float32", block: block, layers: attention)
    }
}
