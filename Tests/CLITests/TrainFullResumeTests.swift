import Foundation
import TestSupport
import XCTest

/// `pissa train --method full` on the tiny model: the output is a Hugging Face directory
/// (RUN/model), checkpoints hold the whole weights with their AdamW moments, and a run killed with
/// SIGKILL and resumed — with `--grad-checkpoint` switched on, which must not change a bit — ends
/// with the same model bytes as an uninterrupted run.
final class TrainFullResumeTests: XCTestCase {
    private var scratch: URL!
    private let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tiny_trainable")

    override func setUpWithError() throws { scratch = try makeScratchDirectory("pissa-full") }

    private func arguments(out: URL) -> [String] {
        ["train", "--method", "full", "--model", fixture.path, "--data", fixture.appendingPathComponent("train.jsonl").path,
         "--out", out.path, "--steps", "10", "--batch-size", "2", "--lr", "1e-3", "--save-every", "1", "--seed", "3"]
    }

    private func modelBytes(_ run: URL) throws -> Data {
        try Data(contentsOf: run.appendingPathComponent("model/model.safetensors"))
    }

    private func checkpointSteps(_ run: URL) -> [Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: run.appendingPathComponent("checkpoints").path)) ?? []
        return names.compactMap { $0.hasPrefix("step-") ? Int($0.dropFirst(5)) : nil }.sorted()
    }

    func testKilledFullRunResumesToIdenticalModel() throws {
        let reference = scratch.appendingPathComponent("uninterrupted")
        let full = try PissaProcess.run(arguments(out: reference))
        XCTAssertEqual(full.status, 0, full.stderr)
        let expected = try modelBytes(reference)
        let fm = FileManager.default
        for name in ["model/config.json", "model/tokenizer.json", "model/tokenizer_config.json", "metrics.jsonl", "loss.svg"] {
            XCTAssertTrue(fm.fileExists(atPath: reference.appendingPathComponent(name).path), name)
        }
        XCTAssertFalse(fm.fileExists(atPath: reference.appendingPathComponent("adapter").path))
        let last = reference.appendingPathComponent("checkpoints/step-10")
        XCTAssertTrue(fm.fileExists(atPath: last.appendingPathComponent("optimizer.safetensors").path))
        XCTAssertFalse(fm.fileExists(atPath: last.appendingPathComponent("adapter").path))

        let run = scratch.appendingPathComponent("killed")
        let killAfter = Int.random(in: 2...7)
        let process = try PissaProcess.start(arguments(out: run))
        let deadline = Date().addingTimeInterval(120)
        while (checkpointSteps(run).last ?? 0) < killAfter && process.isRunning && Date() < deadline { usleep(2_000) }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let steps = checkpointSteps(run)
        XCTAssertFalse(steps.isEmpty, "a complete checkpoint survives the kill")
        // --model only satisfies the option check (the run's config.json names the model).
        let resumed = try PissaProcess.run(["train", "--resume", run.path, "--grad-checkpoint", "--model", fixture.path])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("resumed from the checkpoint of step"), resumed.stderr)
        XCTAssertEqual(try modelBytes(run), expected, "killed after step ≥ \(killAfter) (checkpoints \(steps)), resumed with --grad-checkpoint")
    }

    func testFullMethodRejectsAnAdapterPath() throws {
        let result = try PissaProcess.run(arguments(out: scratch.appendingPathComponent("x")) + ["--adapter-path", "/nonexistent"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("--method full"), result.stderr)
    }
}
