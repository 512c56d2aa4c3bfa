/// Checks every family's decoded config shares, so that no weight size computed from a config
/// overflows and no kernel sees a size it cannot handle.
extension ModelConfig {
    /// Every dimension in 1…2^24 (layers up to 4096, positions up to 2^30), heads divisible by KV
    /// heads, an even head dimension (rotary pairs), finite positive ε and rotary bases, a positive
    /// window. `keys` names each field as the file does (`hidden_size` or `gemma3.embedding_length`).
    func checked(path: String, keys: SizeKeys) throws -> ModelConfig {
        let limit = 1 << 24
        for (key, value, maximum) in [(keys.hidden, hiddenSize, limit), (keys.intermediate, intermediateSize, limit),
                                      (keys.layers, numHiddenLayers, 4096), (keys.heads, numAttentionHeads, limit),
                                      (keys.kvHeads, numKeyValueHeads, limit), (keys.headDim, headDim, limit),
                                      (keys.vocab, vocabSize, limit), (keys.positions, maxPositionEmbeddings, 1 << 30)]
        where !(1...maximum).contains(value) {
            throw ModelError.invalidConfig(path: path, problem: "\(key) is \(value), not in 1...\(maximum)")
        }
        guard numAttentionHeads % numKeyValueHeads == 0 else {
            throw ModelError.invalidConfig(
                path: path, problem: "\(keys.kvHeads) \(numKeyValueHeads) does not divide \(keys.heads) \(numAttentionHeads)")
        }
        guard headDim % 2 == 0 else {
            throw ModelError.invalidConfig(path: path, problem: "\(keys.headDim) \(headDim) is odd (rotary embeddings rotate pairs)")
        }
        guard rmsNormEps.isFinite, rmsNormEps > 0 else {
            throw ModelError.invalidConfig(path: path, problem: "\(keys.eps) is \(rmsNormEps), not a positive number")
        }
        guard layers.count == numHiddenLayers else {
            throw ModelError.invalidConfig(path: path, problem: "\(layers.count) layer types for \(numHiddenLayers) layers")
        }
        for layer in layers {
            guard layer.rope.theta.isFinite, layer.rope.theta > 0 else {
                throw ModelError.invalidConfig(path: path, problem: "\(keys.theta) is \(layer.rope.theta), not a positive number")
            }
            if let w = layer.slidingWindow, !(1...(1 << 30)).contains(w) {
                throw ModelError.invalidConfig(path: path, problem: "sliding_window is \(w), not in 1...\(1 << 30)")
            }
        }
        guard block.attentionScale.isFinite, block.attentionScale > 0 else {
            throw ModelError.invalidConfig(path: path, problem: "the attention scale \(block.attentionScale) is not a positive number")
        }
        return self
    }

    /// How a file names the sizes `checked` reports.
    struct SizeKeys {
        var hidden = "hidden_size", intermediate = "intermediate_size", layers = "num_hidden_layers"
        var heads = "num_attention_heads", kvHeads = "num_key_value_heads", headDim = "head_dim"
        var vocab = "vocab_size", positions = "max_position_embeddings", eps = "rms_norm_eps", theta = "rope_theta"

        static let huggingFace = SizeKeys()

        /// llama.cpp's keys under `prefix` ("llama", "gemma3").
        static func gguf(_ prefix: String) -> SizeKeys {
            SizeKeys(hidden: "\(prefix).embedding_length", intermediate: "\(prefix).feed_forward_length",
                     layers: "\(prefix).block_count", heads: "\(prefix).attention.head_count",
                     kvHeads: "\(prefix).attention.head_count_kv", headDim: "\(prefix).attention.key_length",
                     vocab: "tokenizer.ggml.tokens", positions: "\(prefix).context_length",
                     eps: "\(prefix).attention.layer_norm_rms_epsilon", theta: "\(prefix).rope.freq_base")
        }
    }
}
