import Foundation
import TestSupport
import XCTest

/// Fault injection on `pissa train` (tiny model, 12 steps, a checkpoint every step):
/// - SIGKILL at random points, including the moment a checkpoint's temporary directory appears
///   (the write in progress): the run directory keeps at least one complete, loadable checkpoint,
///   and `--resume` ends with the same adapter bytes as an uninterrupted run
///   (`TrainResumeTests` kills between checkpoints; this adds kills inside the write);
/// - a full disk (a 200 KiB tmpfs in a private mount namespace, `unshare -rm`, where the system
///   allows it): the run stops with an error naming the path and "No space left on device",
///   the last good checkpoint stays, and resuming it elsewhere gives the uninterrupted bytes.
final class FaultInjectionTests: XCTestCase {
    private var scratch: URL!
    private let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tiny_trainable")

    override func setUpWithError() throws { scratch = try makeScratchDirectory("pissa-faults") }

    private func arguments(out: String) -> [String] {
        ["train", "--model", fixture.path, "--data", fixture.appendingPathComponent("train.jsonl").path,
         "--out", out, "--steps", "12", "--batch-size", "2", "--lr", "5e-3", "--rank", "4", "--init", "pissa_niter_2",
         "--save-every", "1", "--seed", "3"]
    }

    private func reference() throws -> Data {
        let run = scratch.appendingPathComponent("uninterrupted")
        let r = try PissaProcess.run(arguments(out: run.path))
        XCTAssertEqual(r.status, 0, r.stderr)
        return try Data(contentsOf: run.appendingPathComponent("adapter/adapter_model.safetensors"))
    }

    private func entries(_ run: URL) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: run.appendingPathComponent("checkpoints").path)) ?? []
    }

    private func completeSteps(_ run: URL) -> [Int] {
        entries(run).compactMap { $0.hasPrefix("step-") ? Int($0.dropFirst(5)) : nil }.sorted()
    }

    /// Checks every complete checkpoint: its files exist, each safetensors header is whole JSON
    /// whose tensors tile the file exactly, the JSON files decode.
    private func assertLoadable(_ run: URL, file: StaticString = #filePath, line: UInt = #line) {
        let steps = completeSteps(run)
        XCTAssertFalse(steps.isEmpty, "no complete checkpoint in \(run.lastPathComponent): \(entries(run))", file: file, line: line)
        for step in steps {
            let dir = run.appendingPathComponent("checkpoints/step-\(step)")
            for name in ["adapter/adapter_model.safetensors", "optimizer.safetensors"] {
                XCTAssertNil(Self.safetensorsProblem(dir.appendingPathComponent(name)), "step-\(step)/\(name)", file: file, line: line)
            }
            for name in ["adapter/adapter_config.json", "trainer_state.json", "optimizer_state.json"] {
                let data = (try? Data(contentsOf: dir.appendingPathComponent(name))) ?? Data()
                XCTAssertNotNil(try? JSONSerialization.jsonObject(with: data), "step-\(step)/\(name) is whole JSON", file: file, line: line)
            }
        }
    }

    func testKillsAtRandomPointsAndDuringCheckpointWritesResumeToIdenticalAdapter() throws {
        let expected = try reference()
        var generator = SystemRandomNumberGenerator()
        // Two kills the moment a checkpoint's temporary directory appears, one at a random time.
        let plans: [(name: String, duringWrite: Bool)] = [("write-a", true), ("random", false), ("write-b", true)]
        var killedDuringWrite = 0
        for plan in plans {
            let run = scratch.appendingPathComponent(plan.name)
            let target = Int.random(in: 2...10, using: &generator)
            let process = try PissaProcess.start(arguments(out: run.path))
            let deadline = Date().addingTimeInterval(120)
            var sawTemporary = false
            if plan.duringWrite {
                // Poll for `.step-N.tmp-…` with N ≥ target, then kill while it is being written.
                while process.isRunning, Date() < deadline {
                    let temporary = entries(run).contains { name in
                        name.hasPrefix(".step-") && (Int(name.dropFirst(6).prefix { $0.isNumber }) ?? 0) >= target
                    }
                    if temporary { sawTemporary = true; break }
                    usleep(200)
                }
            } else {
                while process.isRunning, completeSteps(run).isEmpty, Date() < deadline { usleep(1_000) }
                usleep(UInt32.random(in: 0...1_500_000, using: &generator))
            }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            if sawTemporary, entries(run).contains(where: { $0.hasPrefix(".step-") }) { killedDuringWrite += 1 }
            assertLoadable(run)
            let before = completeSteps(run)
            let resumed = try PissaProcess.run(["train", "--resume", run.path, "--model", fixture.path])
            XCTAssertEqual(resumed.status, 0, resumed.stderr)
            XCTAssertEqual(try Data(contentsOf: run.appendingPathComponent("adapter/adapter_model.safetensors")), expected,
                           "\(plan.name): killed with checkpoints \(before), resumed")
            XCTAssertFalse(entries(run).contains { $0.hasPrefix(".step-") }, "resume removes the unfinished checkpoint")
        }
        // The kill lands inside the write only when the poll wins the race; say how often it did.
        print("FaultInjectionTests: \(killedDuringWrite) of 2 kills left an unfinished checkpoint directory behind")
    }

    func testFullDiskStopsWithAClearErrorAndKeepsTheLastGoodCheckpoint() throws {
        let expected = try reference()
        let mount = scratch.appendingPathComponent("mnt"), saved = scratch.appendingPathComponent("saved")
        try FileManager.default.createDirectory(at: mount, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: saved, withIntermediateDirectories: true)
        let probe = try Self.shell(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs \"$1\"", "sh", mount.path])
        guard probe.status == 0 else { throw XCTSkip("no private tmpfs here (unshare -rm: \(probe.stderr)); full-disk case not run") }

        // Inside the namespace: mount a 200 KiB tmpfs, train into it, copy what is left out.
        let script = #"mount -t tmpfs -o size=200k tmpfs "$1" || exit 99; shift; out="$1"; saved="$2"; shift 2; "$@"; s=$?; cp -a "$out" "$saved/"; exit $s"#
        let out = mount.appendingPathComponent("run").path
        let r = try Self.shell(["unshare", "-rm", "sh", "-c", script, "sh", mount.path, out, saved.path, PissaProcess.binary.path]
                               + arguments(out: out))
        XCTAssertNotEqual(r.status, 99, "mount failed: \(r.stderr)")
        XCTAssertNotEqual(r.status, 0, "a run on a full disk fails")
        XCTAssertFalse(r.signaled)
        XCTAssertTrue(r.stderr.contains("No space left on device"), r.stderr)
        XCTAssertTrue(r.stderr.contains(out), "the message names the path: \(r.stderr)")
        let run = saved.appendingPathComponent("run")
        assertLoadable(run)
        XCTAssertFalse(entries(run).contains { $0.hasPrefix(".step-") }, "the failed checkpoint's temporary directory is removed")
        // The kept checkpoint is good: resumed on a disk with room, the run ends as if uninterrupted.
        let resumed = try PissaProcess.run(["train", "--resume", run.path, "--model", fixture.path])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertEqual(try Data(contentsOf: run.appendingPathComponent("adapter/adapter_model.safetensors")), expected)
    }

    // MARK: - Helpers

    /// Nil when `url` is a whole safetensors file: 8-byte length, JSON header, tensors ending at the file's end.
    static func safetensorsProblem(_ url: URL) -> String? {
        guard let data = try? Data(contentsOf: url), data.count >= 8 else { return "missing or shorter than 8 bytes" }
        let n = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard n <= UInt64(data.count - 8) else { return "header length \(n) past the end" }
        guard let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + Int(n)))) as? [String: Any] else {
            return "header is not a JSON object"
        }
        let ends = header.compactMap { ($0.value as? [String: Any])?["data_offsets"] as? [Int] }.map { $0[1] }
        guard ends.max() ?? 0 == data.count - 8 - Int(n) else { return "data section is \(data.count - 8 - Int(n)) bytes, tensors end at \(ends.max() ?? 0)" }
        return nil
    }

    static func shell(_ arguments: [String]) throws -> PissaProcess.Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.environment = PissaProcess.environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return PissaProcess.Result(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                                   stderr: String(decoding: stderr, as: UTF8.self), signaled: process.terminationReason == .uncaughtSignal)
    }
}
