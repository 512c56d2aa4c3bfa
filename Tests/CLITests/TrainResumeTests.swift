import Foundation
import TestSupport
import XCTest

/// Training through the `pissa` binary on a tiny model: a run killed with SIGKILL and resumed
/// ends with the same adapter bytes as an uninterrupted run; Ctrl-C saves and exits cleanly.
final class TrainResumeTests: XCTestCase {
    private var scratch: URL!
    private let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tiny_trainable")

    override func setUpWithError() throws { scratch = try makeScratchDirectory("pissa-train") }

    private func arguments(out: URL) -> [String] {
        ["train", "--model", fixture.path, "--data", fixture.appendingPathComponent("train.jsonl").path,
         "--out", out.path, "--steps", "12", "--batch-size", "2", "--lr", "5e-3", "--rank", "4", "--init", "pissa_niter_2",
         "--save-every", "1", "--seed", "3"]
    }

    private func adapterBytes(_ run: URL) throws -> Data {
        try Data(contentsOf: run.appendingPathComponent("adapter/adapter_model.safetensors"))
    }

    private func checkpointSteps(_ run: URL) -> [Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: run.appendingPathComponent("checkpoints").path)) ?? []
        return names.compactMap { $0.hasPrefix("step-") ? Int($0.dropFirst(5)) : nil }.sorted()
    }

    func testKilledRunResumesToIdenticalAdapter() throws {
        let reference = scratch.appendingPathComponent("uninterrupted")
        let full = try PissaProcess.run(arguments(out: reference))
        XCTAssertEqual(full.status, 0, full.stderr)
        let expected = try adapterBytes(reference)

        var generator = SystemRandomNumberGenerator()
        for attempt in 0..<2 {
            let run = scratch.appendingPathComponent("killed-\(attempt)")
            let killAfter = Int.random(in: 2...9, using: &generator)
            let process = try PissaProcess.start(arguments(out: run))
            let deadline = Date().addingTimeInterval(120)
            while (checkpointSteps(run).last ?? 0) < killAfter && process.isRunning && Date() < deadline {
                usleep(2_000)
            }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            let steps = checkpointSteps(run)
            XCTAssertFalse(steps.isEmpty, "a complete checkpoint survives the kill")
            let resumed = try PissaProcess.run(["train", "--resume", run.path])   // the model comes from config.json
            XCTAssertEqual(resumed.status, 0, resumed.stderr)
            XCTAssertTrue(resumed.stderr.contains("resumed from the checkpoint of step"), resumed.stderr)
            XCTAssertEqual(try adapterBytes(run), expected, "killed after step ≥ \(killAfter) (checkpoints \(steps)), resumed")
        }
    }

    func testResumeTakesTheModelFromTheRunAndRefusesAnother() throws {
        let run = scratch.appendingPathComponent("run")
        var args = arguments(out: run)
        args[args.firstIndex(of: "12")!] = "2"
        let first = try PissaProcess.run(args)
        XCTAssertEqual(first.status, 0, first.stderr)
        let other = try PissaProcess.run(["train", "--resume", run.path, "--model", scratch.path])
        XCTAssertEqual(other.status, 64, other.stderr)
        XCTAssertTrue(other.stderr.contains("is not the run's model \(fixture.path)"), other.stderr)
        let same = try PissaProcess.run(["train", "--resume", run.path, "--model", fixture.path, "--steps", "3"])
        XCTAssertEqual(same.status, 0, same.stderr)
    }

    func testInterruptSavesACheckpointAndExitsCleanly() throws {
        let run = scratch.appendingPathComponent("interrupted")
        var args = arguments(out: run)
        args[args.firstIndex(of: "12")!] = "100000"
        let process = try PissaProcess.start(args)
        let deadline = Date().addingTimeInterval(120)
        while checkpointSteps(run).isEmpty && Date() < deadline { usleep(5_000) }
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        XCTAssertEqual(process.terminationReason, .exit)
        XCTAssertTrue(FileManager.default.fileExists(atPath: run.appendingPathComponent("adapter/adapter_config.json").path))
        XCTAssertFalse(checkpointSteps(run).isEmpty)
    }
}

/// Starting the built `pissa` binary.
enum PissaProcess {
    struct Result { var status: Int32; var stdout: String; var stderr: String; var signaled: Bool }

    /// `.build/<configuration>/`, where SwiftPM puts both the test bundle and the executables.
    static var binary: URL {
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            return bundle.bundleURL.deletingLastPathComponent().appendingPathComponent("pissa")
        }
        return Bundle.main.bundleURL.appendingPathComponent("pissa")
    }

    /// The children's environment: this process's, except that `PISSA_CHILD_ASAN_OPTIONS`, when
    /// set (scripts/sanitize.sh), replaces `ASAN_OPTIONS`, so the `pissa` processes check for leaks
    /// while the test runner (whose XCTest and Foundation objects live until exit) does not.
    static var environment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        if let options = environment["PISSA_CHILD_ASAN_OPTIONS"] { environment["ASAN_OPTIONS"] = options }
        return environment
    }

    static func start(_ arguments: [String]) throws -> Process {
        guard FileManager.default.isExecutableFile(atPath: binary.path) else { throw XCTSkip("\(binary.path) not built") }
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    static func run(_ arguments: [String]) throws -> Result {
        guard FileManager.default.isExecutableFile(atPath: binary.path) else { throw XCTSkip("\(binary.path) not built") }
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: stderr, as: UTF8.self), signaled: process.terminationReason == .uncaughtSignal)
    }
}
