import Experiments
import Foundation
import Training

/// A scratch directory with generated math problems as `train.jsonl` / `test.jsonl` (completion
/// records), for the training tests on the real model. `remove()` deletes it.
struct MathScratch {
    let directory: URL
    let train: String
    let test: String
    /// Where a test's run directory goes.
    var run: String { directory.appendingPathComponent("run").path }

    init(_ name: String, train: Int, test: Int, seed: UInt64) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pissa-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let (trainProblems, testProblems) = try MathGenerator.generate(train: train, test: test, seed: seed)
        directory = dir
        self.train = try Self.write(trainProblems, to: dir.appendingPathComponent("train.jsonl"))
        self.test = try Self.write(testProblems, to: dir.appendingPathComponent("test.jsonl"))
    }

    private static func write(_ problems: [MathProblem], to url: URL) throws -> String {
        let encoder = JSONEncoder()
        let lines = try problems.map { String(decoding: try encoder.encode($0.record), as: UTF8.self) }
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}
