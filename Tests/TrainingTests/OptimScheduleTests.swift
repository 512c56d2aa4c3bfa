import Foundation
import Training
import XCTest

/// Learning-rate schedules against transformers (`scripts/reference/make_optim_fixtures.py`):
///
///     opt = torch.optim.SGD([p], lr=2e-5)
///     sched = get_cosine_schedule_with_warmup(opt, num_warmup_steps=W, num_training_steps=T)  # or linear / constant
///     for k in range(T): lrs.append(opt.param_groups[0]["lr"]); opt.step(); sched.step()
///
/// with W = TrainingArguments(warmup_steps=ratio_or_steps).get_warmup_steps(T).
final class OptimScheduleTests: XCTestCase {
    struct Case: Decodable {
        var kind: String
        var base_lr: Double
        var total_steps: Int
        var warmup: [String: Double]
        var warmup_steps: Int
        var lrs: [Double]
    }

    struct File: Decodable { var cases: [Case] }

    func testSchedulesMatchTransformers() throws {
        let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("optim/schedules.json")
        let cases = try JSONDecoder().decode(File.self, from: Data(contentsOf: url)).cases
        XCTAssertEqual(cases.count, 15)
        var exact = 0, total = 0
        for c in cases {
            let warmup: LRSchedule.Warmup = if let ratio = c.warmup["ratio"] { .ratio(ratio) } else { .steps(Int(c.warmup["steps"]!)) }
            let schedule = LRSchedule(kind: try XCTUnwrap(LRSchedule.Kind(rawValue: c.kind)), baseLearningRate: c.base_lr,
                                      totalSteps: c.total_steps, warmup: warmup)
            XCTAssertNoThrow(try schedule.validate())
            let label = "\(c.kind) T=\(c.total_steps) warmup \(c.warmup)"
            XCTAssertEqual(schedule.warmupSteps, c.warmup_steps, label)
            for (k, expected) in c.lrs.enumerated() {
                let lr = schedule.learningRate(at: k)
                XCTAssertEqual(lr, expected, accuracy: 1e-7 * expected, "\(label) step \(k)")
                if lr == expected { exact += 1 }
                total += 1
            }
        }
        print("schedules: \(exact) of \(total) learning rates bit-identical to transformers'")
        XCTAssertEqual(exact, total, "same formulas, same libm: expected bit-identical values")
    }

    /// transformers' LambdaLR gives update 0 the factor 0 whenever there is warmup.
    func testFirstUpdateHasZeroLearningRateUnderWarmup() {
        for kind in LRSchedule.Kind.allCases {
            XCTAssertEqual(LRSchedule(kind: kind, baseLearningRate: 1e-3, totalSteps: 10, warmup: .ratio(0.1)).learningRate(at: 0), 0)
            XCTAssertEqual(LRSchedule(kind: kind, baseLearningRate: 1e-3, totalSteps: 10).learningRate(at: 0), 1e-3)
        }
    }

    func testWarmupRatioUsesCeilingInBinary() {
        XCTAssertEqual(LRSchedule.Warmup.ratio(0.1).steps(totalSteps: 10), 1)
        XCTAssertEqual(LRSchedule.Warmup.ratio(0.03).steps(totalSteps: 1000), 30)
        XCTAssertEqual(LRSchedule.Warmup.ratio(0.07).steps(totalSteps: 100), 8, "100 × 0.07 = 7.000000000000001")
        XCTAssertEqual(LRSchedule.Warmup.ratio(0.05).steps(totalSteps: 7), 1)
        XCTAssertEqual(LRSchedule.Warmup.steps(3).steps(totalSteps: 7), 3)
    }

    func testEndpoints() {
        let linear = LRSchedule(kind: .linear, baseLearningRate: 1, totalSteps: 10, warmup: .steps(2))
        XCTAssertEqual(linear.factor(at: 2), 1)
        XCTAssertEqual(linear.factor(at: 10), 0)
        XCTAssertEqual(linear.factor(at: 12), 0, "clamped at 0 past the end")
        let cosine = LRSchedule(kind: .cosine, baseLearningRate: 1, totalSteps: 10, warmup: .steps(2))
        XCTAssertEqual(cosine.factor(at: 2), 1)
        XCTAssertEqual(cosine.factor(at: 6), 0.5, accuracy: 1e-15)
        XCTAssertEqual(cosine.factor(at: 10), 0, accuracy: 1e-15)
    }

    func testCodableRoundTripAndValidation() throws {
        let schedule = LRSchedule(kind: .cosine, baseLearningRate: 2e-5, totalSteps: 100, warmup: .ratio(0.03))
        let data = try JSONEncoder().encode(schedule)
        let text = String(decoding: data, as: UTF8.self)
        XCTAssertTrue(text.contains("\"ratio\":0.03"), text)
        XCTAssertEqual(try JSONDecoder().decode(LRSchedule.self, from: data), schedule)
        let steps = LRSchedule(kind: .linear, baseLearningRate: 1e-4, totalSteps: 10, warmup: .steps(3))
        XCTAssertEqual(try JSONDecoder().decode(LRSchedule.self, from: JSONEncoder().encode(steps)), steps)

        XCTAssertThrowsError(try LRSchedule(kind: .linear, baseLearningRate: 1, totalSteps: 0).validate())
        XCTAssertThrowsError(try LRSchedule(kind: .linear, baseLearningRate: -1, totalSteps: 5).validate())
        XCTAssertThrowsError(try LRSchedule(kind: .linear, baseLearningRate: 1, totalSteps: 5, warmup: .ratio(1.5)).validate())
        XCTAssertThrowsError(try LRSchedule(kind: .linear, baseLearningRate: 1, totalSteps: 5, warmup: .steps(-1)).validate())
    }
}
