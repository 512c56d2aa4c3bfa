import Foundation
import XCTest

/// `pissa compare` end to end on the tiny model: 2 methods × 2 seeds × 3 steps write a report,
/// figures and tables that agree with each run's own `metrics.jsonl`.
final class CompareCommandTests: XCTestCase {
    private let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tiny_trainable")

    private struct Results: Decodable {
        struct Run: Decodable {
            struct Step: Decodable { var step: Int; var loss: Double?; var grad_norm: Double?; var eval_loss: Double? }
            var method: String
            var seed: Int
            var metrics: [Step]
            var heldOutLoss: Double?
            var initialHeldOutLoss: Double?
            var accuracy: Double?
            var answers: String?
            var heldOutExampleLosses: [Double]?
            var samples: [Sample]?
            struct Sample: Decodable { var index: Int; var correct: Bool }
        }
        struct Timing: Decodable { var mode: String; var modules: Int; var medianResidualExcess: Double }
        var runs: [Run]
        var initTimings: [Timing]
    }

    func testTwoMethodsTwoSeedsWriteAConsistentReport() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("pissa-compare-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        let data = fixture.appendingPathComponent("train.jsonl").path
        let result = try PissaProcess.run([
            "compare", "--model", fixture.path, "--data", data, "--test", data, "--methods", "lora,pissa", "--seeds", "0,1",
            "--steps", "3", "--rank", "4", "--lr", "5e-3", "--batch-size", "4", "--accuracy-limit", "2", "--max-new-tokens", "4",
            "--init-modes", "pissa,pissa_niter_2", "--out", out.path,
        ])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stderr.contains("exact match: 2/2 answered"), "exact-match progress: \(result.stderr)")
        for name in ["report.md", "results.json", "config.json", "loss.svg", "loss_first20.svg", "grad_norm.svg"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent(name).path), name)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("results.partial.json").path),
                       "the partial results go once the comparison is complete")
        let results = try JSONDecoder().decode(Results.self, from: Data(contentsOf: out.appendingPathComponent("results.json")))
        XCTAssertEqual(results.runs.map { "\($0.method)-\($0.seed)" }.sorted(), ["lora-0", "lora-1", "pissa-0", "pissa-1"])

        // Each run's metrics in results.json are its metrics.jsonl.
        for run in results.runs {
            let log = try String(contentsOf: out.appendingPathComponent("runs/\(run.method)-seed\(run.seed)/metrics.jsonl"), encoding: .utf8)
            let steps = try log.split(separator: "\n").map { try JSONDecoder().decode(Results.Run.Step.self, from: Data($0.utf8)) }
            XCTAssertEqual(steps.map(\.step), [1, 2, 3])
            XCTAssertEqual(steps.map(\.loss), run.metrics.map(\.loss))
            XCTAssertEqual(steps.last?.eval_loss, run.heldOutLoss)
            XCTAssertNotNil(run.initialHeldOutLoss)
            XCTAssertNotNil(run.accuracy)
            // Each of the 2 problems right (1) or wrong (0); one loss per held-out example (24); samples of each kind.
            let answers = try XCTUnwrap(run.answers)
            XCTAssertTrue(answers.count == 2 && answers.allSatisfy { $0 == "0" || $0 == "1" }, answers)
            XCTAssertEqual(run.accuracy, Double(answers.filter { $0 == "1" }.count) / 2)
            XCTAssertEqual(run.heldOutExampleLosses?.count, 24)
            XCTAssertEqual(run.samples?.count, 2)
        }
        // PiSSA and LoRA start from the same function: the same held-out loss before training.
        let starts = results.runs.compactMap(\.initialHeldOutLoss)
        XCTAssertEqual(starts.max()! - starts.min()!, 0, accuracy: 1e-4 * starts.max()!)

        // The table's final-loss cell is the mean over seeds of the last step's loss (3 steps: tenth = 1 step).
        let report = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
        for (method, label) in [("lora", "LoRA"), ("pissa", "PiSSA")] {
            let finals = results.runs.filter { $0.method == method }.compactMap { $0.metrics.last?.loss }
            let mean = finals.reduce(0, +) / Double(finals.count)
            let row = try XCTUnwrap(report.split(separator: "\n").first { $0.hasPrefix("| \(label) |") }, report)
            XCTAssertTrue(row.contains(String(format: "%.4f ±", mean)), "\(row) has mean \(mean)")
        }
        XCTAssertTrue(report.contains("| `pissa` | 14 |"), report)   // 2 layers × 7 projections
        XCTAssertTrue(report.contains("| `pissa_niter_2` | 14 |"), report)
        XCTAssertTrue(report.contains("PiSSA vs LoRA, final training loss: "), report)
        XCTAssertTrue(report.contains("paired t-test over 2 seeds"), report)
        XCTAssertTrue(report.contains("PiSSA vs LoRA, exact match: ") && report.contains("McNemar's exact test on 2 problems × 2 seeds"), report)
        XCTAssertTrue(report.contains("## Exact match on held-out problems") && report.contains("## Sample answers"), report)
        XCTAssertTrue(report.contains("Holm"), report)
        XCTAssertTrue(report.contains("compare --model"), "the command line is in the report")
        let exact = try XCTUnwrap(results.initTimings.first { $0.mode == "pissa" })
        XCTAssertEqual(exact.medianResidualExcess, 0, accuracy: 1e-4)

        for figure in ["loss.svg", "loss_first20.svg", "grad_norm.svg"] {
            let svg = try String(contentsOf: out.appendingPathComponent(figure), encoding: .utf8)
            XCTAssertTrue(svg.hasPrefix("<?xml") && svg.hasSuffix("</svg>\n"), figure)
            XCTAssertTrue(svg.contains("LoRA (mean ± std of 2 seeds)") && svg.contains("PiSSA (mean ± std of 2 seeds)"), figure)
        }

        // `pissa report` makes the same report and figures again from results.json alone.
        let figure = try Data(contentsOf: out.appendingPathComponent("loss.svg"))
        for name in ["report.md", "loss.svg"] { try FileManager.default.removeItem(at: out.appendingPathComponent(name)) }
        let remade = try PissaProcess.run(["report", out.path])
        XCTAssertEqual(remade.status, 0, remade.stderr)
        XCTAssertEqual(try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8), report)
        XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent("loss.svg")), figure)
        try Data("{\"runs\": 3}".utf8).write(to: out.appendingPathComponent("results.json"))
        let broken = try PissaProcess.run(["report", out.path])
        XCTAssertEqual(broken.status, 1)
        XCTAssertFalse(broken.signaled)
        XCTAssertTrue(broken.stderr.contains("results.json is not the results.json of `pissa compare`"), broken.stderr)
    }

    func testUnknownAndUnavailableMethodsAreRejected() throws {
        let data = fixture.appendingPathComponent("train.jsonl").path
        let unknown = try PissaProcess.run(["compare", "--model", fixture.path, "--data", data, "--methods", "lora,vera", "--out", "/tmp/x"])
        XCTAssertNotEqual(unknown.status, 0)
        XCTAssertTrue(unknown.stderr.contains("--methods: unknown vera"), unknown.stderr)
        let seeds = try PissaProcess.run(["compare", "--model", fixture.path, "--data", data, "--seeds", "0,0", "--out", "/tmp/x"])
        XCTAssertTrue(seeds.stderr.contains("--seeds names a seed twice"), seeds.stderr)
    }
}
