import Formats
import Foundation
@testable import Model
import TestSupport
import XCTest

/// Llama's GGUF ↔ Hugging Face mapping (names, hyperparameters, config, q/k permutation), its
/// refusals, and the real SmolLM2 GGUF.
final class LlamaArchitectureTests: XCTestCase {
    private let names = LlamaArchitecture.tensorNames

    /// SmolLM2's config as the architecture makes it.
    private static let smolLM2 = ModelConfig(
        architecture: "llama", modelType: "llama", hiddenSize: 576, intermediateSize: 1536, numHiddenLayers: 30,
        numAttentionHeads: 9, numKeyValueHeads: 3, headDim: 64, vocabSize: 49152, maxPositionEmbeddings: 8192,
        rmsNormEps: Double(Float(1e-5)), tieWordEmbeddings: true, bosTokenId: 1, eosTokenId: 2, padTokenId: 2,
        block: .llama(headDim: 64), layers: Array(repeating: LayerAttention(rope: RopeSpec(theta: 100_000)), count: 30))

    private func decode(_ json: String) throws -> ModelConfig {
        try ArchitectureRegistry.config(huggingFace: Data(json.utf8), path: "config.json")
    }
    // MARK: Names

    func testNameTable() {
        let pairs = [
            ("token_embd.weight", "model.embed_tokens.weight"),
            ("output_norm.weight", "model.norm.weight"),
            ("output.weight", "lm_head.weight"),
            ("blk.0.attn_q.weight", "model.layers.0.self_attn.q_proj.weight"),
            ("blk.1.attn_k.weight", "model.layers.1.self_attn.k_proj.weight"),
            ("blk.2.attn_v.weight", "model.layers.2.self_attn.v_proj.weight"),
            ("blk.3.attn_output.weight", "model.layers.3.self_attn.o_proj.weight"),
            ("blk.4.ffn_gate.weight", "model.layers.4.mlp.gate_proj.weight"),
            ("blk.5.ffn_up.weight", "model.layers.5.mlp.up_proj.weight"),
            ("blk.29.ffn_down.weight", "model.layers.29.mlp.down_proj.weight"),
            ("blk.10.attn_norm.weight", "model.layers.10.input_layernorm.weight"),
            ("blk.11.ffn_norm.weight", "model.layers.11.post_attention_layernorm.weight"),
            ("blk.0.attn_q.bias", "model.layers.0.self_attn.q_proj.bias"),
        ]
        for (gguf, hf) in pairs {
            XCTAssertEqual(names.huggingFaceName(forGGUF: gguf), hf)
            XCTAssertEqual(names.ggufName(forHuggingFace: hf), gguf)
        }
        for bad in ["blk.03.attn_q.weight", "blk.+3.attn_q.weight", "blk.-1.attn_q.weight", "blk.x.attn_q.weight",
                    "blk.0.attn_q", "blk.0.rope.weight", "rope_freqs.weight", "token_embd.scale", "blk..attn_q.weight"] {
            XCTAssertNil(names.huggingFaceName(forGGUF: bad), bad)
        }
        XCTAssertNil(names.ggufName(forHuggingFace: "model.layers.0.self_attn.rotary_emb.inv_freq"))
        XCTAssertNil(names.ggufName(forHuggingFace: "model.layers.01.mlp.up_proj.weight"))
    }

    // MARK: The q/k permutation

    /// 12 rows, 3 heads (2 row pairs each): within each head GGUF row 2i + t is HF row 2t + i,
    /// as `w.reshape(3, 2, 2, cols).swapaxes(1, 2)` gives (the script checks this formula against
    /// transformers on the real model).
    func testUnpermuteRows() {
        let rows = 12, cols = 2
        let gguf = (0..<rows).flatMap { [Float($0), Float($0) + 0.5] }
        var hf = gguf
        GGUFRowPermutation.unpermuteRows(&hf, rows: rows, cols: cols, heads: 3)
        let order = [0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11]
        XCTAssertEqual(hf, order.flatMap { [Float($0), Float($0) + 0.5] })
        var back = hf
        GGUFRowPermutation.permuteRows(&back, rows: rows, cols: cols, heads: 3)
        XCTAssertEqual(back, gguf)

        // A larger head (4 pairs): HF row t·4 + i ← GGUF row 2i + t.
        var one = (0..<8).map(Float.init)
        GGUFRowPermutation.unpermuteRows(&one, rows: 8, cols: 1, heads: 1)
        XCTAssertEqual(one, [0, 2, 4, 6, 1, 3, 5, 7])
    }

    // MARK: Hyperparameters and config

    func testHyperparameterErrors() throws {
        let v3 = try ggufFixture("reference_v3.gguf")
        XCTAssertThrowsError(try GGUFModel(url: v3)) { error in
            XCTAssertEqual(error as? GGUFError, .missingMetadata(path: v3.path, key: "llama.block_count"))
        }
        let v2 = try ggufFixture("reference_v2.gguf")
        XCTAssertThrowsError(try GGUFModel(url: v2)) { error in
            XCTAssertEqual("\(error)", "\(v2.path): general.architecture 'test' is not supported; supported: "
                + ArchitectureRegistry.supportedList)
        }
    }

    /// Encodes with transformers' key names; decodes what transformers 5.x and 4.x write.
    func testHFConfigCoding() throws {
        let config = Self.smolLM2
        let data = try LlamaArchitecture.huggingFaceConfigJSON(config)
        let json = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        XCTAssertEqual(json?["architectures"] as? [String], ["LlamaForCausalLM"])
        XCTAssertEqual(json?["model_type"] as? String, "llama")
        XCTAssertEqual(json?["hidden_act"] as? String, "silu")
        XCTAssertEqual(json?["num_key_value_heads"] as? Int, 3)
        XCTAssertEqual(json?["rope_theta"] as? Double, 100_000)
        XCTAssertEqual((json?["rope_parameters"] as? [String: Any])?["rope_type"] as? String, "default")
        XCTAssertEqual(json?["rms_norm_eps"] as? Double, 9.999999747378752e-06)
        XCTAssertEqual(json?["tie_word_embeddings"] as? Bool, true)
        XCTAssertEqual(json?["torch_dtype"] as? String, "float32")
        XCTAssertEqual(try ArchitectureRegistry.config(huggingFace: data, path: "config.json"), config)

        // transformers 5.24 (rope_parameters, dtype), as in the SmolLM2 conversion.
        let v5 = #"""
        {"architectures": ["LlamaForCausalLM"], "bos_token_id": 1, "dtype": "float32", "eos_token_id": 2,
         "head_dim": 64, "hidden_act": "silu", "hidden_size": 576, "intermediate_size": 1536,
         "max_position_embeddings": 8192, "model_type": "llama", "num_attention_heads": 9, "num_hidden_layers": 30,
         "num_key_value_heads": 3, "pad_token_id": 2, "rms_norm_eps": 9.999999747378752e-06,
         "rope_parameters": {"rope_theta": 100000.0, "rope_type": "default"}, "tie_word_embeddings": true,
         "vocab_size": 49152}
        """#
        XCTAssertEqual(try decode(v5), config)

        // transformers 4.x, Llama 3 style: top-level rope_theta, an eos list, no head_dim / kv heads.
        let v4 = #"""
        {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
         "vocab_size": 100, "rope_theta": 500000.0, "eos_token_id": [7, 8], "torch_dtype": "bfloat16",
         "pad_token_id": null}
        """#
        let old = try decode(v4)
        XCTAssertEqual(old.headDim, 16)
        XCTAssertEqual(old.numKeyValueHeads, 4)
        XCTAssertEqual(old.layers.map(\.rope.theta), [500_000, 500_000])
        XCTAssertEqual(old.eosTokenId, 7)
        XCTAssertNil(old.padTokenId)
        XCTAssertEqual(old.torchDtype, "bfloat16")
        XCTAssertEqual(old.rmsNormEps, 1e-6)
        XCTAssertFalse(old.tieWordEmbeddings)
        XCTAssertThrowsError(try decode(#"{"model_type": "llama", "hidden_size": 64}"#)) { error in
            XCTAssertEqual("\(error)", "config.json: 'intermediate_size' is missing")
        }
    }

    // MARK: The real SmolLM2-135M-Instruct GGUF

    func testSmolLM2Structure() throws {
        let url = try Assets.require(Assets.smolLM2GGUF)
        let model = try GGUFModel(url: url)
        let file = model.file
        XCTAssertEqual(file.version, 3)
        XCTAssertEqual(file.architecture, "llama")
        XCTAssertEqual(file.tensors.count, 272)
        XCTAssertEqual(file.tensors.filter { $0.type == .q4_1 }.count, 210)
        XCTAssertEqual(file.tensors.filter { $0.type == .f32 }.count, 61)
        XCTAssertEqual(file.info("token_embd.weight")?.type, .q8_0)
        XCTAssertEqual(file.info("token_embd.weight")?.shape, [49152, 576])
        XCTAssertEqual(file.info("blk.0.ffn_down.weight")?.dimensions, [1536, 576])
        XCTAssertEqual(file.info("blk.0.ffn_down.weight")?.shape, [576, 1536])
        XCTAssertEqual(file.info("blk.0.attn_k.weight")?.shape, [192, 576])
        XCTAssertEqual(file.metadata["tokenizer.ggml.tokens"]?.stringArray?.count, 49152)
        XCTAssertEqual(file.metadata["tokenizer.ggml.merges"]?.stringArray?.count, 48900)
        XCTAssertEqual(file.metadata["tokenizer.ggml.tokens"]?.stringArray?[1], "<|im_start|>")

        XCTAssertEqual(model.config, Self.smolLM2)
        XCTAssertTrue(model.architecture == LlamaArchitecture.self)

        let hfNames = model.huggingFaceTensorNames
        XCTAssertEqual(hfNames.count, 272)
        XCTAssertFalse(hfNames.contains("lm_head.weight"))
        XCTAssertEqual(model.unmappedTensors, [])
        XCTAssertEqual(Set(hfNames.filter { $0.hasPrefix("model.layers.0.") }).count, 9)
        XCTAssertEqual(expectGGUFError { try model.huggingFaceTensor(named: "model.layers.0.self_attn.rotary_emb") },
                       .unknownHuggingFaceName(path: url.path, name: "model.layers.0.self_attn.rotary_emb"))
        XCTAssertEqual(expectGGUFError { try model.huggingFaceTensor(named: "model.layers.30.mlp.up_proj.weight") },
                       .unknownHuggingFaceName(path: url.path, name: "model.layers.30.mlp.up_proj.weight"))
    }

    /// Layer 0 dequantised (and q/k un-permuted) equals transformers' float32 conversion of the
    /// same GGUF bit for bit, and the config agrees with its config.json.
    func testSmolLM2MatchesTransformersConversion() throws {
        let url = try Assets.require(Assets.smolLM2GGUF)
        let hfDirectory = try optionalAsset("smollm2-135m-instruct-f32",
                                            hint: "python3 scripts/assets/gguf_to_hf.py <SmolLM2 GGUF> .cache/assets/smollm2-135m-instruct-f32")
        let model = try GGUFModel(url: url)
        let reference = try SafeTensorsFile(url: hfDirectory.appendingPathComponent("model.safetensors"))
        XCTAssertEqual(model.config, try SafeTensorsWeightSource.readConfig(directory: hfDirectory))

        let layer0 = model.huggingFaceTensorNames.filter { $0.hasPrefix("model.layers.0.") } + ["model.norm.weight"]
        for name in layer0 {
            let (shape, values) = try model.huggingFaceTensor(named: name)
            let info = try XCTUnwrap(reference.info(name), name)
            XCTAssertEqual(shape, info.shape, name)
            assertValuesEqual(values, try reference.floats(info), relative: 0, name)
        }
        // Without the un-permutation q would differ: the check is not vacuous.
        let raw = try model.file.floats(named: "blk.0.attn_q.weight")
        let hfQ = try reference.floats(XCTUnwrap(reference.info("model.layers.0.self_attn.q_proj.weight")))
        XCTAssertNotEqual(raw, hfQ)
    }

    /// Release builds only: the whole model dequantises in well under a second, to finite values,
    /// and the embedding (Q8_0) matches the conversion.
    func testSmolLM2WholeModelDequantisation() throws {
        #if DEBUG
        throw XCTSkip("timing test: run with `swift test -c release`")
        #else
        let file = try GGUFFile(url: try Assets.require(Assets.smolLM2GGUF))
        var best = Double.infinity
        var total = 0
        for _ in 0..<3 {
            let start = DispatchTime.now().uptimeNanoseconds
            total = 0
            for info in file.tensors {
                let values = try file.floats(info)
                total += values.count
                if best.isInfinite { XCTAssertTrue(values.allSatisfy(\.isFinite), info.name) }
            }
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        print("SmolLM2 GGUF: \(total) values dequantised in \(String(format: "%.3f", best)) s (best of 3)")
        XCTAssertEqual(total, 134_515_008)
        XCTAssertLessThan(best, 1.0)

        guard let hfDirectory = try? optionalAsset("smollm2-135m-instruct-f32", hint: "") else { return }
        let reference = try SafeTensorsFile(url: hfDirectory.appendingPathComponent("model.safetensors"))
        let embedding = try reference.floats(XCTUnwrap(reference.info("model.embed_tokens.weight")))
        assertValuesEqual(try file.floats(named: "token_embd.weight"), embedding, relative: 0, "embedding")
        #endif
    }
}
