import Foundation
@testable import Model
import XCTest

/// The config decoders of Qwen2, Qwen3, Mistral and Llama's rope scaling: transformers' defaults,
/// the keys each reads, and configs written back that read as the same model.
final class Part2ArchitectureTests: XCTestCase {
    private let sizes = #""hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100"#

    private func decode(_ json: String) throws -> ModelConfig {
        try ArchitectureRegistry.config(huggingFace: Data(json.utf8), path: "config.json")
    }

    /// What `huggingFaceConfigJSON` writes reads back as the same config.
    private func assertRoundTrip(_ config: ModelConfig, file: StaticString = #filePath, line: UInt = #line) throws {
        let json = try ArchitectureRegistry.architecture(of: config).huggingFaceConfigJSON(config)
        XCTAssertEqual(try ArchitectureRegistry.config(huggingFace: json, path: "config.json"), config,
                       String(decoding: json, as: UTF8.self), file: file, line: line)
    }

    func testQwen2() throws {
        let plain = try decode("{\"model_type\": \"qwen2\", \(sizes)}")
        XCTAssertEqual(plain.architecture, "qwen2")
        XCTAssertEqual(plain.headDim, 16)
        XCTAssertEqual(plain.block.biases, [.q, .k, .v])
        XCTAssertEqual(plain.maxPositionEmbeddings, 32768)
        XCTAssertFalse(plain.tieWordEmbeddings)
        XCTAssertTrue(plain.layers.allSatisfy { $0.slidingWindow == nil && $0.rope == RopeSpec(theta: 10_000) })
        try assertRoundTrip(plain)

        // Qwen's own keys: windows from max_window_layers on, only when use_sliding_window.
        let windowed = try decode("{\"model_type\": \"qwen2\", \(sizes), \"use_sliding_window\": true, \"sliding_window\": 8, \"max_window_layers\": 1, \"rope_theta\": 1000000.0, \"tie_word_embeddings\": true}")
        XCTAssertEqual(windowed.layers.map(\.slidingWindow), [nil, 8, 8])
        XCTAssertEqual(windowed.layers[0].rope.theta, 1_000_000)
        XCTAssertTrue(windowed.tieWordEmbeddings)
        try assertRoundTrip(windowed)
        let unused = try decode("{\"model_type\": \"qwen2\", \(sizes), \"use_sliding_window\": false, \"sliding_window\": 8}")
        XCTAssertTrue(unused.layers.allSatisfy { $0.slidingWindow == nil }, "Qwen2.5 ships sliding_window with use_sliding_window false")
    }

    func testQwen3() throws {
        let plain = try decode("{\"model_type\": \"qwen3\", \(sizes)}")
        XCTAssertEqual(plain.headDim, 128, "Qwen3Config's head_dim default, not hidden / heads")
        XCTAssertTrue(plain.block.queryKeyNorm)
        XCTAssertEqual(plain.block.biases, [])
        XCTAssertEqual(plain.block.attentionScale, 1 / 128.0.squareRoot(), accuracy: 1e-15)
        let biased = try decode("{\"model_type\": \"qwen3\", \(sizes), \"head_dim\": 32, \"attention_bias\": true}")
        XCTAssertEqual(biased.headDim, 32)
        XCTAssertEqual(biased.block.biases, [.q, .k, .v, .o])
        XCTAssertEqual(ModelTensors.expected(biased).filter { $0.name.hasPrefix("model.layers.0.") }.map(\.name), [
            "model.layers.0.input_layernorm.weight", "model.layers.0.post_attention_layernorm.weight",
            "model.layers.0.self_attn.q_norm.weight", "model.layers.0.self_attn.k_norm.weight",
            "model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.q_proj.bias",
            "model.layers.0.self_attn.k_proj.weight", "model.layers.0.self_attn.k_proj.bias",
            "model.layers.0.self_attn.v_proj.weight", "model.layers.0.self_attn.v_proj.bias",
            "model.layers.0.self_attn.o_proj.weight", "model.layers.0.self_attn.o_proj.bias",
            "model.layers.0.mlp.gate_proj.weight", "model.layers.0.mlp.up_proj.weight", "model.layers.0.mlp.down_proj.weight",
        ])
        try assertRoundTrip(plain)
        try assertRoundTrip(biased)
    }

    func testMistral() throws {
        let windowed = try decode("{\"model_type\": \"mistral\", \(sizes), \"sliding_window\": 4096}")
        XCTAssertEqual(windowed.layers.map(\.slidingWindow), [4096, 4096, 4096], "Mistral's window is every layer's")
        XCTAssertEqual(windowed.block, .llama(headDim: 16))
        try assertRoundTrip(windowed)
        let plain = try decode("{\"model_type\": \"mistral\", \(sizes), \"sliding_window\": null}")
        XCTAssertTrue(plain.layers.allSatisfy { $0.slidingWindow == nil })
        try assertRoundTrip(plain)
    }

    func testLlamaRopeScalingAndBiases() throws {
        let llama3 = try decode("""
            {"model_type": "llama", \(sizes), "rope_theta": 500000.0, "max_position_embeddings": 131072,
             "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                              "original_max_position_embeddings": 8192}}
            """)
        XCTAssertEqual(llama3.layers[0].rope, RopeSpec(theta: 500_000, scaling: .llama3(factor: 8, lowFrequencyFactor: 1,
                                                                                       highFrequencyFactor: 4, originalMaxPositions: 8192)))
        try assertRoundTrip(llama3)
        // transformers 4.x calls the type `type`.
        let linear = try decode("{\"model_type\": \"llama\", \(sizes), \"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}}")
        XCTAssertEqual(linear.layers[0].rope.scaling, .linear(factor: 2))
        try assertRoundTrip(linear)
        let dynamic = try decode("{\"model_type\": \"llama\", \(sizes), \"max_position_embeddings\": 512, \"rope_parameters\": {\"rope_type\": \"dynamic\", \"factor\": 2.0, \"rope_theta\": 10000.0}}")
        XCTAssertEqual(dynamic.layers[0].rope.scaling, .dynamic(factor: 2, maxPositions: 512))
        try assertRoundTrip(dynamic)
        let biased = try decode("{\"model_type\": \"llama\", \(sizes), \"attention_bias\": true, \"mlp_bias\": true}")
        XCTAssertEqual(biased.block.biases, [.q, .k, .v, .o, .gate, .up, .down])
        try assertRoundTrip(biased)
    }

    func testPhi3() throws {
        let config = try decode("{\"model_type\": \"phi3\", \(sizes), \"sliding_window\": 2047, \"original_max_position_embeddings\": 4096}")
        XCTAssertEqual(config.projections, [.qkv, .o, .gateUp, .down])
        XCTAssertEqual(config.layers.map(\.slidingWindow), [2047, 2047, 2047])
        XCTAssertEqual(ModelTensors.expected(config).filter { $0.name.hasPrefix("model.layers.0.") && $0.name.contains("proj") }.map { "\($0.name) \($0.shape)" }, [
            "model.layers.0.self_attn.qkv_proj.weight [128, 64]", "model.layers.0.self_attn.o_proj.weight [64, 64]",
            "model.layers.0.mlp.gate_up_proj.weight [256, 64]", "model.layers.0.mlp.down_proj.weight [64, 128]",
        ])
        XCTAssertEqual(config.projection(modulePath: "base_model.model.model.layers.2.self_attn.qkv_proj")?.projection, .qkv)
        XCTAssertNil(config.projection(modulePath: "model.layers.2.self_attn.q_proj"), "Phi-3 has no separate q_proj")
        try assertRoundTrip(config)
        for (extra, feature) in [(#""rope_scaling": {"type": "longrope", "factor": 32.0, "long_factor": [1.0], "short_factor": [1.0]}"#, "rope_scaling type 'longrope'"),
                                 (#""partial_rotary_factor": 0.75"#, "partial_rotary_factor 0.75"),
                                 (#""resid_pdrop": 0.1"#, "resid_pdrop 0.1 (training here uses no dropout)")] {
            XCTAssertThrowsError(try decode("{\"model_type\": \"phi3\", \(sizes), \(extra)}")) { error in
                XCTAssertTrue("\(error)".contains("phi3 with \(feature)"), "\(error)")
            }
        }
    }

    /// Dynamic NTK scaling changes nothing within max_position_embeddings, so the model stays within them.
    func testDynamicScalingBoundsThePositions() throws {
        var c = GradientCheck.tinyConfig
        c.layers = c.layers.map { _ in LayerAttention(rope: RopeSpec(theta: 10_000, scaling: .dynamic(factor: 2, maxPositions: 40))) }
        let model = DecoderModel(weights: try GradientCheck.tinyWeights(config: c))
        XCTAssertEqual(model.maxPositions, 40)
    }

    /// The three bands of Llama 3.1's scaling, against transformers' formula written out in Double.
    func testLlama3Frequencies() {
        let rope = RopeSpec(theta: 10_000, scaling: .llama3(factor: 8, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalMaxPositions: 64))
        let f = RotaryTable.inverseFrequencies(headDim: 8, rope: rope)
        let base = (0..<4).map { 1 / pow(10_000.0, Double(2 * $0) / 8) }   // wavelengths 6.3, 63, 628, 6283
        XCTAssertEqual(Double(f[0]), base[0], accuracy: 1e-7, "wavelength < 64/4: kept")
        let smooth = (64 / (2 * Double.pi / base[1]) - 1) / 3
        XCTAssertEqual(Double(f[1]), (1 - smooth) * base[1] / 8 + smooth * base[1], accuracy: 1e-7, "interpolated")
        XCTAssertEqual(Double(f[2]), base[2] / 8, accuracy: 1e-9, "wavelength > 64: divided by 8")
        XCTAssertEqual(Double(f[3]), base[3] / 8, accuracy: 1e-10)
    }
}
