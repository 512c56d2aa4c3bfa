import Formats
import Foundation
import LinearAlgebra
@testable import Model
import TestSupport
import XCTest

/// The forward pass against transformers on a tiny random Llama with SmolLM2's structure
/// (tied head, 3 query heads per KV head, θ = 100000): scripts/reference/make_model_fixtures.py.
final class ForwardTests: XCTestCase {
    private var fixture: URL { Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("tiny_llama") }

    private func model(lanes: Int = 2) throws -> DecoderModel {
        let source = try SafeTensorsWeightSource(directory: fixture)
        return DecoderModel(weights: try ModelWeights(source: source, sourceName: fixture.path), lanes: lanes)
    }

    func testLogitsMatchTransformers() throws {
        let reference = try SafeTensorsFile(url: fixture.appendingPathComponent("forward.safetensors"))
        let tokens = try reference.integers("tokens").map(Int32.init)
        let expected = try reference.matrix("logits")            // (2·7, 96)
        try forEachKernelLevel { level in
            for lanes in [1, 2] {
                let m = try model(lanes: lanes)
                let hidden = m.hiddenStates(tokens: tokens, lengths: Array(repeating: tokens.count / 2, count: 2))
                let logits = hidden.withUnsafeBufferPointer { m.logits(hidden: $0.baseAddress!, rows: 14) }
                assertRelativeClose(Matrix(rows: 14, cols: 96, storage: logits), expected, tolerance: 1e-5, "logits, \(lanes) lanes, \(level)")
                // Into a caller's buffer: every value overwritten, the same as the fresh array.
                var held = [Float](repeating: .nan, count: 14 * 96)
                hidden.withUnsafeBufferPointer { h in
                    held.withUnsafeMutableBufferPointer { m.logits(hidden: h.baseAddress!, rows: 14, into: $0.baseAddress!) }
                }
                XCTAssertEqual(held, logits, "logits into a buffer, \(lanes) lanes, \(level)")
            }
        }
    }

    func testCachedDecodingEqualsFullForward() throws {
        let m = try model()
        let reference = try SafeTensorsFile(url: fixture.appendingPathComponent("forward.safetensors"))
        let tokens = Array(try reference.integers("tokens").map(Int32.init).prefix(7))
        let full = m.hiddenStates(tokens: tokens)
        let cache = KVCache(config: m.config, capacity: 16)
        var stepped = m.hiddenStates(tokens: Array(tokens.prefix(4)), cache: cache)
        for t in tokens.dropFirst(4) { stepped += m.hiddenStates(tokens: [t], cache: cache) }
        XCTAssertEqual(cache.length, 7)
        assertRelativeClose(Matrix(rows: 7, cols: 48, storage: stepped), Matrix(rows: 7, cols: 48, storage: full), tolerance: 1e-5, "cache")
    }

    /// With sliding windows shorter than the sequence (the tiny Gemma 3: window 5), decoding one
    /// token at a time through the cache sees the same keys as the full pass.
    func testCachedDecodingWithSlidingWindowsEqualsFullForward() throws {
        let m = DecoderModel(weights: try GradientCheck.tinyWeights(config: GradientCheck.tinyGemmaConfig), lanes: 2)
        let tokens: [Int32] = [3, 7, 1, 19, 4, 4, 12, 0, 8, 15, 2, 9]
        let full = m.hiddenStates(tokens: tokens)
        let cache = KVCache(config: m.config, capacity: 16)
        var stepped = m.hiddenStates(tokens: Array(tokens.prefix(3)), cache: cache)
        for t in tokens.dropFirst(3) { stepped += m.hiddenStates(tokens: [t], cache: cache) }
        let C = m.config.hiddenSize
        assertRelativeClose(Matrix(rows: 12, cols: C, storage: stepped), Matrix(rows: 12, cols: C, storage: full), tolerance: 1e-5,
                            "cache with windows")
        // The window matters: without it, the last rows differ.
        var global = GradientCheck.tinyGemmaConfig
        global.layers = global.layers.map { LayerAttention(rope: $0.rope) }
        let unwindowed = DecoderModel(weights: try GradientCheck.tinyWeights(config: global), lanes: 2).hiddenStates(tokens: tokens)
        XCTAssertEqual(Array(unwindowed.prefix(5 * C)), Array(full.prefix(5 * C)), "the first 5 positions see every key either way")
        XCTAssertNotEqual(Array(unwindowed.suffix(C)), Array(full.suffix(C)))
    }

    /// Part 2's blocks through the cache (prefill of 3, then one token at a time, each token's
    /// experts routed alone): q/k/v/o biases with q/k norms and a window, fused qkv / gate_up with
    /// windows, a mixture of 4 experts.
    func testCachedDecodingEqualsFullForwardForEveryBlock() throws {
        for config in [GradientCheck.tinyQwenConfig, GradientCheck.tinyPhi3Config, GradientCheck.tinyMixtralConfig] {
            let m = DecoderModel(weights: try GradientCheck.tinyWeights(config: config), lanes: 2)
            let tokens: [Int32] = [3, 7, 1, 19, 4, 4, 12, 0, 8, 15, 2, 9]
            let full = m.hiddenStates(tokens: tokens)
            let cache = KVCache(config: m.config, capacity: 16)
            var stepped = m.hiddenStates(tokens: Array(tokens.prefix(3)), cache: cache)
            for t in tokens.dropFirst(3) { stepped += m.hiddenStates(tokens: [t], cache: cache) }
            let C = m.config.hiddenSize
            assertRelativeClose(Matrix(rows: 12, cols: C, storage: stepped), Matrix(rows: 12, cols: C, storage: full), tolerance: 1e-5,
                                "\(config.architecture) cache")
        }
    }
}
