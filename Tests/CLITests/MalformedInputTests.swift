import Foundation
import TestSupport
import XCTest

/// Runs the `pissa` binary on every malformed input of `Tests/CLITests/Malformed` (written by
/// `scripts/reference/make_malformed_cli.py`, listed in its `cases.json`) and on the library-level
/// files of `Tests/FormatsTests/Malformed`. Each run must exit non-zero without a signal, print one
/// plain line naming the file and the problem (no Foundation or Swift error dump), and leave no
/// output (nor temporary files) behind.
///
/// `PISSA_MALFORMED_TABLE=path` also writes a Markdown table of every case and its message
/// (the table in docs/RELIABILITY.md).
final class MalformedInputTests: XCTestCase {
    private struct Case: Decodable, Sendable {
        var parser: String
        var file: String
        var command: String
        var expect: [String]
        /// What the message must name when it is not the file itself.
        var names: String?
    }

    private typealias Outcome = MalformedOutcome

    private enum Job: Sendable {
        case listed(Case)
        case library(name: String, gguf: Bool)
    }

    private static let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    private static let corpus = tests.appendingPathComponent("CLITests/Malformed")
    private static let fixture = tests.appendingPathComponent("Fixtures/tiny_trainable")
    private static let formats = tests.appendingPathComponent("FormatsTests/Malformed")

    private var scratch: URL!

    override func setUpWithError() throws { scratch = try makeScratchDirectory("pissa-malformed") }

    func testEveryMalformedInputIsAClearErrorWithNothingLeftBehind() throws {
        _ = try PissaProcess.run(["--help"])   // skips when the binary is not built
        let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: Self.corpus.appendingPathComponent("cases.json")))
        XCTAssertGreaterThanOrEqual(cases.count, 60)
        for parser in ["safetensors", "gguf", "config", "adapter", "tokenizer", "jsonl"] {
            XCTAssertGreaterThanOrEqual(cases.filter { $0.parser == parser }.count, 10, "at least ten cases for \(parser)")
        }
        var jobs: [Job] = cases.map { .listed($0) }
        jobs += try Self.listing(Self.formats, suffix: ".safetensors").map { .library(name: $0, gguf: false) }
        jobs += try Self.listing(Self.formats.appendingPathComponent("gguf"), suffix: ".gguf").map { .library(name: $0, gguf: true) }
        let all = jobs

        let outcomes = Outcomes(count: all.count)
        let root = scratch!
        DispatchQueue.concurrentPerform(iterations: all.count) { i in
            let directory = root.appendingPathComponent("case-\(i)")
            do {
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                switch all[i] {
                case let .listed(c): outcomes.set(i, try Self.run(c, in: directory))
                case let .library(name, gguf): outcomes.set(i, try Self.runLibraryFile(name, gguf: gguf, in: directory))
                }
            } catch {
                outcomes.set(i, Outcome(label: "\(all[i])", message: "", failures: ["could not run: \(error)"]))
            }
        }
        for outcome in outcomes.all {
            for failure in outcome.failures { XCTFail("\(outcome.label): \(failure)") }
        }
        if let path = ProcessInfo.processInfo.environment["PISSA_MALFORMED_TABLE"] {
            let rows = outcomes.all.map { o in
                let message = o.message.replacingOccurrences(of: root.path, with: "…")
                    .replacingOccurrences(of: Self.tests.path, with: "Tests")
                    .replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
                return "| `\(o.label)` | \(message.prefix(300)) |"
            }
            try (["| case | message |", "|---|---|"] + rows).joined(separator: "\n").appending("\n")
                .write(toFile: path, atomically: true, encoding: .utf8)
        }
    }

    // MARK: - One case

    private static func run(_ c: Case, in directory: URL) throws -> Outcome {
        let fm = FileManager.default
        let input = Self.corpus.appendingPathComponent(c.file)
        let out = directory.appendingPathComponent("out")
        let model = directory.appendingPathComponent("model")
        let data = Self.fixture.appendingPathComponent("train.jsonl").path
        let train = ["train", "--data", data, "--out", out.path, "--steps", "1", "--batch-size", "1", "--rank", "2"]
        var arguments: [String]
        var named = input.lastPathComponent
        switch c.command {
        case "init":
            if c.parser == "gguf" {
                arguments = ["init", "--model", input.path, "--out", out.path, "--rank", "2", "--init", "pissa"]
            } else {
                try fm.createDirectory(at: model, withIntermediateDirectories: true)
                try fm.copyItem(at: Self.corpus.appendingPathComponent("micro/config.json"), to: model.appendingPathComponent("config.json"))
                try fm.copyItem(at: input, to: model.appendingPathComponent("model.safetensors"))
                arguments = ["init", "--model", model.path, "--out", out.path, "--rank", "2", "--init", "pissa"]
                named = "model.safetensors"
            }
        case "init-rank-too-large", "init-unknown-target":
            let micro = Self.corpus.appendingPathComponent("micro").path
            arguments = ["init", "--model", micro, "--out", out.path, "--init", "pissa"]
                + (c.command == "init-rank-too-large" ? ["--rank", "6"] : ["--rank", "2", "--targets", "nope_proj"])
            named = ""
        case "train-config", "tokenize":
            try fm.copyItem(at: Self.fixture, to: model)
            let replaced = c.command == "tokenize" ? "tokenizer.json" : "config.json"
            try fm.removeItem(at: model.appendingPathComponent(replaced))
            try fm.copyItem(at: input, to: model.appendingPathComponent(replaced))
            arguments = c.command == "tokenize" ? ["tokenize", "--model", model.path, "--text", "Hello"] : train + ["--model", model.path]
            named = replaced
        case "train-adapter":
            arguments = train + ["--model", Self.fixture.path, "--adapter-path", input.path]
        case "train-data":
            arguments = train + ["--model", Self.fixture.path]
            arguments[arguments.firstIndex(of: data)!] = input.path
        default:
            return Outcome(label: c.file, message: "", failures: ["unknown command \(c.command) in cases.json"])
        }
        if let names = c.names { named = names }
        let before = try Self.snapshot(directory)
        let result = try PissaProcess.run(arguments)
        var failures = Self.check(result, naming: named, expect: c.expect)
        if fm.fileExists(atPath: out.path) { failures.append("left output behind in \(out.lastPathComponent)/") }
        let after = try Self.snapshot(directory)
        if after != before { failures.append("files appeared: \(after.subtracting(before).sorted())") }
        return Outcome(label: c.file, message: Self.message(result), failures: failures)
    }

    private static func runLibraryFile(_ name: String, gguf: Bool, in directory: URL) throws -> Outcome {
        let fm = FileManager.default
        let out = directory.appendingPathComponent("out")
        var model = Self.formats.appendingPathComponent("gguf/\(name)")
        if !gguf {
            model = directory.appendingPathComponent("model")
            try fm.createDirectory(at: model, withIntermediateDirectories: true)
            try fm.copyItem(at: Self.corpus.appendingPathComponent("micro/config.json"), to: model.appendingPathComponent("config.json"))
            try fm.copyItem(at: Self.formats.appendingPathComponent(name), to: model.appendingPathComponent("model.safetensors"))
        }
        let before = try Self.snapshot(directory)
        let result = try PissaProcess.run(["init", "--model", model.path, "--out", out.path, "--rank", "2", "--init", "pissa"])
        var failures = Self.check(result, naming: gguf ? name : "model.safetensors", expect: [])
        if fm.fileExists(atPath: out.path) { failures.append("left output behind") }
        if try Self.snapshot(directory) != before { failures.append("files appeared") }
        return Outcome(label: (gguf ? "FormatsTests/Malformed/gguf/" : "FormatsTests/Malformed/") + name,
                       message: Self.message(result), failures: failures)
    }

    // MARK: - Helpers

    private static func check(_ r: PissaProcess.Result, naming file: String, expect: [String]) -> [String] {
        var failures: [String] = []
        if r.signaled { failures.append("killed by signal \(r.status)") }
        if r.status == 0 { failures.append("exit status 0") }
        let text = r.stderr
        if !file.isEmpty, !text.contains(file) { failures.append("message does not name \(file): \(text)") }
        for needle in expect where !text.contains(needle) { failures.append("message lacks '\(needle)': \(text)") }
        if text.contains("Fatal error") || text.contains("Stack dump") { failures.append("crash report: \(text)") }
        // Issue 17: one plain line, never a Foundation error domain or a Swift error type's dump.
        for raw in ["NSCocoaErrorDomain", "Error Domain=", "DecodingError", "EncodingError", "CodingKeys("] where text.contains(raw) {
            failures.append("raw error text '\(raw)': \(text)")
        }
        let errorLines = text.split(separator: "\n").filter { $0.hasPrefix("Error:") }
        if errorLines.count != 1 || text.split(separator: "\n").contains(where: { $0.hasPrefix("  ") }) {
            failures.append("not exactly one error line: \(text)")
        }
        return failures
    }

    /// The error line(s) the user sees, without progress lines.
    private static func message(_ r: PissaProcess.Result) -> String {
        r.stderr.split(separator: "\n").filter { $0.hasPrefix("Error") || $0.hasPrefix("error") || $0.hasPrefix("  ") }
            .joined(separator: " ").trimmingCharacters(in: .whitespaces)
    }

    private static func listing(_ directory: URL, suffix: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(suffix) && !$0.hasPrefix("reference") }.sorted()
    }

    /// Every path under `directory`, relative to it.
    private static func snapshot(_ directory: URL) throws -> Set<String> {
        guard let e = FileManager.default.enumerator(atPath: directory.path) else { return [] }
        return Set(e.compactMap { $0 as? String })
    }
}

private struct MalformedOutcome {
    var label: String
    var message: String
    var failures: [String]
}

/// Results written from concurrent jobs, one slot each.
private final class Outcomes: @unchecked Sendable {
    private var slots: [MalformedOutcome?]
    private let lock = NSLock()
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ value: MalformedOutcome) { lock.lock(); slots[i] = value; lock.unlock() }
    var all: [MalformedOutcome] { lock.lock(); defer { lock.unlock() }; return slots.compactMap { $0 } }
}
