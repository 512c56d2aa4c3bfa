import Foundation
@testable import Training
import XCTest

/// The report's statistics against scipy: Tests/TrainingTests/Fixtures/statistics/ is written by
/// scripts/reference/make_statistics_fixtures.py (scipy.stats.binomtest, ttest_rel, norm.ppf,
/// binom; Holm from its definition; the exact McNemar power by enumeration, brentq for the
/// minimum detectable difference).
final class StatisticsTests: XCTestCase {
    private struct Reference: Decodable {
        struct Wilson: Decodable { var successes: Int; var trials: Int; var lower: Double; var upper: Double }
        struct McNemar: Decodable { var b: Int; var c: Int; var p: Double }
        struct PairedT: Decodable { var differences: [Double]; var statistic: Double; var p: Double; var mean: Double }
        struct Holm: Decodable { var p: [Double]; var adjusted: [Double] }
        struct Quantile: Decodable { var p: Double; var x: Double }
        struct Power: Decodable {
            var n: Int; var discordance: Double; var difference: Double
            var exact_power: Double; var mdd: Double?
        }
        var wilson: [Wilson]
        var mcnemar_exact: [McNemar]
        var paired_t: [PairedT]
        var holm: [Holm]
        var normal_quantile: [Quantile]
        var power: [Power]
    }

    private static let reference: Reference = {
        let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
            .appendingPathComponent("statistics/statistics_reference.json")
        return try! JSONDecoder().decode(Reference.self, from: Data(contentsOf: url))
    }()

    private func assertClose(_ observed: Double, _ expected: Double, relative: Double, _ label: String,
                             file: StaticString = #filePath, line: UInt = #line) {
        let error = abs(observed - expected) / max(abs(expected), 1e-300)
        XCTAssertTrue(error <= relative || abs(observed - expected) < 1e-300,
                      "\(label): observed \(observed), expected \(expected), relative error \(error)", file: file, line: line)
    }

    func testWilsonIntervalsMatchScipy() {
        for r in Self.reference.wilson {
            let interval = Statistics.wilson(successes: r.successes, trials: r.trials)
            let label = "\(r.successes)/\(r.trials)"
            XCTAssertEqual(interval.lower, r.lower, accuracy: 1e-12, label)
            XCTAssertEqual(interval.upper, r.upper, accuracy: 1e-12, label)
        }
    }

    func testMcNemarExactPValuesMatchScipy() {
        for r in Self.reference.mcnemar_exact {
            assertClose(Statistics.mcNemar(onlyFirst: r.b, onlySecond: r.c), r.p, relative: 1e-10, "b \(r.b) c \(r.c)")
            // The test is symmetric in the two methods.
            XCTAssertEqual(Statistics.mcNemar(onlyFirst: r.c, onlySecond: r.b), Statistics.mcNemar(onlyFirst: r.b, onlySecond: r.c))
        }
    }

    func testPairedTMatchesScipy() throws {
        for r in Self.reference.paired_t {
            let t = try XCTUnwrap(Statistics.pairedT(r.differences))
            let label = "n \(r.differences.count)"
            assertClose(t.mean, r.mean, relative: 1e-12, label + " mean")
            assertClose(t.statistic, r.statistic, relative: 1e-10, label + " t")
            assertClose(t.pValue, r.p, relative: 1e-9, label + " p")
            XCTAssertEqual(t.degreesOfFreedom, r.differences.count - 1)
        }
        XCTAssertNil(Statistics.pairedT([0.3]), "one pair has no spread")
        XCTAssertEqual(Statistics.pairedT([0.25, 0.25, 0.25])?.pValue, 0)
        XCTAssertEqual(Statistics.pairedT([0, 0])?.pValue, 1)
    }

    func testHolmMatchesItsDefinition() {
        for r in Self.reference.holm {
            let adjusted = Statistics.holm(r.p)
            XCTAssertEqual(adjusted.count, r.adjusted.count)
            for (a, e) in zip(adjusted, r.adjusted) { XCTAssertEqual(a, e, accuracy: 1e-15, "\(r.p)") }
        }
        XCTAssertEqual(Statistics.holm([]), [])
    }

    func testNormalQuantileMatchesScipy() {
        for r in Self.reference.normal_quantile {
            if r.x == 0 { XCTAssertEqual(Distributions.normalQuantile(r.p), 0, accuracy: 1e-15) } else {
                assertClose(Distributions.normalQuantile(r.p), r.x, relative: 1e-13, "p \(r.p)")
            }
        }
    }

    func testExactPowerAndMinimumDetectableDifferenceMatchScipy() {
        for r in Self.reference.power {
            let label = "n \(r.n), discordance \(r.discordance)"
            let power = Statistics.mcNemarPower(problems: r.n, onlyFirst: (r.discordance + r.difference) / 2,
                                                onlySecond: (r.discordance - r.difference) / 2)
            assertClose(power, r.exact_power, relative: 1e-9, label + ", difference \(r.difference)")
            let mdd = Statistics.minimumDetectableDifference(problems: r.n, discordance: r.discordance)
            if let expected = r.mdd {
                XCTAssertEqual(mdd ?? .nan, expected, accuracy: 1e-9, label)
            } else {
                XCTAssertNil(mdd, label)
            }
        }
    }

    func testPairedOutcomesCountEachKindOfProblem() {
        let first = [true, true, false, false, true, false]
        let second = [true, false, true, false, false, false]
        let o = PairedOutcomes(first: first, second: second)
        XCTAssertEqual([o.bothRight, o.onlyFirst, o.onlySecond, o.bothWrong], [1, 2, 1, 2])
        XCTAssertEqual(o.difference, 1.0 / 6, accuracy: 1e-15)
        XCTAssertEqual(o.discordance, 0.5, accuracy: 1e-15)
        XCTAssertEqual(o.pValue, Statistics.mcNemar(onlyFirst: 2, onlySecond: 1))
        XCTAssertEqual((o + o).problems, 12)
        XCTAssertNil(PairedOutcomes(first: [false, false], second: [false, false]).minimumDetectableDifference,
                     "no discordant problem: no difference is detectable")
    }
}
