import Foundation
import TestSupport
import XCTest

/// `pissa convert`, `merge` and `export` as a user runs them: help, validation, malformed inputs
/// give clear errors and leave no output behind.
final class InteropCommandTests: XCTestCase {
    private var scratch: URL!
    private let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    private var tiny: String { repository.appendingPathComponent("Tests/Fixtures/tiny_trainable").path }
    private var otherTiny: String { repository.appendingPathComponent("Tests/AdaptersTests/Fixtures/tiny_llama_f32").path }

    override func setUpWithError() throws { scratch = try makeScratchDirectory("pissa-cli") }

    private func pissa(_ arguments: [String]) throws -> PissaProcess.Result { try PissaProcess.run(arguments) }
    private func path(_ name: String) -> String { scratch.appendingPathComponent(name).path }
    private func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: path(name)) }

    /// `pissa init` on a tiny model: OUT/pissa_init.
    private func initAdapter(model: String, out: String, targets: String = "all-linear") throws -> String {
        let r = try pissa(["init", "--model", model, "--out", path(out), "--rank", "2", "--init", "pissa", "--targets", targets])
        XCTAssertEqual(r.status, 0, r.stderr)
        return path(out) + "/pissa_init"
    }

    func testHelpListsTheOptions() throws {
        for (command, options) in [("convert", ["--initial", "--adapter", "--out", "--model", "--force", "--json"]),
                                   ("merge", ["--model", "--adapter", "--out", "--dtype"]),
                                   ("export", ["--adapter", "--model", "--format", "--out", "gguf-lora", "mlx"])] {
            let r = try pissa([command, "--help"])
            XCTAssertEqual(r.status, 0)
            for o in options { XCTAssertTrue(r.stdout.contains(o), "\(command): \(o)") }
        }
        XCTAssertTrue(try pissa(["train", "--help"]).stdout.contains("--convert"))
    }

    func testPathsOfTheWrongKindAreValidationErrors() throws {
        let file = path("file.txt"), directory = path("dir")
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for (arguments, message) in [
            (["merge", "--model", tiny, "--adapter", file, "--out", path("m")], "--adapter \(file) is a file; pass a PEFT adapter directory."),
            (["merge", "--model", tiny, "--adapter", directory, "--out", file], "--out \(file) is a file; pass a directory (it is created if needed)."),
            (["export", "--model", tiny, "--adapter", directory, "--format", "gguf-lora", "--out", directory],
             "--out \(directory) is a directory; pass a .gguf file name."),
            (["convert-model", "--model", directory, "--out", path("c")], "--model \(directory) is a directory; pass a GGUF file"),
        ] {
            let r = try pissa(arguments)
            XCTAssertEqual(r.status, 64, arguments.joined(separator: " "))
            XCTAssertTrue(r.stderr.contains(message), r.stderr)
        }
        XCTAssertFalse(exists("m") || exists("c"), "no output on a validation error")
    }

    func testConvertRefusesMissingAndMismatchedInputsWithoutOutput() throws {
        let full = try initAdapter(model: tiny, out: "a")
        let qOnly = try initAdapter(model: tiny, out: "b", targets: "q_proj")
        let missing = try pissa(["convert", "--initial", path("nope"), "--adapter", full, "--out", path("lora")])
        XCTAssertEqual(missing.status, 64)
        XCTAssertTrue(missing.stderr.contains("--initial \(path("nope")) does not exist"), missing.stderr)
        let r = try pissa(["convert", "--initial", full, "--adapter", qOnly, "--out", path("lora")])
        XCTAssertEqual(r.status, 1)
        XCTAssertFalse(r.signaled)
        XCTAssertTrue(r.stderr.contains("model.layers.0.mlp.down_proj: in the initial adapter only"), r.stderr)
        XCTAssertFalse(exists("lora"), "no partial output")
        let same = try pissa(["convert", "--initial", full, "--adapter", full, "--out", full])
        XCTAssertEqual(same.status, 64)
        XCTAssertTrue(same.stderr.contains("--out \(full) is the same place as --initial \(full)"), same.stderr)
    }

    func testConvertRefusesAQuantisedRunUnlessForced() throws {
        let initial = try initAdapter(model: tiny, out: "init")
        // A trained adapter from that start: one step of `train --adapter-path` on the residual.
        let trained = try pissa(["train", "--model", path("init"), "--data", tiny + "/train.jsonl", "--adapter-path", initial,
                                 "--out", path("trained"), "--steps", "1", "--batch-size", "2", "--lr", "1e-2"])
        XCTAssertEqual(trained.status, 0, trained.stderr)
        let run = scratch.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: initial, toPath: run.appendingPathComponent("pissa_init").path)
        try FileManager.default.copyItem(atPath: path("trained/adapter"), toPath: run.appendingPathComponent("adapter").path)
        try Data(#"{"quant": "nf4"}"#.utf8).write(to: run.appendingPathComponent("config.json"))
        let args = ["convert", "--initial", run.path + "/pissa_init", "--adapter", run.path + "/adapter", "--out", path("lora")]
        let refused = try pissa(args + ["--model", tiny])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("the residual was quantised"), refused.stderr)
        XCTAssertTrue(refused.stderr.contains("Measured ‖W_res − nf4(W_res)‖/‖W‖: mean"), refused.stderr)
        XCTAssertFalse(exists("lora"))
        let forced = try pissa(args + ["--force", "--json"])
        XCTAssertEqual(forced.status, 0, forced.stderr)
        XCTAssertTrue(forced.stderr.contains("warning: the residual was quantised"), forced.stderr)
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(forced.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(report["rank"] as? Int, 4)
        XCTAssertTrue(exists("lora/adapter_model.safetensors"))
    }

    func testABinAdapterIsAClearErrorEverywhere() throws {
        let bin = scratch.appendingPathComponent("bin")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        try Data(#"{"peft_type": "LORA", "r": 2, "lora_alpha": 2, "target_modules": ["q_proj"]}"#.utf8).write(to: bin.appendingPathComponent("adapter_config.json"))
        try Data([0x80, 0x02, 0x7d]).write(to: bin.appendingPathComponent("adapter_model.bin"))
        for args in [["merge", "--model", tiny, "--adapter", bin.path, "--out", path("out")],
                     ["export", "--model", tiny, "--adapter", bin.path, "--format", "gguf-lora", "--out", path("out")],
                     ["generate", "--model", tiny, "--adapter", bin.path, "--prompt", "hi", "--max-tokens", "2"]] {
            let r = try pissa(args)
            XCTAssertEqual(r.status, 1, "\(args[0]): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("adapter_model.bin: pickled .bin adapters are not supported"), "\(args[0]): \(r.stderr)")
            XCTAssertFalse(exists("out"), "\(args[0]): no output")
        }
    }

    func testAnAdapterForAnotherModelNamesTheModules() throws {
        let foreign = try initAdapter(model: otherTiny, out: "foreign")
        for args in [["merge", "--model", tiny, "--adapter", foreign, "--out", path("out")],
                     ["export", "--model", tiny, "--adapter", foreign, "--format", "mlx", "--out", path("out")]] {
            let r = try pissa(args)
            XCTAssertEqual(r.status, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains("model.layers.0.self_attn.k_proj: adapter 32×64 (out×in) does not fit the weight [16, 32]"), r.stderr)
            XCTAssertFalse(exists("out"), "no partial output")
        }
    }

    func testMergeAndExportWriteTheirFiles() throws {
        let adapter = try initAdapter(model: tiny, out: "a")
        let merge = try pissa(["merge", "--model", tiny, "--adapter", adapter, "--out", path("merged"), "--dtype", "bf16", "--json"])
        XCTAssertEqual(merge.status, 0, merge.stderr)
        for f in ["model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"] { XCTAssertTrue(exists("merged/" + f), f) }
        XCTAssertFalse(exists("merged/train.jsonl"), "only model files are copied")
        let gguf = try pissa(["export", "--model", tiny, "--adapter", adapter, "--format", "gguf-lora", "--out", path("a.gguf")])
        XCTAssertEqual(gguf.status, 0, gguf.stderr)
        XCTAssertEqual(try Data(contentsOf: scratch.appendingPathComponent("a.gguf")).prefix(4), Data("GGUF".utf8))
        let mlx = try pissa(["export", "--model", tiny, "--adapter", adapter, "--format", "mlx", "--out", path("mlx")])
        XCTAssertEqual(mlx.status, 0, mlx.stderr)
        XCTAssertTrue(exists("mlx/adapters.safetensors") && exists("mlx/adapter_config.json"))
        let wrongOut = try pissa(["export", "--model", tiny, "--adapter", adapter, "--format", "gguf-lora", "--out", path("mlx")])
        XCTAssertEqual(wrongOut.status, 64)
        XCTAssertTrue(wrongOut.stderr.contains("is a directory"), wrongOut.stderr)
    }

    func testTrainConvertWritesTheConvertedLoRA() throws {
        let r = try pissa(["train", "--model", tiny, "--data", tiny + "/train.jsonl", "--out", path("run"), "--steps", "2", "--batch-size", "2",
                           "--lr", "1e-2", "--rank", "2", "--init", "pissa", "--convert"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("converted for the original model: \(path("run"))/lora_converted (r = 4, lora_alpha = 4.0)"), r.stdout)
        let config = try String(contentsOfFile: path("run/lora_converted/adapter_config.json"), encoding: .utf8)
        XCTAssertTrue(config.contains("\"init_lora_weights\" : true"), config)
    }

    /// `pissa eval --adapter RUN/adapter` on the run's own model: the adapter was trained on a
    /// residual that only existed in memory, so it is applied as its LoRA conversion — the same
    /// loss as evaluating `pissa convert`'s output, and not the raw adapter on the original.
    func testEvalOfAPiSSARunAdapterOnTheOriginalModelAppliesItsConversion() throws {
        let trained = try pissa(["train", "--model", tiny, "--data", tiny + "/train.jsonl", "--out", path("run"), "--steps", "2",
                                 "--batch-size", "2", "--lr", "1e-2", "--rank", "2", "--init", "pissa", "--convert"])
        XCTAssertEqual(trained.status, 0, trained.stderr)
        func nll(_ adapter: String) throws -> (Double, String) {
            let r = try pissa(["eval", "--model", tiny, "--data", tiny + "/train.jsonl", "--adapter", adapter, "--json"])
            XCTAssertEqual(r.status, 0, r.stderr)
            let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            return (try XCTUnwrap(json["nll"] as? Double), r.stderr)
        }
        let (run, note) = try nll(path("run/adapter"))
        let (converted, silent) = try nll(path("run/lora_converted"))
        XCTAssertEqual(run, converted, accuracy: 1e-5 * converted)
        XCTAssertTrue(note.contains("applied as adapter − pissa_init"), note)
        XCTAssertFalse(silent.contains("note:"), silent)

        // Outside its run directory the adapter is applied as it is (e.g. on a residual model).
        try FileManager.default.copyItem(atPath: path("run/adapter"), toPath: path("loose"))
        let (raw, _) = try nll(path("loose"))
        XCTAssertGreaterThan(abs(raw - converted), 1e-3 * converted, "the raw adapter on the original model is another model")
    }
}
