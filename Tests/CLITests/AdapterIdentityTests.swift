import Foundation
import TestSupport
import XCTest

/// Issue 17's rules on what adapters are, through the binary: `convert` refuses swapped,
/// identical or misplaced adapters and warns when training moved nothing; `--targets` with a
/// full module path adapts exactly that module in `init` and `train`, as PEFT would; a run's
/// initial adapter is found under each of its names (pissa_init, loftq_init, lora_init).
final class AdapterIdentityTests: XCTestCase {
    private var scratch: URL!
    private let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tiny_trainable")
    private var model: String { fixture.path }
    private var data: String { fixture.appendingPathComponent("train.jsonl").path }

    override func setUpWithError() throws { scratch = try makeScratchDirectory("pissa-adapters") }

    private func path(_ name: String) -> String { scratch.appendingPathComponent(name).path }

    private func run(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> PissaProcess.Result {
        let r = try PissaProcess.run(arguments)
        XCTAssertFalse(r.signaled, file: file, line: line)
        return r
    }

    private func train(_ out: String, _ extra: [String] = []) throws {
        let r = try run(["train", "--model", model, "--data", data, "--out", out, "--steps", "2", "--batch-size", "2", "--rank", "2",
                         "--lr", "1e-2", "--save-every", "1"] + extra)
        XCTAssertEqual(r.status, 0, r.stderr)
    }

    private func convert(_ initial: String, _ adapter: String, out: String = "lora") throws -> PissaProcess.Result {
        try run(["convert", "--initial", initial, "--adapter", adapter, "--out", path(out)])
    }

    /// Issue: `convert --initial RUN/adapter --adapter RUN/pissa_init` exited 0 with a result that
    /// undid the training; so did the same adapter twice.
    func testConvertRefusesSwappedAndIdenticalAdaptersAndSaysWhichIsWhich() throws {
        try train(path("run"), ["--init", "pissa"])
        let (initial, trained) = (path("run/pissa_init"), path("run/adapter"))
        let swapped = try convert(trained, initial)
        XCTAssertEqual(swapped.status, 1, swapped.stderr)
        XCTAssertTrue(swapped.stderr.contains("the adapters are swapped: --initial \(trained) is a trained adapter and --adapter \(initial) is an initial one"),
                      swapped.stderr)
        XCTAssertTrue(swapped.stderr.contains("run it as --initial \(initial) --adapter \(trained)"), swapped.stderr)
        let twice = try convert(initial, initial)
        XCTAssertEqual(twice.status, 1, twice.stderr)
        XCTAssertTrue(twice.stderr.contains("are the same adapter"), twice.stderr)
        // A copy of the start as the "trained" adapter: two starts.
        try FileManager.default.copyItem(atPath: initial, toPath: path("copy"))
        let copy = try convert(initial, path("copy"))
        XCTAssertEqual(copy.status, 1, copy.stderr)
        XCTAssertTrue(copy.stderr.contains("are the same adapter"), copy.stderr)
        // A trained adapter as --initial, another trained one as --adapter.
        let twoTrained = try convert(path("run/checkpoints/step-1/adapter"), trained)
        XCTAssertEqual(twoTrained.status, 1, twoTrained.stderr)
        XCTAssertTrue(twoTrained.stderr.contains("--initial \(path("run/checkpoints/step-1/adapter")) is a trained adapter, not the start"),
                      twoTrained.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("lora")), "no output from a refusal")
        // The right order converts, and a converted adapter is not converted again.
        XCTAssertEqual(try convert(initial, trained).status, 0)
        let again = try convert(initial, path("lora"), out: "lora2")
        XCTAssertTrue(again.stderr.contains("--adapter \(path("lora")) was written by `pissa convert`: it is already a LoRA"), again.stderr)
    }

    /// A start given as the trained adapter is refused even when it is not the run's own start.
    func testConvertRefusesAStartAsTheTrainedAdapter() throws {
        let a = try run(["init", "--model", model, "--out", path("a"), "--rank", "2", "--init", "pissa", "--seed", "1"])
        XCTAssertEqual(a.status, 0, a.stderr)
        let b = try run(["init", "--model", model, "--out", path("b"), "--rank", "2", "--init", "pissa_niter_1", "--seed", "2"])
        XCTAssertEqual(b.status, 0, b.stderr)
        let r = try convert(path("a/pissa_init"), path("b/pissa_init"))
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("--adapter \(path("b/pissa_init")) is an initial adapter"), r.stderr)
    }

    /// Issue: convert of an adapter whose training moved nothing exited 0 silently. It warns.
    func testConvertWarnsWhenTrainingMovedNothing() throws {
        try train(path("run"), ["--init", "pissa", "--lr", "1e-30"])
        let r = try convert(path("run/pissa_init"), path("run/adapter"))
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("warning: --adapter \(path("run/adapter")) equals --initial \(path("run/pissa_init")): training moved nothing"),
                      r.stderr)
    }

    /// Issue: `--targets model.layers.0.self_attn.q_proj` made init write target_modules ["q_proj"]
    /// and adapt every layer, while train refused it. Both adapt that one module, as PEFT matches
    /// it, and write it to target_modules as given.
    func testAFullModulePathTargetsExactlyThatModuleInInitAndTrain() throws {
        let target = "model.layers.0.self_attn.q_proj"
        let initialised = try run(["init", "--model", model, "--out", path("o"), "--rank", "2", "--targets", target, "--json"])
        XCTAssertEqual(initialised.status, 0, initialised.stderr)
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(initialised.stdout.utf8)) as? [String: Any])
        XCTAssertEqual((report["modules"] as? [[String: Any]])?.compactMap { $0["module"] as? String }, [target])
        try train(path("run"), ["--targets", target])
        for dir in ["o/pissa_init", "run/pissa_init", "run/adapter"] {
            let config = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path(dir + "/adapter_config.json"))))
                                       as? [String: Any])
            XCTAssertEqual(config["target_modules"] as? [String], [target], dir)
            let weights = try Data(contentsOf: URL(fileURLWithPath: path(dir + "/adapter_model.safetensors")))
            let names = String(decoding: weights.prefix(4096), as: UTF8.self)
            XCTAssertTrue(names.contains("base_model.model.\(target).lora_A.weight"), dir)
            XCTAssertFalse(names.contains("layers.1."), "\(dir): only layer 0 is adapted")
        }
        // A suffix keeps its PEFT meaning (every layer), written as given.
        try train(path("suffix"), ["--targets", "self_attn.q_proj"])
        let config = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path("suffix/adapter/adapter_config.json"))))
                                   as? [String: Any])
        XCTAssertEqual(config["target_modules"] as? [String], ["self_attn.q_proj"])
    }

    /// Issue (with 19): eval's run detection knew only pissa_init and --convert no loftq_init.
    func testARunsInitialAdapterIsFoundUnderEachName() throws {
        try train(path("lora"), ["--init", "lora", "--convert"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: path("lora/lora_init/adapter_config.json")))
        XCTAssertTrue(FileManager.default.fileExists(atPath: path("lora/lora_converted/adapter_config.json")))
        let r = try run(["train", "--model", model, "--data", data, "--out", path("loftq"), "--steps", "1", "--batch-size", "2",
                         "--rank", "2", "--init", "loftq", "--quant", "nf4", "--convert"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("--convert: the residual was quantised"), "loftq_init is the run's start: \(r.stderr)")
        let eval = try run(["eval", "--model", model, "--data", data, "--adapter", path("loftq/adapter"), "--json"])
        XCTAssertEqual(eval.status, 0, eval.stderr)
        XCTAssertTrue(eval.stderr.contains("applied as adapter − loftq_init"), eval.stderr)
    }
}
