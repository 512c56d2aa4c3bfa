import Foundation
import TestSupport
import XCTest

/// Issue 17's rules on outputs, through the binary: no command writes where it reads (links,
/// `..` and relative paths resolved), a non-empty `--out` is replaced only when it holds the
/// same command's output (or with `--overwrite`, keeping other files), a run directory is
/// reused only by `--resume` or `--overwrite`, one writer per directory, and a killed writer's
/// temporaries are removed by the next. Every refusal exits non-zero without a signal and says
/// what to type instead.
final class OutputSafetyTests: XCTestCase {
    private var scratch: URL!
    private let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tiny_trainable")

    /// A copy of the tiny model, so that byte-identity checks cannot touch the fixture.
    private var model: String { path("model") }
    private var data: String { path("model/train.jsonl") }

    override func setUpWithError() throws {
        scratch = try makeScratchDirectory("pissa-outputs")
        try FileManager.default.copyItem(at: fixture, to: scratch.appendingPathComponent("model"))
    }

    private func path(_ name: String) -> String { scratch.appendingPathComponent(name).path }
    private func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: path(name)) }
    private func contents(_ name: String) -> [String: Data] { CommandKillTests.contents(URL(fileURLWithPath: path(name))) }

    private func pissa(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> PissaProcess.Result {
        let r = try PissaProcess.run(arguments)
        XCTAssertFalse(r.signaled, "\(arguments.joined(separator: " ")): killed by a signal", file: file, line: line)
        return r
    }

    private func succeeds(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try pissa(arguments, file: file, line: line)
        XCTAssertEqual(r.status, 0, "\(arguments.joined(separator: " ")): \(r.stderr)", file: file, line: line)
    }

    /// Runs `arguments`, which must fail with every one of `messages` on standard error.
    private func refused(_ arguments: [String], _ messages: String..., status: Int32? = nil,
                         file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try pissa(arguments, file: file, line: line)
        XCTAssertNotEqual(r.status, 0, "\(arguments.joined(separator: " ")) succeeded", file: file, line: line)
        if let status { XCTAssertEqual(r.status, status, r.stderr, file: file, line: line) }
        for m in messages { XCTAssertTrue(r.stderr.contains(m), "missing '\(m)' in: \(r.stderr)", file: file, line: line) }
    }

    private func initArguments(_ out: String, _ extra: [String] = []) -> [String] {
        ["init", "--model", model, "--out", out, "--rank", "2", "--init", "pissa"] + extra
    }

    private func trainArguments(_ out: String, steps: Int = 2) -> [String] {
        ["train", "--model", model, "--data", data, "--out", out, "--steps", "\(steps)", "--batch-size", "2", "--rank", "2",
         "--init", "pissa", "--lr", "1e-2", "--save-every", "1"]
    }

    // MARK: - Never where it reads

    /// Issue: `train --out M` wrote its config.json over the model's; `--out LINK` (a link to the
    /// model) let init and merge overwrite it. Also `..` spellings, an --out inside or around an input.
    func testNoCommandWritesWhereItReads() throws {
        try FileManager.default.createDirectory(atPath: path("withvalid"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: data, toPath: path("withvalid/valid.jsonl"))
        let before = contents("model")
        try FileManager.default.createSymbolicLink(atPath: path("LINK"), withDestinationPath: model)
        try succeeds(initArguments(path("start")))
        let adapter = path("start/pissa_init")
        for (arguments, message) in [
            (trainArguments(model), "--out \(model) is the same place as --model \(model)"),
            (initArguments(path("LINK")), "--out \(path("LINK")) is the same place as --model \(model) (both are"),
            (["merge", "--model", model, "--adapter", adapter, "--out", path("LINK")], "is the same place as --model"),
            (initArguments(path("model/../model")), "is the same place as --model"),
            (initArguments(path("model/sub")), "lies inside --model"),
            (initArguments(scratch.path), "contains --model"),
            (trainArguments(path("model/run")), "lies inside --model"),
            (trainArguments(path("start")) + ["--adapter-path", adapter], "contains --adapter-path"),
            (trainArguments(path("withvalid")) + ["--valid", path("withvalid/valid.jsonl")], "contains --valid"),
            (["merge", "--model", model, "--adapter", adapter, "--out", adapter], "is the same place as --adapter"),
            (["export", "--model", model, "--adapter", adapter, "--format", "gguf-lora", "--out", adapter + "/lora.gguf"], "lies inside --adapter"),
            (["export", "--model", model, "--adapter", adapter, "--format", "mlx", "--out", path("LINK")], "is the same place as --model"),
            (["convert", "--initial", adapter, "--adapter", adapter, "--out", path("start")], "contains --initial"),
        ] {
            try refused(arguments, message, "pissa never writes where it reads", status: 64)
        }
        XCTAssertEqual(contents("model"), before, "the model is byte-identical")
        XCTAssertFalse(exists("model/sub") || exists("model/run") || exists("run"))
    }

    // MARK: - Non-empty outputs

    /// Issue: an existing non-empty --out was overwritten without a word.
    func testAForeignNonEmptyOutIsRefusedAndOverwriteKeepsOtherFiles() throws {
        let user = scratch.appendingPathComponent("user")
        try FileManager.default.createDirectory(at: user, withIntermediateDirectories: true)
        try Data("mine".utf8).write(to: user.appendingPathComponent("config.json"))
        try Data("notes".utf8).write(to: user.appendingPathComponent("notes.txt"))
        for arguments in [initArguments(user.path), ["merge", "--model", model, "--adapter", fixture.path, "--out", user.path],
                          trainArguments(user.path), ["data", "math", "--out", user.path, "--train", "2", "--test", "1"]] {
            try refused(arguments, "--out \(user.path) is not empty and was not written by pissa (it holds config.json, notes.txt)",
                        "add --overwrite", status: 64)
        }
        XCTAssertEqual(try String(contentsOf: user.appendingPathComponent("config.json"), encoding: .utf8), "mine")
        try succeeds(initArguments(user.path, ["--overwrite"]))
        XCTAssertTrue(exists("user/pissa_init/adapter_model.safetensors"))
        XCTAssertEqual(try String(contentsOf: user.appendingPathComponent("notes.txt"), encoding: .utf8), "notes", "other files are kept")
        XCTAssertNotEqual(try String(contentsOf: user.appendingPathComponent("config.json"), encoding: .utf8), "mine", "--overwrite replaces names")
    }

    /// The same command's own output is replaced whole without --overwrite: files it wrote and
    /// does not write again are gone, files the user added are kept.
    func testOwnOutputOfTheSameKindIsReplacedWholeKeepingTheUsersFiles() throws {
        try succeeds(initArguments(path("o"), ["--init", "lora"]))
        XCTAssertTrue(exists("o/lora_init"))
        try Data("kept".utf8).write(to: scratch.appendingPathComponent("o/README.md"))
        try succeeds(initArguments(path("o")))
        XCTAssertTrue(exists("o/pissa_init"))
        XCTAssertFalse(exists("o/lora_init"), "the previous output's adapter is replaced, not left beside the new one")
        XCTAssertEqual(try String(contentsOfFile: path("o/README.md"), encoding: .utf8), "kept")
        try succeeds(["data", "math", "--out", path("d"), "--train", "3", "--test", "1"])
        try succeeds(["data", "math", "--out", path("d"), "--train", "2", "--test", "1", "--seed", "1"])
        XCTAssertEqual(try String(contentsOfFile: path("d/train.jsonl"), encoding: .utf8).split(separator: "\n").count, 2)
    }

    /// Another command's output is not replaced without --overwrite, and the message names it.
    func testAnotherCommandsOutputIsRefused() throws {
        try succeeds(initArguments(path("start")))
        try succeeds(["merge", "--model", model, "--adapter", path("start/pissa_init"), "--out", path("merged")])
        try refused(initArguments(path("merged")), "holds a model written by `pissa merge` or `pissa convert-model`",
                    "not the output of `pissa init`", "add --overwrite", status: 64)
        try succeeds(initArguments(path("start2")))
        try refused(["merge", "--model", model, "--adapter", path("start/pissa_init"), "--out", path("start2")],
                    "holds the output of `pissa init`", status: 64)
        try succeeds(initArguments(path("merged"), ["--overwrite"]))
    }

    /// A GGUF-LoRA output file: a GGUF adapter is replaced, any other file only with --overwrite.
    func testExportReplacesOnlyItsOwnKindOfFile() throws {
        try succeeds(initArguments(path("start")))
        let export = ["export", "--model", model, "--adapter", path("start/pissa_init"), "--format", "gguf-lora", "--out", path("a.gguf")]
        try succeeds(export)
        try succeeds(export)
        try Data("my notes".utf8).write(to: scratch.appendingPathComponent("a.gguf"))
        try refused(export, "--out \(path("a.gguf")) exists and is not a GGUF adapter written by pissa", "add --overwrite", status: 64)
        try succeeds(export + ["--overwrite"])
        XCTAssertEqual(try Data(contentsOf: scratch.appendingPathComponent("a.gguf")).prefix(4), Data("GGUF".utf8))
    }

    // MARK: - Run directories

    /// Issue: a second `train --out R` kept the first run's checkpoints, and `--resume R` then
    /// resumed the old run. Now R is reused only with --resume or --overwrite, and --overwrite
    /// deletes the old checkpoints first.
    func testARunDirectoryIsReusedOnlyByResumeOrOverwrite() throws {
        let run = path("run")
        try succeeds(trainArguments(run, steps: 4))
        try refused(trainArguments(run, steps: 2), "--out \(run) already holds a training run",
                    "pissa train --resume \(run)", "--overwrite", status: 64)
        XCTAssertTrue(exists("run/checkpoints/step-4"), "the refused command touched nothing")
        try refused(["train", "--resume", run, "--overwrite"], "--overwrite starts a new run and --resume continues one", status: 64)
        try succeeds(trainArguments(run, steps: 2) + ["--overwrite"])
        let steps = try FileManager.default.contentsOfDirectory(atPath: path("run/checkpoints")).filter { $0.hasPrefix("step-") }.sorted()
        XCTAssertEqual(steps, ["step-1", "step-2"], "the old run's checkpoints are gone")
        try succeeds(["train", "--resume", run, "--steps", "3"])
        XCTAssertTrue(exists("run/checkpoints/step-3"))
    }

    /// A run directory written before runs recorded their kind (config.json, no lock file) is
    /// still recognised; --resume of a directory without a run says so.
    func testOldRunsAndNonRunsAreRecognised() throws {
        let run = path("old")
        try succeeds(trainArguments(run))
        try FileManager.default.removeItem(atPath: path("old/.pissa.lock"))
        try refused(trainArguments(run), "already holds a training run", status: 64)
        try FileManager.default.createDirectory(atPath: path("empty"), withIntermediateDirectories: true)
        try refused(["train", "--resume", path("empty")], "--resume \(path("empty")): no readable config.json")
        try refused(["train", "--resume", data], "--resume \(data) is a file; pass a run directory", status: 64)
    }

    /// --overwrite on a directory with the user's files keeps them: only the run's names go.
    func testTrainOverwriteKeepsTheUsersFiles() throws {
        let run = scratch.appendingPathComponent("run")
        try succeeds(trainArguments(run.path))
        try Data("keep me".utf8).write(to: run.appendingPathComponent("notes.txt"))
        try succeeds(trainArguments(run.path, steps: 1) + ["--overwrite"])
        XCTAssertEqual(try String(contentsOf: run.appendingPathComponent("notes.txt"), encoding: .utf8), "keep me")
    }

    // MARK: - Locks

    /// A training run in `name` that goes on until killed, once it has written its config.
    private func startHolder(_ name: String) throws -> Process {
        let process = try PissaProcess.start(trainArguments(path(name), steps: 100_000))
        addTeardownBlock { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
        let deadline = Date().addingTimeInterval(60)
        while !exists(name + "/config.json") && process.isRunning && Date() < deadline { usleep(10_000) }
        XCTAssertTrue(process.isRunning, "the holder still trains")
        return process
    }

    /// Issue: two `train --out R` at once both exited 0 with a mixed run. The second fails at
    /// once naming the first's pid; once the first is killed, its lock never blocks.
    func testASecondWriterFailsAtOnceNamingTheHolderAndAStaleLockNeverBlocks() throws {
        let run = path("run")
        let holder = try startHolder("run")
        let pid = "pid \(holder.processIdentifier)"
        let t0 = Date()
        try refused(trainArguments(run) + ["--overwrite"], "--out \(run) is being written by another pissa process (\(pid))")
        XCTAssertLessThan(Date().timeIntervalSince(t0), 5, "fails at once")
        try refused(["train", "--resume", run], "--resume \(run) is being written by another pissa process (\(pid))")
        kill(holder.processIdentifier, SIGKILL)
        holder.waitUntilExit()
        XCTAssertTrue(exists("run/.pissa.lock"), "the killed holder's lock file stays")
        try succeeds(["train", "--resume", run, "--steps", "2"])
    }

    /// Two commands writing one init output: the second is refused while the first holds it.
    func testInitRefusesAnOutputAnotherProcessHolds() throws {
        let holder = try startHolder("o")
        try refused(initArguments(path("o"), ["--overwrite"]), "is being written by another pissa process (pid \(holder.processIdentifier))")
    }

    // MARK: - Temporaries of killed writers

    /// Issue: a kill during `pissa init` left a hidden `OUT/.model.safetensors.tmp-*` that no rerun
    /// removed. The next writer of OUT removes it (and staging directories beside OUT) and says so.
    func testTheNextWriterRemovesStaleTemporariesAndSaysSo() throws {
        try succeeds(initArguments(path("o")))
        let stale = [path("o/.model.safetensors.tmp-3k2j1"), path("o/pissa_init/.adapter_model.safetensors.tmp-9x")]
        for file in stale { try Data(count: 1024).write(to: URL(fileURLWithPath: file)) }
        try FileManager.default.createDirectory(atPath: path(".o.tmp-abc/pissa_init"), withIntermediateDirectories: true)
        let r = try pissa(initArguments(path("o")))
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("note: removed 3 temporaries left by an interrupted run"), r.stderr)
        XCTAssertEqual(CommandKillTests.temporaries(in: scratch, near: URL(fileURLWithPath: path("o"))), [])

        try succeeds(trainArguments(path("run")))
        try FileManager.default.createDirectory(atPath: path("run/checkpoints/.step-3.tmp-zz/adapter"), withIntermediateDirectories: true)
        let resumed = try pissa(["train", "--resume", path("run"), "--steps", "3"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("removed 1 temporary left by an interrupted run: \(path("run/checkpoints/.step-3.tmp-zz"))"),
                      resumed.stderr)
    }

    // MARK: - Outputs that cannot be written

    /// Issue: a read-only or file --out gave a raw NSError.
    func testUnwritableOutputsAreOnePlainLine() throws {
        try Data("x".utf8).write(to: scratch.appendingPathComponent("file"))
        try refused(initArguments(path("file")), "--out \(path("file")) is a file; pass a directory", status: 64)
        try refused(initArguments(path("file/sub")), "--out \(path("file/sub")): cannot create the directory: Not a directory")
        try refused(trainArguments(path("file/run")), "cannot create the directory: Not a directory")
        try refused(initArguments("/proc/version/out"), "cannot create the directory")
        // A read-only file system, where a private mount namespace is allowed.
        let mount = scratch.appendingPathComponent("ro")
        try FileManager.default.createDirectory(at: mount, withIntermediateDirectories: true)
        let script = #"mount -t tmpfs -o ro tmpfs "$1" || exit 99; shift; exec "$@""#
        let r = try FaultInjectionTests.shell(["unshare", "-rm", "sh", "-c", script, "sh", mount.path, PissaProcess.binary.path]
                                              + initArguments(mount.appendingPathComponent("out").path))
        guard r.status != 99 else { throw XCTSkip("no private read-only tmpfs here: \(r.stderr)") }
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("cannot create the directory: Read-only file system; choose a writable --out"), r.stderr)
        for text in [r.stderr] { XCTAssertFalse(text.contains("Domain") || text.contains("NSCocoa"), text) }
    }

    /// A loop of links is reported as one, for inputs and outputs alike; a dangling link names
    /// its target.
    func testSymbolicLinkLoopsAndDanglingLinksAreNamed() throws {
        try FileManager.default.createSymbolicLink(atPath: path("a"), withDestinationPath: path("b"))
        try FileManager.default.createSymbolicLink(atPath: path("b"), withDestinationPath: path("a"))
        try FileManager.default.createSymbolicLink(atPath: path("dangling"), withDestinationPath: path("nowhere"))
        try refused(initArguments(path("a")), "--out \(path("a")) is a loop of symbolic links", status: 64)
        try refused(["init", "--model", path("a"), "--out", path("o")], "--model \(path("a")) is a loop of symbolic links", status: 64)
        try refused(["eval", "--model", model, "--data", path("a")], "--data \(path("a")) is a loop of symbolic links", status: 64)
        try refused(["eval", "--model", path("dangling"), "--data", data],
                    "--model \(path("dangling")) is a symbolic link to \(path("nowhere")), which does not exist", status: 64)
        XCTAssertFalse(exists("o"))
    }
}
