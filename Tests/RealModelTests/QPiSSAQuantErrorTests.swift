import Adapters
import Formats
import Foundation
import LinearAlgebra
import TestSupport
import XCTest

/// `pissa quant-error` and the QPiSSA start on SmolLM2-135M-Instruct (layers 0 and 15, r = 16,
/// T = 1 and 5) against scripts/reference/quant_error_reference.py (bitsandbytes NF4, torch SVD).
/// Run in release.
final class QPiSSAQuantErrorTests: XCTestCase {
    private struct Fixture: Decodable { var modules: [QuantErrorAnalysis.ModuleResult] }

    func testQPiSSABeatsQLoRAAndAgreesWithTheReference() throws {
        let gguf = try Assets.require(Assets.smolLM2GGUF)
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("pissa-qerr-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let report = try QuantErrorAnalysis.runOnGGUF(
            .init(model: gguf, ranks: [16], iterations: [1, 5], layers: [0, 15]), scratch: scratch)
        XCTAssertEqual(report.modules.count, 14)

        let byType = Dictionary(grouping: report.rows.filter { $0.type != "total" }, by: \.type)
        XCTAssertEqual(Set(byType.keys), ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                          "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"])
        for (type, rows) in byType {
            let t1 = try XCTUnwrap(rows.first { $0.iterations == 1 }), t5 = try XCTUnwrap(rows.first { $0.iterations == 5 })
            XCTAssertLessThan(t1.nuclear, t1.qloraNuclear, "\(type): QPiSSA (T 1) below QLoRA")
            XCTAssertLessThan(t5.nuclear, t1.nuclear, "\(type): 5 iterations below 1")
        }

        let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("quant_error_smollm2.json")
        let reference = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url)).modules
        XCTAssertEqual(reference.count, 14)
        var worst = 0.0
        for ref in reference {
            let ours = try XCTUnwrap(report.modules.first { $0.module == ref.module }, ref.module)
            let pairs = [(ours.qlora, ref.qlora, "qlora")] + zip(ours.entries, ref.entries).map { ($0.error, $1.error, "r\($0.rank) T\($0.iterations)") }
            for (o, r, label) in pairs {
                for (a, b, norm) in [(o.nuclear, r.nuclear, "nuclear"), (o.frobenius, r.frobenius, "Frobenius")] {
                    let rel = abs(a - b) / b
                    worst = max(worst, rel)
                    XCTAssertLessThan(rel, 0.01, "\(ref.module) \(label) \(norm): ours \(a), reference \(b)")
                }
            }
        }
        print("quant-error vs reference: worst relative difference \(worst)")
    }
}

/// NF4 throughput on SmolLM2-sized weights (1536×576), single-threaded: quantising, and
/// dequantising row blocks as training's matrix products do. Printed for BENCHMARKS.md.
final class NF4ThroughputTests: XCTestCase {
    func testDequantisationRunsAtMemorySpeed() {
        var rng = SeededGenerator(seed: 0)
        let w = Matrix.gaussian(rows: 1536, cols: 576, std: 0.02, using: &rng)
        let t0 = Date()
        var q = NF4Matrix(quantizing: w)
        for _ in 0..<4 { q = NF4Matrix(quantizing: w) }
        let quantSeconds = Date().timeIntervalSince(t0) / 5
        var out = [Float](repeating: 0, count: 64 * 576)
        var times: [Double] = []
        for _ in 0..<5 {
            let t = Date()
            out.withUnsafeMutableBufferPointer { buffer in
                for start in stride(from: 0, to: 1536, by: 64) { q.dequantizeRows(start..<(start + 64), into: buffer.baseAddress!) }
            }
            times.append(Date().timeIntervalSince(t))
        }
        let median = times.sorted()[2]
        let perElement = median / Double(w.count) * 1e9
        print(String(format: "NF4 1536×576: quantise %.2f ms (%.2f ns/value), dequantise %.3f ms (%.2f ns/value, %.1f GB/s of float32 out)",
                     quantSeconds * 1e3, quantSeconds / Double(w.count) * 1e9, median * 1e3, perElement, Double(w.count * 4) / median / 1e9))
        XCTAssertLessThan(perElement, 2.0, "dequantisation should cost well under 2 ns per value")
        XCTAssertEqual(q.dequantized().relativeDifference(to: w), 0.093, accuracy: 0.006)
    }
}
