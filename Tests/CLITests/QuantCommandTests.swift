import Foundation
import TestSupport
import XCTest

/// `pissa init --quant nf4` and `pissa quant-error` as a user runs them: validation and outputs.
final class QuantCommandTests: XCTestCase {
    private var scratch: URL!
    private let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    private var tinyLlama: String { repository.appendingPathComponent("Tests/AdaptersTests/Fixtures/tiny_llama_f32").path }

    override func setUpWithError() throws { scratch = try makeScratchDirectory("pissa-cli-q") }

    func testInvalidQuantCombinationsAreValidationErrors() throws {
        let out = scratch.appendingPathComponent("o").path
        for (args, message) in [
            (["--quant", "nf4", "--iters", "0"], "--iters must be in 1…1000 (got 0)"),
            (["--dequantized"], "--dequantized needs --quant nf4"),
            (["--iters", "5"], "--iters needs --quant nf4"),
            (["--double-quant"], "--double-quant needs --quant nf4"),
            (["--init", "loftq"], "--init loftq quantises the residual"),
            (["--quant", "nf3"], "nf3"),
        ] {
            let r = try PissaProcess.run(["init", "--model", tinyLlama, "--out", out] + args)
            XCTAssertEqual(r.status, 64, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(message), "\(args): \(r.stderr)")
        }
        let bad = try PissaProcess.run(["quant-error", "--model", tinyLlama, "--iters", "0"])
        XCTAssertEqual(bad.status, 64)
        XCTAssertTrue(bad.stderr.contains("--iters must be"), bad.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    func testQPiSSAInitWritesTheLinear4bitLayout() throws {
        let out = scratch.appendingPathComponent("q").path
        let r = try PissaProcess.run(["init", "--model", tinyLlama, "--out", out, "--rank", "4", "--init", "pissa",
                                      "--quant", "nf4", "--iters", "2", "--double-quant", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let modules = try XCTUnwrap(json["modules"] as? [[String: Any]])
        XCTAssertEqual(modules.count, 14)
        for m in modules { XCTAssertLessThan(try XCTUnwrap(m["quantizationError"] as? Double), 0.08) }
        let config = try String(contentsOfFile: out + "/config.json", encoding: .utf8)
        XCTAssertTrue(config.contains("\"quant_method\": \"bitsandbytes\""), config)
        XCTAssertTrue(config.contains("\"bnb_4bit_use_double_quant\": true"), config)
        let header = try String(contentsOfFile: out + "/model.safetensors", encoding: .isoLatin1).prefix(20000)
        XCTAssertTrue(header.contains("model.layers.0.self_attn.q_proj.weight.quant_state.bitsandbytes__nf4"))
        XCTAssertTrue(header.contains("model.layers.0.self_attn.q_proj.weight.nested_absmax"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/pissa_init/adapter_model.safetensors"))
    }

    func testQuantErrorPrintsATablePerModuleType() throws {
        let r = try PissaProcess.run(["quant-error", "--model", tinyLlama, "--rank", "4", "--iters", "1,2", "--layers", "0"])
        XCTAssertEqual(r.status, 0, r.stderr)
        for type in ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj", "total"] {
            XCTAssertTrue(r.stdout.contains("| \(type) (1)") || (type == "total" && r.stdout.contains("| total (7)")), "\(type): \(r.stdout)")
        }
        XCTAssertTrue(r.stderr.contains("[7/7]"), r.stderr)
    }
}
