import Foundation
import XCTest

/// `pissa eval --task math` on the tiny model: the accuracy comes with its Wilson interval and
/// per-problem outcomes, progress is shown while it answers, and bad settings are refused.
final class EvalMathCommandTests: XCTestCase {
    private let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tiny_trainable")

    func testMathEvaluationPrintsIntervalOutcomesAndProgress() throws {
        let data = fixture.appendingPathComponent("train.jsonl").path
        let base = ["eval", "--model", fixture.path, "--data", data, "--task", "math", "--limit", "5", "--max-new-tokens", "3"]
        let json = try PissaProcess.run(base + ["--batch-size", "2", "--json"])
        XCTAssertEqual(json.status, 0, json.stderr)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let interval = try XCTUnwrap(object["interval"] as? [String: Double])
        let accuracy = try XCTUnwrap(object["accuracy"] as? Double)
        XCTAssertTrue(interval["lower"]! <= accuracy && accuracy <= interval["upper"]!, "\(interval) around \(accuracy)")
        XCTAssertEqual((object["outcomes"] as? String)?.count, 5)
        XCTAssertEqual(object["total"] as? Int, 5)
        XCTAssertTrue(json.stderr.contains("exact match: 5/5 answered"), json.stderr)

        let text = try PissaProcess.run(base)
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertTrue(text.stdout.contains("95 % Wilson interval"), text.stdout)

        let zero = try PissaProcess.run(base + ["--batch-size", "0"])
        XCTAssertNotEqual(zero.status, 0)
        XCTAssertTrue(zero.stderr.contains("--batch-size must be in 1…65536 (got 0)"), zero.stderr)
    }
}
