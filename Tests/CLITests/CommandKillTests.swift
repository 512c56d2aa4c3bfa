import Foundation
import TestSupport
import XCTest

/// SIGKILL at random moments of `init`, `train`, `merge`, `convert` and `export` (20 seeds each,
/// tiny models): after every kill the inputs are byte-identical, the output is absent or complete
/// (byte-identical to an uninterrupted run's), and running the command again succeeds and leaves
/// no temporary anywhere. Half of the kills wait for a temporary to appear (a write in progress),
/// the other half land at a random time within the command's duration. Builds on
/// `FaultInjectionTests`, which kills training inside checkpoint writes.
final class CommandKillTests: XCTestCase {
    private static let seeds = 20
    private let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tiny_trainable")
    private var scratch: URL!

    override func setUpWithError() throws { scratch = try makeScratchDirectory("pissa-kills") }

    /// One command under test: its arguments for an output path, the inputs it reads, and how a
    /// rerun continues (training resumes its run).
    private struct Case {
        var name: String
        var arguments: (String) -> [String]
        var inputs: [URL]
        var rerun: (URL) -> [String]?   // nil: the same arguments
    }

    func testKilledCommandsLeaveInputsIntactAndOutputsAbsentOrComplete() throws {
        let model = fixture.path, data = fixture.appendingPathComponent("train.jsonl").path
        // Inputs made once: an initial adapter, a trained run, a converted LoRA.
        let start = scratch.appendingPathComponent("start"), run = scratch.appendingPathComponent("run")
        let lora = scratch.appendingPathComponent("lora")
        for arguments in [["init", "--model", model, "--out", start.path, "--rank", "2", "--init", "pissa"],
                          ["train", "--model", model, "--data", data, "--out", run.path, "--steps", "2", "--batch-size", "2",
                           "--rank", "2", "--init", "pissa", "--lr", "1e-2"],
                          ["convert", "--initial", run.path + "/pissa_init", "--adapter", run.path + "/adapter", "--out", lora.path]] {
            let r = try PissaProcess.run(arguments)
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        let train = ["train", "--model", model, "--data", data, "--steps", "6", "--batch-size", "2", "--rank", "2",
                     "--init", "pissa", "--lr", "1e-2", "--save-every", "1"]
        let cases = [
            Case(name: "init", arguments: { ["init", "--model", model, "--out", $0, "--rank", "2", "--init", "pissa"] },
                 inputs: [fixture], rerun: { _ in nil }),
            Case(name: "train", arguments: { train + ["--out", $0] }, inputs: [fixture],
                 rerun: { out in FileManager.default.fileExists(atPath: out.appendingPathComponent("config.json").path)
                     ? ["train", "--resume", out.path] : nil }),
            Case(name: "merge", arguments: { ["merge", "--model", model, "--adapter", lora.path, "--out", $0] },
                 inputs: [fixture, lora], rerun: { _ in nil }),
            Case(name: "convert", arguments: { ["convert", "--initial", run.path + "/pissa_init", "--adapter", run.path + "/adapter", "--out", $0] },
                 inputs: [run], rerun: { _ in nil }),
            Case(name: "export", arguments: { ["export", "--model", model, "--adapter", lora.path, "--format", "gguf-lora", "--out", $0] },
                 inputs: [fixture, lora], rerun: { _ in nil }),
        ]
        var generator = SystemRandomNumberGenerator()
        for c in cases {
            let inputsBefore = c.inputs.map(Self.contents)
            let reference = scratch.appendingPathComponent("\(c.name)-reference")
            let t0 = Date()
            let first = try PissaProcess.run(c.arguments(reference.path))
            XCTAssertEqual(first.status, 0, "\(c.name): \(first.stderr)")
            let duration = Date().timeIntervalSince(t0)
            let expected = Self.contents(reference)
            var midWrite = 0
            for seed in 0..<Self.seeds {
                let out = scratch.appendingPathComponent("\(c.name)-\(seed)")
                let process = try PissaProcess.start(c.arguments(out.path))
                if seed % 2 == 0 {
                    usleep(UInt32.random(in: 0...UInt32(duration * 1.2e6), using: &generator))
                } else {
                    // Wait for a write in progress (a temporary beside or inside the output), then a little more.
                    let deadline = Date().addingTimeInterval(30)
                    while process.isRunning, Date() < deadline, Self.temporaries(in: scratch, near: out).isEmpty { usleep(200) }
                    usleep(UInt32.random(in: 0...UInt32(duration * 0.3e6), using: &generator))
                }
                let wasRunning = process.isRunning
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                if wasRunning && !Self.temporaries(in: scratch, near: out).isEmpty { midWrite += 1 }
                let label = "\(c.name) seed \(seed)"
                XCTAssertEqual(c.inputs.map(Self.contents), inputsBefore, "\(label): inputs changed")
                if c.name == "train" {
                    assertResumable(out, label)
                } else {
                    let left = Self.contents(out)
                    XCTAssertTrue(left.isEmpty || left == expected, "\(label): output neither absent nor complete: \(left.keys.sorted())")
                }
                let again = try PissaProcess.run(c.rerun(out) ?? c.arguments(out.path))
                XCTAssertEqual(again.status, 0, "\(label) rerun: \(again.stderr)")
                XCTAssertEqual(Self.contents(out).filter { c.name != "train" || $0.key.hasPrefix("adapter/") },
                               expected.filter { c.name != "train" || $0.key.hasPrefix("adapter/") }, "\(label): rerun differs")
                XCTAssertEqual(Self.temporaries(in: scratch, near: out), [], "\(label): temporaries left after the rerun")
                XCTAssertEqual(c.inputs.map(Self.contents), inputsBefore, "\(label): inputs changed by the rerun")
            }
            print("CommandKillTests: \(c.name) (\(String(format: "%.2f", duration)) s uninterrupted): \(midWrite) of \(Self.seeds) kills left a write in progress")
        }
    }

    /// A killed run: every checkpoint named `step-N` whole, and an adapter, if any, whole.
    private func assertResumable(_ run: URL, _ label: String) {
        let checkpoints = run.appendingPathComponent("checkpoints")
        for name in (try? FileManager.default.contentsOfDirectory(atPath: checkpoints.path)) ?? [] where name.hasPrefix("step-") {
            for file in ["adapter/adapter_model.safetensors", "optimizer.safetensors"] {
                XCTAssertNil(FaultInjectionTests.safetensorsProblem(checkpoints.appendingPathComponent("\(name)/\(file)")), "\(label): \(name)/\(file)")
            }
        }
        let adapter = run.appendingPathComponent("adapter")
        if FileManager.default.fileExists(atPath: adapter.path) {
            XCTAssertNil(FaultInjectionTests.safetensorsProblem(adapter.appendingPathComponent("adapter_model.safetensors")), "\(label): adapter/")
            XCTAssertTrue(FileManager.default.fileExists(atPath: adapter.appendingPathComponent("adapter_config.json").path), "\(label): adapter/")
        }
    }

    /// Every file under `url` (or `url` itself, a file, under "") by relative path, with its bytes; the
    /// lock file (which records a pid) and the run's timings (metrics, curve) left out.
    static func contents(_ url: URL) -> [String: Data] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else { return [:] }
        guard isDirectory.boolValue else { return ["": (try? Data(contentsOf: url)) ?? Data()] }
        var out: [String: Data] = [:]
        for case let path as String in FileManager.default.enumerator(atPath: url.path) ?? FileManager.DirectoryEnumerator() {
            let file = url.appendingPathComponent(path)
            var dir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: file.path, isDirectory: &dir), !dir.boolValue else { continue }
            let name = file.lastPathComponent
            if name == ".pissa.lock" || name == "metrics.jsonl" || name == "loss.svg" { continue }
            out[path] = try? Data(contentsOf: file)
        }
        return out
    }

    /// This tool's temporaries (`.NAME.tmp-…`) inside `out` and beside it.
    static func temporaries(in scratch: URL, near out: URL) -> [String] {
        let beside = ((try? FileManager.default.contentsOfDirectory(atPath: scratch.path)) ?? [])
            .filter { $0.hasPrefix(".\(out.lastPathComponent).tmp-") }
        let inside = (FileManager.default.enumerator(atPath: out.path)?.compactMap { $0 as? String } ?? [])
            .filter { ($0 as NSString).lastPathComponent.contains(".tmp-") }
        return (beside + inside).sorted()
    }
}
