import Experiments
import Foundation
import Model
import TestSupport
import Tokenizer
import Training
import XCTest

/// Batched greedy generation on SmolLM2 gives every prompt the tokens it gets alone: held-out
/// math prompts (as `pissa eval --task math` and `pissa compare` answer them) and two plain ones,
/// decoded 4 at a time so that slots are refilled mid-run.
final class SmolLM2BatchedGenerationTests: XCTestCase {
    func testBatchedAnswersEqualOneAtATime() throws {
        let lm = try LanguageModel.load(path: try Assets.require(Assets.smolLM2GGUF).path)
        let problems = try MathGenerator.generate(train: 0, test: 6, seed: 0).test
        let texts = problems.map(\.record.prompt) + ["The capital of France is", "Once upon a time"]
        let prompts = texts.map { lm.tokenizer.encode($0, addSpecialTokens: true) }
        let stops: Set<Int> = lm.tokenizer.special.eos.map { [$0] } ?? []
        let alone = try prompts.map {
            try Generation.run(model: lm.model, prompt: $0, maxTokens: 48, sampling: .greedy, stopTokens: stops).tokens
        }
        let batched = BatchedGeneration.greedy(model: lm.model, prompts: prompts, maxTokens: 48, stopTokens: stops, batchSize: 4)
        for i in prompts.indices {
            XCTAssertEqual(batched.tokens[i], alone[i], "prompt \(i): \(lm.tokenizer.decode(alone[i]))")
        }
        XCTAssertGreaterThan(batched.statistics.generatedTokens, 100)
        print("batched: \(batched.statistics.generatedTokens) tokens in \(batched.statistics.passes) passes, "
            + String(format: "%.1f tok/s", batched.statistics.generatedTokensPerSecond))
    }
}
