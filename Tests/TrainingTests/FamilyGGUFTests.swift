import Formats
import Foundation
import LinearAlgebra
import Model
import TestSupport
import XCTest

/// Each tiny family model as gguf-py writes it the way llama.cpp's converter does
/// (scripts/reference/make_family_gguf.py: llama.cpp's tensor names, q/k rows permuted for the
/// Llama-converted families, Llama 3.1's rope scaling as `rope_freqs.weight`), read back here:
/// the family, the sizes and the rotary embedding are the Hugging Face config's, every tensor
/// equals the safetensors one bit for bit, and the logits are transformers' (1e-5).
final class FamilyGGUFTests: XCTestCase {
    private static var families: URL {
        Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("families")
    }

    private func check(_ family: String, windowsInGGUF: Bool = true) throws {
        let directory = Self.families.appendingPathComponent(family)
        let hf = try SafeTensorsWeightSource(directory: directory)
        let gguf = try GGUFWeightSource(url: directory.appendingPathComponent("model.gguf"))
        let (h, g) = (hf.config, gguf.config)
        XCTAssertEqual(g.architecture, h.architecture, family)
        XCTAssertEqual([g.hiddenSize, g.intermediateSize, g.numHiddenLayers, g.numAttentionHeads, g.numKeyValueHeads, g.headDim, g.vocabSize],
                       [h.hiddenSize, h.intermediateSize, h.numHiddenLayers, h.numAttentionHeads, h.numKeyValueHeads, h.headDim, h.vocabSize], family)
        XCTAssertEqual(g.block, h.block, family)
        XCTAssertEqual(g.tieWordEmbeddings, h.tieWordEmbeddings, family)
        for (name, _) in ModelTensors.expected(h) where hf.has(name) {
            XCTAssertEqual(try gguf.tensor(name).floats, try hf.tensor(name).floats, "\(family) \(name)")
        }
        guard windowsInGGUF else {
            // llama.cpp's architecture has no windows: the GGUF model attends to every position.
            XCTAssertTrue(g.layers.allSatisfy { $0.slidingWindow == nil }, family)
            return
        }
        let model = DecoderModel(weights: try ModelWeights(source: gguf, sourceName: family), lanes: 2)
        let reference = try SafeTensorsFile(url: directory.appendingPathComponent("reference.safetensors"))
        let tokens = try reference.integers("tokens").map(Int32.init), labels = try reference.integers("labels")
        let T = try XCTUnwrap(reference.info("tokens")).shape[1]
        let hidden = model.hiddenStates(tokens: tokens, lengths: [T, T])
        let logits = hidden.withUnsafeBufferPointer { model.logits(hidden: $0.baseAddress!, rows: tokens.count) }
        let expected = try reference.floats(try XCTUnwrap(reference.info("logits")))
        let V = g.vocabSize, lastLabel = (0..<T).last { labels[T + $0] != -100 } ?? (T - 1)
        var worst: Float = 0, largest: Float = 0
        for r in Array(0..<T) + Array(T..<(T + lastLabel + 1)) {   // rows without padding in their context
            for j in 0..<V {
                worst = max(worst, abs(logits[r * V + j] - expected[r * V + j]))
                largest = max(largest, abs(expected[r * V + j]))
            }
        }
        print(String(format: "family check  %@ GGUF logits: max |Δ| %.2e of max |logit| %.2f (tolerance 1e-5 relative)", family, worst, largest))
        XCTAssertLessThanOrEqual(worst, 1e-5 * largest, "\(family) GGUF logits")
    }

    /// Llama 3.1's rope scaling comes back from `rope_freqs.weight` as per-frequency divisors.
    func testLlama3() throws {
        try check("llama3")
        let config = try GGUFModel(url: Self.families.appendingPathComponent("llama3/model.gguf")).config
        guard case let .divisors(d)? = config.layers[0].rope.scaling else { return XCTFail("rope_freqs.weight not read") }
        XCTAssertEqual(d.count, 4)
        XCTAssertEqual(d.first, 1)
        XCTAssertEqual(d.last, 8)
    }

    func testLlamaLinearAndDynamic() throws {
        try check("llama_linear")
        try check("llama_dynamic")
    }

    func testQwen2() throws { try check("qwen2", windowsInGGUF: false) }

    func testQwen3() throws { try check("qwen3") }

    /// `attn_qkv` and the 2F-row `ffn_up`, the window from `phi3.attention.sliding_window`.
    func testPhi3() throws { try check("phi3") }

    /// `llama` with `llama.expert_count`: Mixtral, its router `ffn_gate_inp`, each expert's matrix
    /// a slice of the layer's `ffn_{gate,down,up}_exps` stack.
    func testMixtral() throws {
        try check("mixtral")
        let gguf = try GGUFModel(url: Self.families.appendingPathComponent("mixtral/model.gguf"))
        XCTAssertEqual(gguf.huggingFaceShape(named: "model.layers.2.block_sparse_moe.experts.3.w2.weight"), [16, 24])
        XCTAssertTrue(gguf.huggingFaceTensorNames.contains("model.layers.0.block_sparse_moe.experts.1.w3.weight"))
        XCTAssertEqual(gguf.unmappedTensors, [])
    }
}
