import Formats
import Foundation
import LinearAlgebra
import Model
import TestSupport
import XCTest

/// Gemma 3 270M read from its Q4_K_M GGUF against transformers loading the same file
/// (scripts/reference/make_gemma3_reference.py): logits, NLL, perplexity of a passage longer than
/// the sliding window, greedy tokens through the KV cache. Token ids come from the fixture, so
/// these check the model alone.
final class Gemma3ForwardTests: XCTestCase {
    nonisolated(unsafe) private static var cached: DecoderModel?

    private func model() throws -> DecoderModel {
        if let m = Self.cached { return m }
        let (source, name) = try openWeightSource(try Assets.require(Assets.gemma3GGUF).path)
        let m = DecoderModel(weights: try ModelWeights(source: source, sourceName: name), lanes: 2)
        Self.cached = m
        return m
    }

    private var reference: SafeTensorsFile {
        get throws {
            try SafeTensorsFile(url: Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
                .appendingPathComponent("gemma3_reference.safetensors"))
        }
    }

    func testLogitsAndNLLMatchTransformers() throws {
        let model = try model(), ref = try reference
        for i in 0..<3 {
            let ids = try ref.integers("tokens_\(i)")
            let hidden = model.hiddenStates(tokens: ids.map(Int32.init))
            if i == 0 {
                let C = model.config.hiddenSize
                let logits = hidden.withUnsafeBufferPointer { model.logits(hidden: $0.baseAddress! + (ids.count - 1) * C, rows: 1) }
                let expected = try ref.matrix("last_logits_0").storage
                let worst = zip(logits, expected).map { abs($0 - $1) }.max()!, scale = expected.map(abs).max()!
                print("Gemma 3 prompt 0: max |Δlogit| \(worst) of max |logit| \(scale)")
                XCTAssertLessThanOrEqual(worst / scale, 1e-4)
            }
            let nll = Perplexity.negativeLogLikelihood(model: model, hidden: hidden, targets: ids, rows: 0..<(ids.count - 1))
            let expected = try ref.matrix("nll_\(i)").storage.reduce(0.0) { $0 + Double($1) }
            XCTAssertEqual(nll.totalNLL, expected, accuracy: 1e-3 * expected, "prompt \(i)")
        }
    }

    /// 700 tokens in one window: the sliding layers see only their last 512 positions.
    func testPassagePerplexityWithin0_1Percent() throws {
        let model = try model(), ref = try reference
        let ids = try ref.integers("ids")
        XCTAssertGreaterThan(ids.count, 512)
        let result = Perplexity.score(model: model, ids: ids, window: 1024, stride: 1024)
        let expected = try ref.matrix("nll").storage.reduce(0.0) { $0 + Double($1) } / Double(ids.count - 1)
        print("Gemma 3 passage: \(result.tokens) tokens, perplexity \(result.perplexity) vs transformers \(Foundation.exp(expected))")
        XCTAssertEqual(result.perplexity, Foundation.exp(expected), accuracy: 1e-3 * Foundation.exp(expected))
    }

    func testGreedyTokensAreTransformers() throws {
        let model = try model(), ref = try reference
        let expected = try ref.integers("greedy_tokens_0")
        let (tokens, _) = try Generation.run(model: model, prompt: try ref.integers("tokens_0"), maxTokens: expected.count,
                                         sampling: .greedy, stopTokens: [])
        XCTAssertEqual(tokens, expected)
    }
}
