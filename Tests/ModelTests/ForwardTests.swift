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

    private func model(lanes: Int = 2) throws -> LlamaModel {
        let source = try SafeTensorsWeightSource(directory: fixture)
        return LlamaModel(weights: try LlamaWeights(source: source, sourceName: fixture.path), lanes: lanes)
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
}
