import Foundation
import Formats

extension LlamaArchitecture {
    /// `LlamaForCausalLM`'s config. Defaults as transformers' `LlamaConfig`: `num_key_value_heads`
    /// = heads, `head_dim` = hidden / heads, `rms_norm_eps` 1e-6, `rope_theta` 10000,
    /// `max_position_embeddings` 2048, untied head. `attention_bias` gives q, k, v and o biases,
    /// `mlp_bias` gate, up and down biases; rope scaling: linear, dynamic and llama3.
    static func decode(_ data: Data, path: String) throws -> ModelConfig {
        let r = try DecoderHFConfig.reader(data, path: path, family: name)
        try r.checkShared()
        let c = r.config
        if let window = c.slidingWindow { throw r.refuse("sliding_window \(window) (use model_type mistral)") }
        if let experts = c.numLocalExperts { throw r.refuse("num_local_experts \(experts) (use model_type mixtral)") }
        var biases: Set<Projection> = []
        if c.attentionBias == true { biases.formUnion([.q, .k, .v, .o]) }
        if c.mlpBias == true { biases.formUnion([.gate, .up, .down]) }
        let headDim = r.headDimOrDefault
        var block = BlockSpec.llama(headDim: max(headDim, 1))
        block.biases = biases
        return try r.modelConfig(architecture: name, defaultModelType: "llama", headDim: headDim, block: block,
                                 rope: try r.rope(defaultTheta: 10_000), windows: try r.windows(windowsAllLayers: false),
                                 defaultMaxPositions: 2048, defaultEps: 1e-6)
    }

    /// The config transformers reads for `m`.
    static func encode(_ m: ModelConfig) throws -> Data {
        var c = try DecoderHFConfig(m, architecture: "LlamaForCausalLM", modelType: "llama")
        c.attentionBias = m.block.biases.contains(.q)
        c.mlpBias = m.block.biases.contains(.gate)
        return try encodeConfigJSON(c)
    }
}

extension LlamaArchitecture {
    /// The hyperparameters of a `llama` GGUF file (`llama.*` keys, as llama.cpp's converter
    /// writes them; `GGUFHyperparameters`). A `rope_freqs.weight` tensor (Llama 3.1's rope
    /// scaling as llama.cpp stores it) divides each rotary frequency; `llama.rope.scaling.type`
    /// linear divides all by `llama.rope.scaling.factor`. Attention and MLP biases are there when
    /// layer 0 has `attn_q.bias` / `ffn_gate.bias`.
    static func ggufConfig(_ file: GGUFFile) throws -> ModelConfig {
        let path = file.url.path
        let m = GGUFMetadataReader(file: file)
        if let experts = try m.optionalInt("llama.expert_count"), experts > 0 {
            throw refusal(path: path, feature: "llama.expert_count \(experts) (a mixture of experts)")
        }
        let h = try GGUFHyperparameters(file, prefix: "llama")
        var rope = RopeSpec(theta: h.ropeTheta, scaling: try h.ropeScaling(family: name))
        if let info = file.info("rope_freqs.weight") {
            guard rope.scaling == nil else { throw refusal(path: path, feature: "rope_freqs.weight with llama.rope.scaling.type") }
            let divisors = try file.floats(info)
            guard divisors.count == h.headDim / 2, divisors.allSatisfy({ $0.isFinite && $0 > 0 }) else {
                throw GGUFError.invalidHyperparameter(path: path, key: "rope_freqs.weight",
                                                      problem: "has \(divisors.count) values, not \(h.headDim / 2) positive ones")
            }
            rope.scaling = .divisors(divisors)
        }
        var block = BlockSpec.llama(headDim: h.headDim)   // biases where llama.cpp's loader finds them
        if file.info("blk.0.attn_q.bias") != nil { block.biases.formUnion([.q, .k, .v, .o]) }
        if file.info("blk.0.ffn_gate.bias") != nil { block.biases.formUnion([.gate, .up, .down]) }
        let config = h.modelConfig(architecture: name, modelType: "llama", block: block,
                                   layers: Array(repeating: LayerAttention(rope: rope), count: h.layers))
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
