@testable import Experiments
import Foundation
@testable import Training
import XCTest

/// The report's "What the runs show" calls a difference significant only when the corrected test
/// says so: a 0/20 vs 1/20 accuracy is "no significant difference", a large paired difference on
/// many problems is significant, and an untested measure says why.
final class CompareFindingsTests: XCTestCase {
    /// A run whose training loss is `loss` at every one of `steps` steps and whose answers are `answers`.
    private func run(_ method: CompareMethod, seed: UInt64, loss: Double, answers: [Bool]?, exampleLosses: [Double]? = nil) -> CompareRun {
        let metrics = (1...20).map { StepMetrics(step: $0, loss: loss, learningRate: 1e-3, gradNorm: 1, elapsedSeconds: 0) }
        var r = CompareRun(method: method, seed: seed, metrics: metrics, initialHeldOutLoss: 1, heldOutLoss: loss,
                           accuracy: answers.map { Double($0.filter { $0 }.count) / Double($0.count) }, answered: answers?.count,
                           setupSeconds: 1, trainSeconds: 1, tokensPerSecond: 1)
        r.answers = answers.map(AnswerOutcomes.init)
        r.heldOutExampleLosses = exampleLosses
        return r
    }

    private func results(_ runs: [CompareRun], seeds: [UInt64]) -> ComparisonResults {
        var c = CompareConfig(model: "m", data: "d", test: "t", output: "o", methods: [.lora, .pissa], seeds: seeds)
        c.steps = 20
        return ComparisonResults(config: c, runs: runs, initTimings: [], quantError: nil)
    }

    func testOneProblemInTwentyIsNoise() throws {
        // The case: LoRA 1/20, PiSSA 0/20, one seed.
        let lora = (0..<20).map { $0 == 7 }, pissa = [Bool](repeating: false, count: 20)
        let r = results([run(.lora, seed: 0, loss: 0.33, answers: lora), run(.pissa, seed: 0, loss: 0.21, answers: pissa)], seeds: [0])
        let f = try XCTUnwrap(CompareReport.findings(r).first { $0.measure == "exact match" })
        XCTAssertEqual(f.pValue, 1)
        XCTAssertFalse(f.significant)
        let sentence = CompareReport.sentence(f)
        XCTAssertTrue(sentence.contains("**no significant difference**"), sentence)
        XCTAssertTrue(sentence.contains("0.0 % vs 5.0 %"), sentence)
        // One seed: the training losses are stated, not tested.
        let final = try XCTUnwrap(CompareReport.findings(r).first { $0.measure == "final training loss" })
        XCTAssertNil(final.pValue)
        XCTAssertTrue(CompareReport.sentence(final).contains("one seed: not tested"), CompareReport.sentence(final))
        let md = CompareReport.markdown(r)
        XCTAssertTrue(md.contains("0.0 % (0/20) [0.0, 16.1]"), "Wilson interval of 0/20 in the table")
        XCTAssertTrue(md.contains("5.0 % (1/20) [0.9, 23.6]"), "Wilson interval of 1/20 in the table")
    }

    func testALargePairedDifferenceIsSignificantAndPooledOverSeeds() throws {
        // 200 problems, 2 seeds: PiSSA alone right on 30 per seed, LoRA alone on 5.
        func answers(right: Range<Int>) -> [Bool] { (0..<200).map { right.contains($0) } }
        let runs = [0, 1].flatMap { seed in
            [run(.lora, seed: UInt64(seed), loss: 0.6 + 0.01 * Double(seed), answers: answers(right: 0..<25),
                 exampleLosses: (0..<50).map { 10 + Double($0 % 7) }),
             run(.pissa, seed: UInt64(seed), loss: 0.2 + 0.02 * Double(seed), answers: answers(right: 5..<55),
                 exampleLosses: (0..<50).map { 9 + Double($0 % 5) })]
        }
        let all = CompareReport.findings(results(runs, seeds: [0, 1]))
        let f = try XCTUnwrap(all.first { $0.measure == "exact match" })
        let o = try XCTUnwrap(f.outcomes)
        XCTAssertEqual([o.bothRight, o.onlyFirst, o.onlySecond, o.bothWrong], [40, 60, 10, 290])
        XCTAssertEqual(f.pValue!, Statistics.mcNemar(onlyFirst: 60, onlySecond: 10), accuracy: 0)
        XCTAssertTrue(f.significant)
        XCTAssertTrue(CompareReport.sentence(f).contains("**PiSSA higher, significant** (as the paper claims)"), CompareReport.sentence(f))
        // The held-out loss is tested over the 50 examples, averaged over the seeds.
        let heldOut = try XCTUnwrap(all.first { $0.measure == "held-out loss" })
        XCTAssertTrue(heldOut.test.contains("50 held-out examples"), heldOut.test)
        // Holm: every tested finding's adjusted p is at least its own.
        for g in all where g.pValue != nil { XCTAssertGreaterThanOrEqual(g.adjustedP!, g.pValue!) }
        XCTAssertEqual(all.filter { $0.pValue != nil }.count, 5)
    }

    func testResultsWithoutPerProblemAnswersSayTheyAreUntested() throws {
        var a = run(.lora, seed: 0, loss: 0.5, answers: nil), b = run(.pissa, seed: 0, loss: 0.4, answers: nil)
        (a.accuracy, a.answered, b.accuracy, b.answered) = (0.1, 30, 0.2, 30)
        let f = try XCTUnwrap(CompareReport.findings(results([a, b], seeds: [0])).first { $0.measure == "exact match" })
        XCTAssertNil(f.pValue)
        XCTAssertTrue(CompareReport.sentence(f).contains("not tested"))
    }

    func testAnswerOutcomesRoundTripAsOneString() throws {
        let o = AnswerOutcomes([true, false, false, true])
        let data = try JSONEncoder().encode(o)
        XCTAssertEqual(String(decoding: data, as: UTF8.self), "\"1001\"")
        XCTAssertEqual(try JSONDecoder().decode(AnswerOutcomes.self, from: data), o)
        XCTAssertThrowsError(try JSONDecoder().decode(AnswerOutcomes.self, from: Data("\"10x\"".utf8)))
    }
}
