import Foundation
import TestSupport
import XCTest

/// `pissa bench train` and `bench forward` as a user runs them: validation, each way of sharing a
/// step among the lanes, and a model whose vocabulary is far smaller than SmolLM2's (the numbers
/// themselves are BENCHMARKS.md's, not a test's).
final class BenchCommandTests: XCTestCase {
    private let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    private var tiny: String { repository.appendingPathComponent("Tests/Fixtures/tiny_trainable").path }

    func testTrainOptionsAreValidated() throws {
        for (arguments, message) in [
            (["--lanes", "0"], "--lanes must be in 1…"),
            (["--seq", "1"], "--seq must be in 2…1048576 (got 1)."),
            (["--parallel", "threads"], "The value 'threads' is invalid for '--parallel <parallel>'"),
        ] {
            let r = try PissaProcess.run(["bench", "train", "--model", tiny] + arguments)
            XCTAssertEqual(r.status, 64, arguments.joined(separator: " "))
            XCTAssertTrue(r.stderr.contains(message), r.stderr)
        }
    }

    /// The fields of `--json` read here.
    private struct Summary: Decodable {
        var parallelism: String
        var batch: Int
        var tokensPerSecond: Double
    }

    func testTrainRunsEachWayOfSharingTheLanes() throws {
        for parallel in ["automatic", "sequences", "products"] {
            let r = try PissaProcess.run(["bench", "train", "--model", tiny, "--seq", "16", "--steps", "1", "--parallel", parallel, "--json"])
            XCTAssertEqual(r.status, 0, r.stderr)
            let summary = try JSONDecoder().decode(Summary.self, from: Data(r.stdout.utf8))
            XCTAssertEqual(summary.parallelism, parallel)
            XCTAssertEqual(summary.batch, 4)
            XCTAssertGreaterThan(summary.tokensPerSecond, 0)
        }
    }

    func testForwardRunsOnASmallVocabulary() throws {
        let r = try PissaProcess.run(["bench", "forward", "--model", tiny, "--tokens", "32", "--new", "4"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("prefill 32 tokens"), r.stdout)
    }
}
