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
        XCTAssertEqual(Set(byType.keys), ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
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
