import Foundation
import TestSupport
import XCTest

/// Runs the built `pissa` binary as a user would: exit codes, messages, files left behind.
final class InitCommandTests: XCTestCase {
    private var scratch: URL!
    private let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    private var tinyLlama: String { repository.appendingPathComponent("Tests/AdaptersTests/Fixtures/tiny_llama_f32").path }

    override func setUpWithError() throws { scratch = try makeScratchDirectory("pissa-cli") }

    private func pissa(_ arguments: [String]) throws -> PissaProcess.Result { try PissaProcess.run(arguments) }

    func testHelpListsTheOptions() throws {
        let r = try pissa(["init", "--help"])
        XCTAssertEqual(r.status, 0)
        for option in ["--model", "--out", "--rank", "--alpha", "--init", "--targets", "--oversample", "--use-rslora", "--seed", "--json", "--check"] {
            XCTAssertTrue(r.stdout.contains(option), option)
        }
    }

    func testInvalidArgumentsAreValidationErrors() throws {
        let out = scratch.appendingPathComponent("o").path
        for (args, message) in [
            (["--rank", "0"], "--rank must be at least 1"),
            (["--init", "svd"], "svd"),
            (["--alpha=0"], "--alpha must be a finite number greater than 0 (got 0.0)"),
        ] {
            let r = try pissa(["init", "--model", tinyLlama, "--out", out] + args)
            XCTAssertEqual(r.status, 64, "\(args): validation errors exit with EX_USAGE")
            XCTAssertTrue(r.stderr.contains(message), "\(args): \(r.stderr)")
        }
        let missing = try pissa(["init", "--model", scratch.appendingPathComponent("nope").path, "--out", out])
        XCTAssertEqual(missing.status, 64)
        XCTAssertTrue(missing.stderr.contains("does not exist"), missing.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    func testJSONSummaryDescribesEveryModule() throws {
        let out = scratch.appendingPathComponent("run").path
        let r = try pissa(["init", "--model", tinyLlama, "--out", out, "--rank", "4", "--init", "pissa", "--check", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let modules = try XCTUnwrap(json["modules"] as? [[String: Any]])
        XCTAssertEqual(modules.count, 14)
        for m in modules {
            XCTAssertNotNil(m["shape"])
            XCTAssertLessThan(try XCTUnwrap(m["reconstructionError"] as? Double), 1e-6)
            XCTAssertLessThan(try XCTUnwrap(m["rankProductError"] as? Double), 1e-5)
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/pissa_init/adapter_config.json"))
        XCTAssertTrue(r.stderr.contains("[14/14]"), "progress goes to standard error: \(r.stderr)")
    }

    /// `init` works by tensor names on any model, so it says what it matched, layer by layer.
    func testSummarySaysWhichModulesWereAdapted() throws {
        let out = scratch.appendingPathComponent("run").path
        let r = try pissa(["init", "--model", tinyLlama, "--out", out, "--rank", "2", "--targets", "q_proj,down_proj"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let line = try XCTUnwrap(r.stdout.split(separator: "\n").first { $0.hasPrefix("adapted:") }, r.stdout)
        XCTAssertEqual(Set(line.dropFirst("adapted:".count).split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }),
                       ["model.layers.*.self_attn.q_proj ×2", "model.layers.*.mlp.down_proj ×2"], r.stdout)
    }

    func testMalformedModelFileIsAClearErrorWithNothingLeftBehind() throws {
        let model = scratch.appendingPathComponent("broken")
        try FileManager.default.createDirectory(at: model, withIntermediateDirectories: true)
        var bytes = Data(count: 8)
        bytes[0] = 0xFF; bytes[1] = 0xFF   // header length 65535, past the end of an 8-byte file
        try bytes.write(to: model.appendingPathComponent("model.safetensors"))
        let out = scratch.appendingPathComponent("out").path
        let r = try pissa(["init", "--model", model.path, "--out", out])
        XCTAssertFalse(r.signaled, "no crash")
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("model.safetensors"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "no partial output")
    }
}
