import Foundation
import Model
@testable import Training
import XCTest

/// Exact-match evaluation and per-example held-out loss on the tiny trainable model: batched
/// answers are the one-at-a-time answers, every problem is graded once, progress counts up, and
/// the per-example losses add up to the batch loss.
final class MathEvaluationTests: XCTestCase {
    private var data: String { AdapterInteropTests.tinyModel.appendingPathComponent("train.jsonl").path }

    func testBatchedGradingEqualsOneAtATimeAndReportsProgress() throws {
        let lm = try LanguageModel.load(path: AdapterInteropTests.tinyModel.path)
        let records = try XCTUnwrap(try MathRecords.read(path: data))
        var seen: [Int] = []
        let batched = try Evaluation.mathAccuracy(model: lm.model, adapters: nil, tokenizer: lm.tokenizer, records: records,
                                              maxTokens: 6, batchSize: 5, samplesPerKind: 2) { p in
            seen.append(p.done)
            XCTAssertEqual(p.total, records.count)
            XCTAssertLessThanOrEqual(p.correct, p.done)
        }
        XCTAssertEqual(seen, Array(1...records.count), "one progress report per graded problem")
        let one = try Evaluation.mathAccuracy(model: lm.model, adapters: nil, tokenizer: lm.tokenizer, records: records, maxTokens: 6,
                                          batchSize: 1, samplesPerKind: 2)
        XCTAssertEqual(batched.outcomes, one.outcomes)
        XCTAssertEqual(batched.samples, one.samples)
        XCTAssertEqual(batched.total, records.count)
        XCTAssertEqual(batched.correct, batched.outcomes.rightCount)
        // Samples: the first right ones, then the first wrong ones, each graded as its outcome says.
        for s in batched.samples { XCTAssertEqual(s.correct, batched.outcomes.correct[s.index]) }
        let wrong = batched.samples.filter { !$0.correct }.map(\.index)
        XCTAssertEqual(wrong, Array(batched.outcomes.correct.indices.filter { !batched.outcomes.correct[$0] }.prefix(2)))
    }

    func testPerExampleLossesAddUpToTheBatchLoss() throws {
        let lm = try LanguageModel.load(path: AdapterInteropTests.tinyModel.path)
        let examples = try DatasetLoader(tokenizer: lm.tokenizer, maxSeqLen: 64).load(path: data).examples
        let total = Evaluation.loss(model: lm.model, adapters: nil, examples: examples, batchSize: 4)
        let each = Evaluation.lossPerExample(model: lm.model, adapters: nil, examples: examples, batchSize: 3)
        XCTAssertEqual(each.count, examples.count)
        XCTAssertEqual(each.reduce(0) { $0 + $1.tokens }, total.tokens)
        XCTAssertEqual(each.reduce(0) { $0 + $1.totalNLL }, total.totalNLL, accuracy: 1e-4 * total.totalNLL)
        for (e, r) in zip(examples, each) { XCTAssertEqual(r.tokens, e.supervised.dropFirst().filter { $0 }.count) }
    }
}
