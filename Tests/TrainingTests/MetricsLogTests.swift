import Foundation
import Training
import TestSupport
import XCTest

final class MetricsLogTests: XCTestCase {
    var url: URL!

    override func setUpWithError() throws {
        url = try makeScratchDirectory("metrics").appendingPathComponent(MetricsLog.fileName)
    }

    func record(_ step: Int, loss: Double = 2.5) -> StepMetrics {
        StepMetrics(step: step, loss: loss, learningRate: 2e-5, gradNorm: 0.75, tokensPerSecond: 1234.5,
                    elapsedSeconds: Double(step) * 1.5, supervisedTokens: 100 + step)
    }

    func testAppendAndReadBack() throws {
        let records = (1...5).map { record($0, loss: 3 - Double($0) * 0.1) }
            + [StepMetrics(step: 5, elapsedSeconds: 8, evalLoss: 2.2)]
        let log = try MetricsLog(url: url, mode: .create)
        for r in records { try log.append(r) }
        // Visible on disk line by line, without closing.
        XCTAssertEqual(try MetricsLog.read(from: url), records)
        log.close()
        XCTAssertThrowsError(try log.append(record(6)))

        let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 6)
        let first = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        XCTAssertEqual(Set(first.keys), ["step", "loss", "lr", "grad_norm", "tokens_per_s", "elapsed_s", "supervised_tokens"])
        XCTAssertFalse(lines[5].contains("\"loss\""), "absent fields are omitted: \(lines[5])")
    }

    /// A run killed mid-write leaves a partial last line: reading ignores it, appending removes it.
    func testTruncatedLastLine() throws {
        let log = try MetricsLog(url: url, mode: .create)
        for step in 1...3 { try log.append(record(step)) }
        log.close()
        var data = try Data(contentsOf: url)
        let line = try JSONEncoder().encode(record(4))
        data.append(line.prefix(line.count / 2))
        try data.write(to: url)

        XCTAssertEqual(try MetricsLog.read(from: url).map(\.step), [1, 2, 3])

        let resumed = try MetricsLog(url: url, mode: .append)
        try resumed.append(record(4))
        XCTAssertEqual(try MetricsLog.read(from: url).map(\.step), [1, 2, 3, 4])
    }

    func testCompleteLastLineWithoutNewlineIsKept() throws {
        var data = try JSONEncoder().encode(record(1))
        data.append(UInt8(ascii: "\n"))
        data.append(try JSONEncoder().encode(record(2)))  // hand-edited: no final newline
        try data.write(to: url)
        XCTAssertEqual(try MetricsLog.read(from: url).map(\.step), [1, 2])
        let log = try MetricsLog(url: url, mode: .append)
        try log.append(record(3))
        XCTAssertEqual(try MetricsLog.read(from: url).map(\.step), [1, 2, 3])
    }

    func testMalformedMiddleLineThrows() throws {
        try Data("{\"step\":1,\"elapsed_s\":1}\nnot json\n{\"step\":3,\"elapsed_s\":3}\n".utf8).write(to: url)
        XCTAssertThrowsError(try MetricsLog.read(from: url)) { error in
            guard case let MetricsError.malformedLine(_, line, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(line, 2)
        }
        XCTAssertThrowsError(try MetricsLog.read(from: url.appendingPathExtension("missing")))
    }

    func testResumeDropsLaterSteps() throws {
        let log = try MetricsLog(url: url, mode: .create)
        for step in 1...10 { try log.append(record(step)) }
        log.close()
        let resumed = try MetricsLog(url: url, mode: .resume(afterStep: 6))
        try resumed.append(record(7, loss: 1))
        XCTAssertEqual(try MetricsLog.read(from: url).map(\.step), [1, 2, 3, 4, 5, 6, 7])
        XCTAssertEqual(try MetricsLog.read(from: url).last?.loss, 1)
        // .create starts over.
        _ = try MetricsLog(url: url, mode: .create)
        XCTAssertEqual(try MetricsLog.read(from: url), [])
    }

    func testNonFiniteValuesRoundTrip() throws {
        let log = try MetricsLog(url: url, mode: .create, durable: true)
        let diverged = StepMetrics(step: 9, loss: .nan, learningRate: 1e-4, gradNorm: .infinity, elapsedSeconds: 3)
        try log.append(diverged)
        let back = try MetricsLog.read(from: url)
        XCTAssertEqual(back, [diverged])
        XCTAssertTrue(try String(contentsOf: url, encoding: .utf8).contains("\"NaN\""))
    }

    func testConcurrentAppendsKeepLinesWhole() throws {
        let log = try MetricsLog(url: url, mode: .create)
        let records = (0..<200).map { record($0) }
        DispatchQueue.concurrentPerform(iterations: 200) { i in try? log.append(records[i]) }
        XCTAssertEqual(try MetricsLog.read(from: url).map(\.step).sorted(), Array(0..<200))
    }
}
