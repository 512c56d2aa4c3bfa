import Formats
import Foundation
import LinearAlgebra
import Model
import TestSupport
import Tokenizer
import XCTest

/// SmolLM2-135M-Instruct read from its Q4_1 GGUF against transformers loading the same file
/// (scripts/reference/make_model_fixtures.py): token ids, logits, NLL, greedy text.
final class SmolLM2ForwardTests: XCTestCase {
    nonisolated(unsafe) private static var cached: LanguageModel?

    private func languageModel() throws -> LanguageModel {
        if let m = Self.cached { return m }
        let m = try LanguageModel.load(path: try Assets.require(Assets.smolLM2GGUF).path)
        Self.cached = m
        return m
    }

    private var reference: SafeTensorsFile {
        get throws {
            try SafeTensorsFile(url: Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
                .appendingPathComponent("smollm2_logits.safetensors"))
        }
    }

    func testConfigurationIsSmolLM2s() throws {
        let c = try languageModel().model.config
        XCTAssertEqual([c.numHiddenLayers, c.hiddenSize, c.intermediateSize, c.numAttentionHeads, c.numKeyValueHeads, c.headDim, c.vocabSize],
                       [30, 576, 1536, 9, 3, 64, 49152])
        XCTAssertTrue(c.tieWordEmbeddings)
    }

    func testLogitsMatchTransformersOnThreePrompts() throws {
        let lm = try languageModel()
        let ref = try reference
        let prompts = try XCTUnwrap(try JSONDecoder().decode([String].self, from: Data((ref.metadata["prompts"] ?? "").utf8)))
        for (i, prompt) in prompts.enumerated() {
            let ids = lm.tokenizer.encode(prompt)
            XCTAssertEqual(ids, try ref.integers("tokens_\(i)"), "token ids of prompt \(i)")
            let hidden = lm.model.hiddenStates(tokens: ids.map(Int32.init))
            let C = lm.model.config.hiddenSize
            let logits = hidden.withUnsafeBufferPointer { lm.model.logits(hidden: $0.baseAddress! + (ids.count - 1) * C, rows: 1) }
            let expected = try ref.matrix("last_logits_\(i)")
            let maxAbs = zip(logits, expected.storage).map { abs($0 - $1) }.max()!
            let scale = expected.storage.map(abs).max()!
            print("prompt \(i): max |Δlogit| = \(maxAbs) (max |logit| \(scale), relative \(maxAbs / scale))")
            XCTAssertLessThanOrEqual(maxAbs / scale, 1e-4, "prompt \(i)")
            // Per-position NLL through the chunked head.
            let nll = Perplexity.negativeLogLikelihood(model: lm.model, hidden: hidden, targets: ids, rows: 0..<(ids.count - 1))
            let expectedNLL = try ref.matrix("nll_\(i)").storage.reduce(0.0) { $0 + Double($1) }
            XCTAssertEqual(nll.totalNLL, expectedNLL, accuracy: 1e-3 * expectedNLL)
        }
    }

    func testGreedyContinuationIsTransformers() throws {
        let lm = try languageModel()
        let ref = try reference
        let prompt = lm.tokenizer.encode("The capital of France is")
        let expected = try ref.integers("greedy_tokens_0")
        let (tokens, _) = try Generation.run(model: lm.model, prompt: prompt, maxTokens: expected.count, sampling: .greedy, stopTokens: [])
        XCTAssertEqual(tokens, expected)
        XCTAssertTrue(lm.tokenizer.decode(tokens).hasPrefix(" Paris"))
    }
}

/// `pissa eval`'s scoring of a Shakespeare passage against transformers' on the same tokens.
final class SmolLM2PerplexityTests: XCTestCase {
    func testShakespearePerplexityMatchesTransformers() throws {
        let lm = try LanguageModel.load(path: try Assets.require(Assets.smolLM2GGUF).path)
        let ref = try SafeTensorsFile(url: Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
            .appendingPathComponent("smollm2_shakespeare.safetensors"))
        let passage = try XCTUnwrap(ref.metadata["passage"])
        let ids = lm.tokenizer.encode(passage)
        XCTAssertEqual(ids, try ref.integers("ids"), "token ids equal the Hugging Face tokenizer's")
        let expected = try ref.matrix("nll").storage.reduce(0.0) { $0 + Double($1) } / Double(ids.count - 1)
        let result = Perplexity.score(model: lm.model, ids: ids, window: 1024, stride: 1024)
        XCTAssertEqual(result.tokens, ids.count - 1)
        print("Shakespeare passage: \(result.tokens) tokens, perplexity \(result.perplexity) vs transformers \(Foundation.exp(expected))")
        XCTAssertEqual(result.perplexity, Foundation.exp(expected), accuracy: 1e-3 * Foundation.exp(expected), "±0.1 %")
    }
}
