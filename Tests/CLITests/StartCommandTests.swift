import Foundation
import TestSupport
import XCTest

/// Every start that rewrites the base, and DoRA, through the binary: a short run with
/// `--convert` gives a rank-2r LoRA on the original model, and the run's adapter on its own
/// model, that LoRA and the model with it merged all score the data alike; exports refuse DoRA
/// by name.
final class StartCommandTests: XCTestCase {
    private var scratch: URL!
    private let tiny = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tiny_trainable").path

    override func setUpWithError() throws { scratch = try makeScratchDirectory("pissa-starts") }

    private func path(_ name: String) -> String { scratch.appendingPathComponent(name).path }

    private func run(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let r = try PissaProcess.run(arguments)
        XCTAssertEqual(r.status, 0, "\(arguments.joined(separator: " ")): \(r.stderr)", file: file, line: line)
        return r.stdout
    }

    /// The `nll …` figure `pissa eval` prints.
    private func nll(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let out = try run(["eval", "--data", tiny + "/train.jsonl"] + arguments, file: file, line: line)
        return out.split(separator: "·").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? out
    }

    private func checkConversion(_ name: String, _ start: [String], convertedRank: Int = 8, file: StaticString = #filePath, line: UInt = #line) throws {
        let runDir = path("run-\(name)")
        _ = try run(["train", "--model", tiny, "--data", tiny + "/train.jsonl", "--out", runDir, "--rank", "4", "--steps", "2",
                     "--lr", "1e-2", "--convert"] + start, file: file, line: line)
        let converted = runDir + "/lora_converted"
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: converted + "/adapter_config.json"))) as! [String: Any]
        XCTAssertEqual(config["r"] as? Int, convertedRank, "\(name): rank 2r (r for a zero-B start)", file: file, line: line)
        let own = try nll(["--model", tiny, "--adapter", runDir + "/adapter"], file: file, line: line)
        let lora = try nll(["--model", tiny, "--adapter", converted], file: file, line: line)
        _ = try run(["merge", "--model", tiny, "--adapter", converted, "--out", path("merged-\(name)")], file: file, line: line)
        let merged = try nll(["--model", path("merged-\(name)")], file: file, line: line)
        let base = try nll(["--model", tiny], file: file, line: line)
        XCTAssertEqual(own, lora, "\(name): the run's adapter = its LoRA conversion on the original model", file: file, line: line)
        XCTAssertEqual(lora, merged, "\(name): merged = model + LoRA", file: file, line: line)
        XCTAssertNotEqual(own, base, "\(name): training moved the model", file: file, line: line)
    }

    func testOLoRAAndMiLoRAConvertToLoRAOnTheOriginal() throws {
        try checkConversion("olora", ["--init", "olora"])
        try checkConversion("milora", ["--init", "milora"])
    }

    /// The data-driven starts learn from --calib-data (train defaults to --data): CorDA and
    /// LoRA-GA rewrite the base and convert to rank 2r; EVA's zero-B start converts to itself.
    func testCalibratedStartsConvertToLoRAOnTheOriginal() throws {
        try checkConversion("corda", ["--init", "corda", "--corda-method", "kpm", "--calib-batches", "2"])
        try checkConversion("lora_ga", ["--init", "lora_ga", "--calib-data", tiny + "/train.jsonl", "--calib-batches", "2"])
        try checkConversion("eva", ["--init", "eva", "--calib-batches", "2"], convertedRank: 4)
    }

    func testCalibrationOptionsAreChecked() throws {
        for (arguments, message) in [
            (["init", "--model", tiny, "--out", path("i"), "--init", "corda"], "--init corda is made from data: pass --calib-data FILE"),
            (["init", "--model", tiny, "--out", path("i"), "--init", "pissa", "--calib-data", tiny + "/train.jsonl"],
             "--calib-data is the data of --init corda, eva or lora_ga"),
            (["init", "--model", tiny, "--out", path("i"), "--init", "eva", "--calib-data", tiny + "/train.jsonl", "--eva-rho", "0.5"],
             "--eva-rho must be a finite number of at least 1"),
            (["train", "--model", tiny, "--data", tiny + "/train.jsonl", "--out", path("t"), "--init", "lora_ga", "--calib-batches", "0"],
             "--calib-batches must be in 1…1000000 (got 0)."),
        ] {
            let r = try PissaProcess.run(arguments)
            XCTAssertEqual(r.status, 64, arguments.joined(separator: " "))
            XCTAssertTrue(r.stderr.contains(message), r.stderr)
        }
    }

    func testDoRAConvertsAndMergesAndExportsRefuseIt() throws {
        try checkConversion("dora", ["--init", "pissa", "--use-dora"])
        let adapter = path("run-dora/lora_converted")
        for (format, out) in [("gguf-lora", path("x.gguf")), ("mlx", path("mlx"))] {
            let r = try PissaProcess.run(["export", "--model", tiny, "--adapter", adapter, "--format", format, "--out", out])
            XCTAssertNotEqual(r.status, 0)
            XCTAssertTrue(r.stderr.contains("is a DoRA adapter (lora_magnitude_vector)"), r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), "\(format): nothing written")
        }
        let refused = try PissaProcess.run(["train", "--model", tiny, "--data", tiny + "/train.jsonl", "--out", path("full"),
                                            "--method", "full", "--use-dora"])
        XCTAssertEqual(refused.status, 64)
        XCTAssertTrue(refused.stderr.contains("--use-dora starts a DoRA adapter"), refused.stderr)
    }
}
