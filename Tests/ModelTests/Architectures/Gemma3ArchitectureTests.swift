import Formats
import Foundation
@testable import Model
import TestSupport
import XCTest

/// Gemma 3's config in both transformers layouts and from GGUF metadata, its names, and the real
/// Gemma 3 270M GGUF read through Hugging Face names (transformers' GGUF loader's values).
final class Gemma3ArchitectureTests: XCTestCase {
    private func decode(_ json: String) throws -> ModelConfig {
        try ArchitectureRegistry.config(huggingFace: Data(json.utf8), path: "config.json")
    }

    /// transformers 5.x (rope_parameters by layer type, layer_types) and 4.x (rope_theta,
    /// rope_local_base_freq, sliding_window_pattern) give the same model; it encodes back.
    func testHFConfigLayouts() throws {
        let v5 = try decode(#"""
            {"architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "hidden_size": 640,
             "intermediate_size": 2048, "num_hidden_layers": 7, "num_attention_heads": 4, "num_key_value_heads": 1,
             "head_dim": 256, "vocab_size": 262144, "query_pre_attn_scalar": 256, "sliding_window": 512,
             "layer_types": ["sliding_attention", "sliding_attention", "sliding_attention", "sliding_attention",
                             "sliding_attention", "full_attention", "sliding_attention"],
             "rope_parameters": {"full_attention": {"rope_theta": 1000000.0, "rope_type": "default"},
                                 "sliding_attention": {"rope_theta": 10000.0, "rope_type": "default"}},
             "final_logit_softcapping": null, "attn_logit_softcapping": null, "rms_norm_eps": 1e-06,
             "max_position_embeddings": 32768, "eos_token_id": [1, 106], "dtype": "bfloat16"}
            """#)
        let v4 = try decode(#"""
            {"model_type": "gemma3_text", "hidden_size": 640, "intermediate_size": 2048, "num_hidden_layers": 7,
             "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 256, "vocab_size": 262144,
             "query_pre_attn_scalar": 256, "sliding_window": 512, "sliding_window_pattern": 6,
             "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0, "rope_scaling": null,
             "max_position_embeddings": 32768, "torch_dtype": "bfloat16"}
            """#)
        XCTAssertEqual(v5, v4)
        XCTAssertEqual(v5.architecture, "gemma3")
        XCTAssertEqual(v5.layers.map { $0.slidingWindow == nil }, [false, false, false, false, false, true, false])
        XCTAssertEqual(v5.layers.map(\.rope.theta), [1e4, 1e4, 1e4, 1e4, 1e4, 1e6, 1e4])
        XCTAssertEqual(v5.block.attentionScale, 1.0 / 16)
        XCTAssertEqual(v5.block.embeddingScale, Float(640.0.squareRoot()))
        XCTAssertEqual(v5.block.normWeightOffset, 1)
        XCTAssertTrue(v5.block.sandwichNorms && v5.block.queryKeyNorm)
        XCTAssertEqual(v5.block.activation, .geluTanh)
        XCTAssertEqual(v5.eosTokenId, 1)
        XCTAssertTrue(v5.tieWordEmbeddings)

        let json = try Gemma3Architecture.huggingFaceConfigJSON(v5)
        XCTAssertEqual(try ArchitectureRegistry.config(huggingFace: json, path: "re-encoded"), v5)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: json) as? [String: Any])
        XCTAssertEqual(object["architectures"] as? [String], ["Gemma3ForCausalLM"])
        XCTAssertEqual(object["rope_local_base_freq"] as? Double, 10_000)
        XCTAssertEqual(object["hidden_activation"] as? String, "gelu_pytorch_tanh")
    }

    func testNames() {
        let names = Gemma3Architecture.tensorNames
        for (gguf, hf) in [("blk.3.attn_q_norm.weight", "model.layers.3.self_attn.q_norm.weight"),
                           ("blk.3.post_attention_norm.weight", "model.layers.3.post_attention_layernorm.weight"),
                           ("blk.3.ffn_norm.weight", "model.layers.3.pre_feedforward_layernorm.weight"),
                           ("blk.3.post_ffw_norm.weight", "model.layers.3.post_feedforward_layernorm.weight"),
                           ("output_norm.weight", "model.norm.weight")] {
            XCTAssertEqual(names.huggingFaceName(forGGUF: gguf), hf)
            XCTAssertEqual(names.ggufName(forHuggingFace: hf), gguf)
        }
        XCTAssertEqual(Gemma3Architecture.ggufValueOffset(huggingFace: "model.layers.0.self_attn.k_norm.weight"), 1)
        XCTAssertEqual(Gemma3Architecture.ggufValueOffset(huggingFace: "model.layers.0.self_attn.k_proj.weight"), 0)
        XCTAssertNil(Gemma3Architecture.ggufPermutedHeads(huggingFace: "model.layers.0.self_attn.q_proj.weight",
                                                           config: GradientCheck.tinyGemmaConfig))
    }

    // MARK: The real Gemma 3 270M GGUF

    /// The config llama.cpp's metadata implies equals transformers' reading of the same file
    /// (AutoConfig.from_pretrained(gguf_file=…)), and every tensor comes out as transformers'
    /// GGUF loader gives it (norms with the converter's +1 removed).
    func testGemma3270M() throws {
        let url = try Assets.require(Assets.gemma3GGUF)
        let model = try GGUFModel(url: url)
        XCTAssertTrue(model.architecture == Gemma3Architecture.self)
        let c = model.config
        XCTAssertEqual([c.hiddenSize, c.intermediateSize, c.numHiddenLayers, c.numAttentionHeads, c.numKeyValueHeads, c.headDim,
                        c.vocabSize, c.maxPositionEmbeddings], [640, 2048, 18, 4, 1, 256, 262_144, 32768])
        XCTAssertEqual(c.layers.indices.filter { c.layers[$0].slidingWindow == nil }, [5, 11, 17])
        XCTAssertEqual(Set(c.layers.compactMap(\.slidingWindow)), [512])
        XCTAssertEqual(c.block.attentionScale, 1.0 / 16)
        XCTAssertEqual(c.rmsNormEps, Double(Float(1e-6)))
        XCTAssertTrue(c.tieWordEmbeddings)
        XCTAssertEqual([c.bosTokenId, c.eosTokenId, c.padTokenId], [2, 1, 0])
        XCTAssertEqual(model.unmappedTensors, [])
        XCTAssertEqual(model.huggingFaceTensorNames.count, 236)

        let norm = try model.huggingFaceTensor(named: "model.layers.0.self_attn.q_norm.weight")
        let raw = try model.file.floats(named: "blk.0.attn_q_norm.weight")
        XCTAssertEqual(norm.shape, [256])
        XCTAssertEqual(norm.floats, raw.map { $0 - 1 })
        let q = try model.huggingFaceTensor(named: "model.layers.0.self_attn.q_proj.weight")
        XCTAssertEqual(q.shape, [1024, 640])
        XCTAssertEqual(q.floats, try model.file.floats(named: "blk.0.attn_q.weight"), "Gemma's q rows are not permuted")
    }
}
