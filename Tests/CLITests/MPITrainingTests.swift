import Formats
import Foundation
import TestSupport
import XCTest

/// Data-parallel training under `mpirun` (OpenMPI), on one machine with `--oversubscribe`, on
/// the tiny model: N ranks with batch B against one process with batch B, resuming with another
/// N, a rank killed with SIGKILL, refusals that stop every rank, and evaluation sharded over the
/// ranks. Skipped when `mpirun` is not installed, unless `PISSA_REQUIRE_ASSETS` is set (as
/// scripts/test.sh sets it: CI installs OpenMPI through scripts/setup.sh).
final class MPITrainingTests: XCTestCase {
    private var scratch: URL!
    private let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tiny_trainable")

    override func setUpWithError() throws {
        scratch = try makeScratchDirectory("pissa-mpi")
        _ = try MPIRun.launcher()
    }

    /// A constant learning rate, so that a run stopped at step k and resumed to n is the run of n steps.
    private func trainArguments(out: URL, steps: Int = 6, batch: Int = 4) -> [String] {
        ["train", "--model", fixture.path, "--data", fixture.appendingPathComponent("train.jsonl").path, "--out", out.path,
         "--steps", "\(steps)", "--batch-size", "\(batch)", "--lr", "5e-3", "--rank", "4", "--init", "pissa_niter_2",
         "--save-every", "1", "--seed", "3", "--schedule", "constant", "--warmup-steps", "0"]
    }

    // MARK: - Same result as one process

    func testTwoRanksMatchOneProcessWithTheSameGlobalBatch() throws {
        let one = scratch.appendingPathComponent("one"), oneLane = scratch.appendingPathComponent("one-lane")
        let two = scratch.appendingPathComponent("two"), twoAccum = scratch.appendingPathComponent("two-accum")
        let oneAccum = scratch.appendingPathComponent("one-accum")
        try check(PissaProcess.run(trainArguments(out: one) + ["--lanes", "2"]))
        try check(PissaProcess.run(trainArguments(out: oneLane) + ["--lanes", "1"]))
        let distributed = try MPIRun.run(ranks: 2, trainArguments(out: two) + ["--lanes", "1"])
        try check(distributed)
        XCTAssertTrue(distributed.stdout.contains("trained 6 steps"), distributed.stdout)
        // Two ranks split the batch as one process's two lanes do. One lane takes the whole batch
        // in one pass, whose products round otherwise; after 6 AdamW steps the largest relative
        // difference measured was 9.6e-6 with the full-row head and 1.6e-5 with the online one,
        // float rounding (the losses agree to 1e-8).
        try RunComparison.assertSame(two, one, tolerance: 1e-5)
        try RunComparison.assertSame(two, oneLane, tolerance: 5e-5)
        // The metrics count the global batch's tokens and say how many ranks trained.
        let metrics = try RunComparison.metrics(two)
        XCTAssertEqual(metrics.map { $0["ranks"] as? Int }, Array(repeating: 2, count: 6))
        XCTAssertEqual(metrics.map { $0["supervised_tokens"] as? Int }, try RunComparison.metrics(one).map { $0["supervised_tokens"] as? Int })
        // Rank 0 alone wrote the run: one metrics line per step.
        XCTAssertEqual(metrics.count, 6)

        try check(PissaProcess.run(trainArguments(out: oneAccum, batch: 2) + ["--grad-accum", "2"]))
        try check(MPIRun.run(ranks: 2, trainArguments(out: twoAccum, batch: 2) + ["--grad-accum", "2", "--lanes", "1"]))
        try RunComparison.assertSame(twoAccum, oneAccum, tolerance: 1e-5)
    }

    func testThreeRanksWithUnevenSharesMatchOneProcess() throws {
        let one = scratch.appendingPathComponent("one"), three = scratch.appendingPathComponent("three")
        try check(PissaProcess.run(trainArguments(out: one, steps: 3, batch: 5)))
        try check(MPIRun.run(ranks: 3, trainArguments(out: three, steps: 3, batch: 5) + ["--lanes", "1"]))
        try RunComparison.assertSame(three, one, tolerance: 1e-5)
    }

    // MARK: - Resume with another number of ranks

    func testResumeAcrossRankCounts() throws {
        let reference = scratch.appendingPathComponent("reference")
        try check(PissaProcess.run(trainArguments(out: reference, steps: 6)))
        // 2 ranks for 3 steps, then 1 process to 6.
        let down = scratch.appendingPathComponent("two-then-one")
        try check(MPIRun.run(ranks: 2, trainArguments(out: down, steps: 3) + ["--lanes", "1"]))
        let resumed = try PissaProcess.run(["train", "--resume", down.path, "--steps", "6"])
        try check(resumed)
        XCTAssertTrue(resumed.stderr.contains("resumed from the checkpoint of step 3"), resumed.stderr)
        try RunComparison.assertSame(down, reference, tolerance: 1e-5)
        // 1 process for 3 steps, then 2 ranks to 6.
        let up = scratch.appendingPathComponent("one-then-two")
        try check(PissaProcess.run(trainArguments(out: up, steps: 3)))
        try check(MPIRun.run(ranks: 2, ["train", "--resume", up.path, "--steps", "6", "--lanes", "1"]))
        try RunComparison.assertSame(up, reference, tolerance: 1e-5)
    }

    // MARK: - Faults

    func testKilledRankStopsTheJobAndTheRunResumes() throws {
        let reference = scratch.appendingPathComponent("reference")
        try check(PissaProcess.run(trainArguments(out: reference, steps: 12)))
        var generator = SystemRandomNumberGenerator()
        for attempt in 0..<2 {
            let run = scratch.appendingPathComponent("killed-\(attempt)")
            let log = scratch.appendingPathComponent("killed-\(attempt).log")
            let job = try MPIRun.start(ranks: 2, trainArguments(out: run, steps: 12) + ["--lanes", "1"], log: log)
            let killAfter = Int.random(in: 1...8, using: &generator)
            let deadline = Date().addingTimeInterval(120)
            while (RunComparison.checkpointSteps(run).last ?? 0) < killAfter && job.isRunning && Date() < deadline { usleep(2_000) }
            let ranks = MPIRun.ranks(of: job.processIdentifier)
            guard job.isRunning, ranks.count == 2 else {
                XCTFail("the job ended before the kill (attempt \(attempt)): \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
                continue
            }
            let victim = attempt % 2 == 0 ? ranks[1]! : ranks[0]!
            let killed = Date()
            kill(victim, SIGKILL)
            while job.isRunning && Date().timeIntervalSince(killed) < 60 { usleep(10_000) }
            XCTAssertFalse(job.isRunning, "mpirun still running 60 s after rank \(attempt % 2 == 0 ? 1 : 0) was killed")
            if job.isRunning { kill(job.processIdentifier, SIGKILL) }
            job.waitUntilExit()
            XCTAssertNotEqual(job.terminationStatus, 0, "the job must fail when a rank is killed")
            for (rank, pid) in ranks where pid != victim {
                XCTAssertFalse(MPIRun.isAlive(pid), "rank \(rank) (pid \(pid)) outlived the job")
            }
            // Only complete checkpoints carry a step-N name.
            let steps = RunComparison.checkpointSteps(run)
            XCTAssertFalse(steps.isEmpty)
            for step in steps {
                let dir = run.appendingPathComponent("checkpoints/step-\(step)")
                for name in ["trainer_state.json", "adapter/adapter_model.safetensors"] {
                    XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent(name).path), "step-\(step) lacks \(name)")
                }
            }
            let resumed = try PissaProcess.run(["train", "--resume", run.path])
            try check(resumed)
            XCTAssertTrue(resumed.stderr.contains("resumed from the checkpoint of step \(steps.last!)"), resumed.stderr)
            try RunComparison.assertSame(run, reference, tolerance: 1e-5, metricsFrom: steps.last! + 1)
        }
    }

    func testAFailureOnRankZeroStopsEveryRank() throws {
        let run = scratch.appendingPathComponent("run")
        try check(PissaProcess.run(trainArguments(out: run, steps: 1)))
        // Rank 0 alone reads the run's config.json and refuses another --model; rank 1, which
        // waits for those settings, must stop too, with a message, and the job end at once.
        let started = Date()
        let refused = try MPIRun.run(ranks: 2, ["train", "--resume", run.path, "--model", scratch.path, "--lanes", "1"])
        XCTAssertNotEqual(refused.status, 0, refused.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(started), 60)
        XCTAssertTrue(refused.stderr.contains("is not the run's model"), refused.stderr)
        XCTAssertTrue(refused.stderr.contains("rank 1: Error: stopped: rank 0 failed while reading the settings"), refused.stderr)
        XCTAssertEqual(RunComparison.checkpointSteps(run), [1])

        // A new run in a directory that holds one: refused while validating, before MPI starts.
        let again = try MPIRun.run(ranks: 2, trainArguments(out: run, steps: 1) + ["--lanes", "1"])
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.stderr.contains("already holds a training run"), again.stderr)
    }

    func testRanksWithDifferentDataRefuseToTrain() throws {
        // The same relative --data path names a different file in each rank's working directory.
        for (name, reversed) in [("a", false), ("b", true)] {
            let dir = scratch.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let lines = try String(contentsOf: fixture.appendingPathComponent("train.jsonl"), encoding: .utf8).split(separator: "\n")
            try ((reversed ? lines.reversed() : lines).joined(separator: "\n") + "\n")
                .write(to: dir.appendingPathComponent("data.jsonl"), atomically: true, encoding: .utf8)
        }
        let run = scratch.appendingPathComponent("run")
        var args = trainArguments(out: run, steps: 1) + ["--lanes", "1"]
        args[args.firstIndex(of: "--data")! + 1] = "data.jsonl"
        let result = try MPIRun.runMPMD([(args, scratch.appendingPathComponent("a")), (args, scratch.appendingPathComponent("b"))])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("the training data differs between rank 0 and rank 1"), result.stderr)
        XCTAssertTrue(RunComparison.checkpointSteps(run).isEmpty)
    }

    func testCommandsThatDoNotShareWorkRefuseToRunOnSeveralRanks() throws {
        let result = try MPIRun.run(ranks: 2, ["init", "--model", fixture.path, "--out", scratch.appendingPathComponent("init").path])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("pissa init runs as one process; start it without mpirun"), result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: scratch.appendingPathComponent("init").path))
    }

    // MARK: - Evaluation shards its work

    func testEvaluationOverRanksMatchesOneProcess() throws {
        let data = fixture.appendingPathComponent("train.jsonl").path
        let one = try PissaProcess.run(["eval", "--model", fixture.path, "--data", data, "--json"])
        try check(one)
        let two = try MPIRun.run(ranks: 3, ["eval", "--model", fixture.path, "--data", data, "--json", "--lanes", "1"])
        try check(two)
        let a = try RunComparison.json(one.stdout), b = try RunComparison.json(two.stdout)
        XCTAssertEqual(a["tokens"] as? Int, b["tokens"] as? Int)
        // One lane against two: the products round differently.
        let (x, y) = (try XCTUnwrap(a["nll"] as? Double), try XCTUnwrap(b["nll"] as? Double))
        XCTAssertEqual(x, y, accuracy: 1e-6 * abs(x))

        let text = scratch.appendingPathComponent("doc.txt")
        try String(repeating: "the quick brown fox jumps over the lazy dog. ", count: 40).write(to: text, atomically: true, encoding: .utf8)
        let args = ["eval", "--model", fixture.path, "--data", text.path, "--max-seq-len", "32", "--stride", "16", "--json"]
        let t1 = try PissaProcess.run(args), t2 = try MPIRun.run(ranks: 2, args + ["--lanes", "1"])
        try check(t1)
        try check(t2)
        let (c, d) = (try RunComparison.json(t1.stdout), try RunComparison.json(t2.stdout))
        XCTAssertEqual(c["tokens"] as? Int, d["tokens"] as? Int)
        XCTAssertEqual(try XCTUnwrap(c["nll"] as? Double), try XCTUnwrap(d["nll"] as? Double), accuracy: 1e-6)

        let math = scratch.appendingPathComponent("math.jsonl")
        let records = (0..<5).map { "{\"prompt\": \"What is \($0) + 2? \", \"completion\": \"#### \($0 + 2)\"}" }
        try (records.joined(separator: "\n") + "\n").write(to: math, atomically: true, encoding: .utf8)
        let margs = ["eval", "--model", fixture.path, "--data", math.path, "--task", "math", "--max-new-tokens", "4", "--json"]
        let m1 = try PissaProcess.run(margs), m2 = try MPIRun.run(ranks: 2, margs + ["--lanes", "1"])
        try check(m1)
        try check(m2)
        let (e, f) = (try RunComparison.json(m1.stdout), try RunComparison.json(m2.stdout))
        XCTAssertEqual(f["total"] as? Int, 5)
        XCTAssertEqual(e["correct"] as? Int, f["correct"] as? Int)
        XCTAssertEqual((e["samples"] as? [[String: Any]])?.first?["generated"] as? String,
                       (f["samples"] as? [[String: Any]])?.first?["generated"] as? String)
    }

    private struct CommandFailed: Error {}

    /// The command succeeded; else the failure is recorded and the test stops.
    private func check(_ r: PissaProcess.Result, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(r.status, 0, r.stderr, file: file, line: line)
        if r.status != 0 { throw CommandFailed() }
    }
}
