import Foundation
import TestSupport
import XCTest

/// Issue 17's rules on arguments and messages, through the binary: what cannot be right is
/// refused up front (exit 64) with one line naming the option and the allowed range, negative
/// numbers are read as values, nothing is written on a refusal, no signal or raw Foundation /
/// Swift error ever reaches the user, and `--verbose` adds the details.
final class ArgumentValidationTests: XCTestCase {
    private var scratch: URL!
    private let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tiny_trainable")
    private var model: String { fixture.path }
    private var data: String { fixture.appendingPathComponent("train.jsonl").path }

    override func setUpWithError() throws { scratch = try makeScratchDirectory("pissa-arguments") }

    private func path(_ name: String) -> String { scratch.appendingPathComponent(name).path }

    /// Each of `cases` (extra arguments, message) run after `base` must exit 64 with the message,
    /// one error line, and leave `out` absent.
    private func refusedUpFront(_ base: [String], _ cases: [([String], String)], out: String? = nil,
                                file: StaticString = #filePath, line: UInt = #line) throws {
        for (extra, message) in cases {
            let r = try PissaProcess.run(base + extra)
            let label = (base + extra).joined(separator: " ")
            XCTAssertFalse(r.signaled, "\(label): signal", file: file, line: line)
            XCTAssertEqual(r.status, 64, "\(label): \(r.stderr)", file: file, line: line)
            XCTAssertTrue(r.stderr.contains(message), "\(label): expected '\(message)' in \(r.stderr)", file: file, line: line)
            XCTAssertEqual(r.stderr.split(separator: "\n").filter { $0.hasPrefix("Error:") }.count, 1, r.stderr, file: file, line: line)
            if let out { XCTAssertFalse(FileManager.default.fileExists(atPath: out), "\(label): wrote \(out)", file: file, line: line) }
        }
    }

    /// Issue: --lr inf and --alpha inf passed validation and failed late with a raw EncodingError,
    /// leaving RUN/checkpoints/; --epochs 0 trained a step; --lanes 0 was accepted by train only;
    /// --rank -1 said "Missing value". Plus the other numeric options of train.
    func testTrainRefusesWhatCannotBeRightUpFront() throws {
        let out = path("run")
        let maxLanes = ProcessInfo.processInfo.activeProcessorCount * 4
        try refusedUpFront(["train", "--model", model, "--data", data, "--out", out], [
            (["--lr", "inf"], "--lr must be a finite number greater than 0 (got inf)."),
            (["--lr", "nan"], "--lr must be a finite number greater than 0 (got nan)."),
            (["--lr", "-1e-3"], "--lr must be a finite number greater than 0 (got -0.001)."),
            (["--alpha", "inf"], "--alpha must be a finite number greater than 0 (got inf)."),
            (["--epochs", "0"], "--epochs must be a finite number greater than 0 and at most 1000000 (got 0.0)."),
            (["--epochs", "-1"], "--epochs must be a finite number greater than 0"),
            (["--lanes", "1000"], "--lanes must be in 1…\(maxLanes) (4 × the"),
            (["--lanes", "0"], "--lanes must be in 1…\(maxLanes)"),
            (["--rank", "-1"], "--rank must be at least 1 (got -1)."),
            (["--steps", "-5"], "--steps must be in 1…1000000000 (got -5)."),
            (["--batch-size", "0"], "--batch-size must be in 1…65536 (got 0)."),
            (["--grad-accum", "100000"], "--grad-accum must be in 1…65536 (got 100000)."),
            (["--max-seq-len", "1"], "--max-seq-len must be in 2…1048576 (got 1)."),
            (["--warmup-ratio", "1"], "--warmup-ratio must be a finite number of at least 0 and at most 0.999 (got 1.0)."),
            (["--weight-decay", "-0.1"], "--weight-decay must be a finite number of at least 0 (got -0.1)."),
            (["--max-grad-norm", "inf"], "--max-grad-norm must be a finite number greater than 0 (got inf)."),
            (["--keep-checkpoints", "0"], "--keep-checkpoints must be at least 1 (got 0)."),
            (["--save-every", "0"], "--save-every must be at least 1 (got 0)."),
            (["--oversample", "-1"], "--oversample must be in 0…65535 (got -1)."),
            (["--seed", "-1"], "The value '-1' is invalid for '--seed <seed>'"),
            (["--quant", "nf4", "--iters", "0"], "--iters must be in 1…1000 (got 0)"),
        ], out: out)
    }

    /// --lanes is 1…(cores × 4) in every command that takes it.
    func testLanesHaveOneRangeEverywhere() throws {
        let maxLanes = ProcessInfo.processInfo.activeProcessorCount * 4
        let message = "--lanes must be in 1…\(maxLanes) (4 × the \(ProcessInfo.processInfo.activeProcessorCount) cores of this machine; got \(maxLanes + 1))."
        for base in [["init", "--model", model, "--out", path("o")],
                     ["train", "--model", model, "--data", data, "--out", path("o")],
                     ["quant-error", "--model", model],
                     ["compare", "--model", model, "--data", data, "--out", path("o")],
                     ["bench", "train", "--model", model],
                     ["bench", "attention"]] {
            try refusedUpFront(base, [(["--lanes", "\(maxLanes + 1)"], message)], out: path("o"))
        }
        try refusedUpFront(["bench", "init", "--model", model], [(["--lanes", "2,\(maxLanes + 1)"], message)])
    }

    /// Issue: --temperature inf was accepted. And the other sampling options.
    func testGenerateRefusesWhatCannotBeRightUpFront() throws {
        try refusedUpFront(["generate", "--model", model, "--prompt", "hi"], [
            (["--temperature", "inf"], "--temperature must be a finite number of at least 0 and at most 100 (got inf)."),
            (["--temperature", "-1"], "--temperature must be a finite number of at least 0"),
            (["--temperature", "nan"], "(got nan)"),
            (["--top-p", "0"], "--top-p must be a finite number greater than 0 and at most 1 (got 0.0)."),
            (["--top-p", "1.5"], "--top-p must be"),
            (["--max-tokens", "0"], "--max-tokens must be in 1…1048576 (got 0)."),
        ])
    }

    /// Eval, init, data and compare options: the same style of message.
    func testOtherCommandsRefuseWhatCannotBeRightUpFront() throws {
        try refusedUpFront(["eval", "--model", model, "--data", data], [
            (["--stride", "0"], "--stride must be in 1…512 (got 0)."),
            (["--stride", "600"], "--stride must be in 1…512 (got 600)."),
            (["--limit", "0"], "--limit must be at least 1 (got 0)."),
            (["--batch-size", "-2"], "--batch-size must be in 1…65536 (got -2)."),
        ])
        try refusedUpFront(["init", "--model", model, "--out", path("o")], [
            (["--rank", "-1"], "--rank must be at least 1 (got -1)."),
            (["--alpha", "-inf"], "--alpha must be a finite number greater than 0 (got -inf)."),
            (["--targets", ","], "--targets names no module; try --targets all-linear."),
        ], out: path("o"))
        try refusedUpFront(["data", "math", "--out", path("o")], [
            (["--train", "-3"], "--train must be in 0…10000000 (got -3)."),
            (["--train", "0", "--test", "0"], "--train and --test are both 0"),
        ], out: path("o"))
        try refusedUpFront(["compare", "--model", model, "--data", data, "--out", path("o")], [
            (["--lr", "inf"], "--lr must be a finite number greater than 0 (got inf)."),
            (["--accuracy-limit", "-1"], "--accuracy-limit must be at least 0 (got -1)."),
        ], out: path("o"))
    }

    /// Issue: `--data DIR/` gave "NSCocoaErrorDomain error 256".
    func testADirectoryAsDataIsNamed() throws {
        let dir = fixture.path + "/"
        for base in [["train", "--model", model, "--out", path("run"), "--data", dir], ["eval", "--model", model, "--data", dir],
                     ["data", "inspect", "--model", model, "--data", dir]] {
            try refusedUpFront(base, [([], "--data \(dir) is a directory; pass a .")], out: path("run"))
        }
    }

    /// Issue: eval's message suggested --skip-bad-lines, which eval does not take. Train's does.
    func testOnlyCommandsWithSkipBadLinesSuggestIt() throws {
        let bad = scratch.appendingPathComponent("bad.jsonl")
        try Data("{\"prompt\": \"a\"}\n".utf8).write(to: bad)
        let eval = try PissaProcess.run(["eval", "--model", model, "--data", bad.path])
        XCTAssertEqual(eval.status, 1, eval.stderr)
        XCTAssertTrue(eval.stderr.contains("\(bad.path):1: missing key 'completion'"), eval.stderr)
        XCTAssertFalse(eval.stderr.contains("--skip-bad-lines"), eval.stderr)
        let train = try PissaProcess.run(["train", "--model", model, "--data", bad.path, "--out", path("run")])
        XCTAssertTrue(train.stderr.contains("(--skip-bad-lines skips such lines)"), train.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("run")), "a run that could not start leaves no directory")
        let inspect = try PissaProcess.run(["data", "inspect", "--model", model, "--data", bad.path])
        XCTAssertTrue(inspect.stderr.contains("(--skip-bad-lines skips such lines)"), inspect.stderr)
    }

    /// Issue: a prompt longer than the context died with SIGILL. It is refused, saying why and
    /// what the limit is (as transformers, the prompt is not truncated).
    func testAPromptPastTheContextIsRefusedNotASignal() throws {
        let prompt = String(repeating: "hello world ", count: 300)   // ≥ 600 tokens; the tiny model has 256 positions
        let r = try PissaProcess.run(["generate", "--model", model, "--prompt", prompt, "--max-tokens", "4"])
        XCTAssertFalse(r.signaled)
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("--prompt: the prompt is"), r.stderr)
        XCTAssertTrue(r.stderr.contains("but the model handles 256 positions"), r.stderr)
        XCTAssertTrue(r.stderr.contains("shorten the prompt to at most 255 tokens (it is not truncated"), r.stderr)
        // A prompt that fits, with more new tokens than positions left: generation stops at the end, and says so.
        let long = try PissaProcess.run(["generate", "--model", model, "--prompt", String(repeating: "hello ", count: 30),
                                         "--max-tokens", "500", "--json"])
        XCTAssertEqual(long.status, 0, long.stderr)
        XCTAssertTrue(long.stderr.contains("note: generation stops after"), long.stderr)
        // eval --task math with such a prompt: the record is named, no signal.
        let records = scratch.appendingPathComponent("math.jsonl")
        try Data("{\"prompt\": \"\(prompt)\", \"completion\": \"#### 1\"}\n".utf8).write(to: records)
        let math = try PissaProcess.run(["eval", "--model", model, "--data", records.path, "--task", "math"])
        XCTAssertFalse(math.signaled)
        XCTAssertTrue(math.stderr.contains("record 1: the prompt is"), math.stderr)
    }

    /// Issue: `train --lanes 1000` aborted on a 25 GB allocation. Lanes are bounded up front;
    /// sizes no lane count bounds are checked against the memory before anything is allocated.
    func testAllocationsAreCheckedBeforeAllocating() throws {
        let r = try PissaProcess.run(["train", "--model", model, "--data", data, "--out", path("run"), "--batch-size", "65536",
                                      "--max-seq-len", "256", "--grad-accum", "1"])
        XCTAssertFalse(r.signaled)
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("training would need"), r.stderr)
        XCTAssertTrue(r.stderr.contains("lower --batch-size, --max-seq-len or --lanes, or add --grad-checkpoint"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("run")), "nothing left behind")
        try refusedUpFront(["bench", "attention"], [(["--length", "1000000", "--sequences", "1000"], "would need")])
        let forward = try PissaProcess.run(["bench", "forward", "--model", model, "--tokens", "1000", "--repeats", "1"])
        XCTAssertFalse(forward.signaled)
        XCTAssertTrue(forward.stderr.contains("--tokens 1000 is more than the 256 positions"), forward.stderr)
    }

    /// Errors are one plain line; --verbose adds the details (every problem of a list).
    func testVerboseAddsTheDetailsOfAnError() throws {
        let config = scratch.appendingPathComponent("model")
        try FileManager.default.copyItem(at: fixture, to: config)
        try Data(#"{"model_type": "llama", "hidden_size": "wide"}"#.utf8).write(to: config.appendingPathComponent("config.json"))
        let plain = try PissaProcess.run(["eval", "--model", config.path, "--data", data])
        XCTAssertEqual(plain.status, 1)
        let lines = plain.stderr.split(separator: "\n").filter { !$0.isEmpty }
        XCTAssertEqual(lines.count, 1, plain.stderr)
        XCTAssertTrue(plain.stderr.contains("config.json: 'hidden_size' is not an integer"), plain.stderr)
        for raw in ["DecodingError", "NSCocoaErrorDomain", "Error Domain=", "CodingKeys"] { XCTAssertFalse(plain.stderr.contains(raw), plain.stderr) }
        let verbose = try PissaProcess.run(["eval", "--model", config.path, "--data", data, "--verbose"])
        XCTAssertEqual(verbose.status, 1)
        XCTAssertTrue(verbose.stderr.hasPrefix(lines[0] + "\n"), verbose.stderr)
        XCTAssertTrue(verbose.stderr.contains("\ndetails: "), verbose.stderr)
    }
}
