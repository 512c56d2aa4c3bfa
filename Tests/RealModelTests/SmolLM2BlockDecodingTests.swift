import Formats
import Foundation
import LinearAlgebra
import Model
import TestSupport
import Tokenizer
import XCTest

/// SmolLM2-135M decoding straight from its GGUF blocks (Q4_1 projections, Q8_0 embedding and tied
/// head: `LanguageModel.load(keepBlocks: true)`, as `pissa generate` and `pissa eval --task math`
/// load it) against the same model dequantised to float32 when loaded, at every kernel level.
final class SmolLM2BlockDecodingTests: XCTestCase {
    nonisolated(unsafe) private static var models: (dense: LanguageModel, blocks: LanguageModel)?

    private func models() throws -> (dense: LanguageModel, blocks: LanguageModel) {
        if let m = Self.models { return m }
        let path = try Assets.require(Assets.smolLM2GGUF).path
        let m = (try LanguageModel.load(path: path), try LanguageModel.load(path: path, keepBlocks: true))
        Self.models = m
        return m
    }

    private static let prompts = [
        "The capital of France is",
        "<|im_start|>user\nTom has 3 boxes of 12 pencils and gives away 7 pencils. How many pencils does he have left?<|im_end|>\n<|im_start|>assistant\n",
        "To be, or not to be, that is the question:",
        "def fibonacci(n):",
    ]

    /// Every projection, the embedding and the head stay in their blocks: resident weights are the
    /// GGUF's tensor bytes (98.4 MB file) plus the float32 norms, against 538 MB dequantised.
    func testBlocksStayAtTheFilesSize() throws {
        let (dense, blocks) = try models()
        let w = blocks.model.weights
        XCTAssertTrue(w.layers.allSatisfy { l in w.config.projections.allSatisfy { (l[$0] as? GGMLBlockMatrix)?.type == .q4_1 } })
        XCTAssertEqual(w.blockEmbedding?.type, .q8_0)
        XCTAssertEqual(w.embedding.count, 0)
        let resident = w.projectionBytes + (w.blockEmbedding?.byteCount ?? 0)
        let file = try FileManager.default.attributesOfItem(atPath: blocks.path)[.size] as! Int
        print("resident weights from blocks: \(resident) bytes (GGUF \(file) bytes); float32: \(dense.model.weights.projectionBytes + dense.model.weights.embedding.count * 4)")
        XCTAssertLessThan(resident, file)
        XCTAssertGreaterThan(resident, file * 95 / 100)
    }

    /// Last-position logits of each prompt: the block products compute the dequantised values in
    /// another summation order, so they differ from float32's by float rounding (≤ 1e-4 of the
    /// largest logit; observed ≈ 1e-6), far below the Q4_1 rounding of the weights themselves.
    func testLogitsEqualDequantizedFloat32() throws {
        let (dense, blocks) = try models()
        let C = dense.model.config.hiddenSize
        for prompt in Self.prompts {
            let ids = dense.tokenizer.encode(prompt).map(Int32.init)
            func lastLogits(_ m: DecoderModel) -> [Float] {
                let h = m.hiddenStates(tokens: ids)
                return h.withUnsafeBufferPointer { m.logits(hidden: $0.baseAddress! + (ids.count - 1) * C, rows: 1) }
            }
            let expected = lastLogits(dense.model)
            try forEachKernelLevel { level in
                let observed = lastLogits(blocks.model)
                let maxAbs = zip(observed, expected).map { abs($0 - $1) }.max()!, scale = expected.map(abs).max()!
                print("\(level) \(prompt.prefix(24).debugDescription): max |Δlogit| \(maxAbs) of max |logit| \(scale)")
                XCTAssertLessThanOrEqual(maxAbs / scale, 1e-4, "\(level) \(prompt.prefix(24))")
                XCTAssertEqual(observed.indices.max { observed[$0] < observed[$1] }, expected.indices.max { expected[$0] < expected[$1] })
            }
        }
    }

    /// Greedy generation (prefill through dequantised tiles, then one token at a time through the
    /// block kernels) gives the float32 model's tokens on every prompt, at every kernel level.
    func testGreedyTokensEqualDequantizedFloat32() throws {
        let (dense, blocks) = try models()
        for prompt in Self.prompts {
            let ids = dense.tokenizer.encode(prompt)
            let (expected, _) = try Generation.run(model: dense.model, prompt: ids, maxTokens: 40, sampling: .greedy, stopTokens: [])
            forEachKernelLevel { level in
                let tokens = try? Generation.run(model: blocks.model, prompt: ids, maxTokens: 40, sampling: .greedy, stopTokens: []).tokens
                XCTAssertEqual(tokens, expected, "\(level) \(prompt.prefix(24))")
            }
        }
        let paris = try Generation.run(model: blocks.model, prompt: blocks.tokenizer.encode("The capital of France is"), maxTokens: 4,
                                   sampling: .greedy, stopTokens: []).tokens
        XCTAssertTrue(blocks.tokenizer.decode(paris).hasPrefix(" Paris"))
    }
}
