import Adapters
import Formats
import Foundation
import LinearAlgebra
import TestSupport
import XCTest

/// `pissa init` on a tiny random Llama against what PEFT's `get_peft_model(init_lora_weights=…)`
/// produced for the same weights (scripts/reference/make_pissa_fixtures.py).
final class PEFTFixtureTests: XCTestCase {
    private var fixtures: URL { Bundle.module.url(forResource: "Fixtures", withExtension: nil)! }
    private var scratch: URL!

    override func setUpWithError() throws { scratch = try makeScratchDirectory("pissa-tests") }

    private let llamaTargets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

    private func decompose(_ model: String, _ method: InitMethod, rank: Int = 4, alpha: Float = 8, rslora: Bool = false,
                           check: Bool = false) throws -> (InitReport, URL) {
        let out = scratch.appendingPathComponent("\(model)-\(method)-\(alpha)")
        let settings = AdapterSettings(rank: rank, alpha: alpha, useRSLoRA: rslora, targets: llamaTargets,
                                       initMethod: method, oversample: 4, seed: 0)
        let report = try ModelDecomposer.run(.init(model: fixtures.appendingPathComponent(model), output: out,
                                                   settings: settings, check: check, lanes: 2))
        return (report, out)
    }

    private func matrix(_ file: SafeTensorsFile, _ name: String) throws -> Matrix {
        let info = try XCTUnwrap(file.info(name), "\(name) missing from \(file.url.lastPathComponent)")
        return Matrix(rows: info.shape[0], cols: info.shape[1], storage: try file.floats(info))
    }

    /// scale·B·A for every module of an adapter directory written by the tool.
    private func deltas(adapter: URL, modules: [String], scale: Float) throws -> [String: Matrix] {
        let file = try SafeTensorsFile(url: adapter.appendingPathComponent("adapter_model.safetensors"))
        var out: [String: Matrix] = [:]
        for m in modules {
            let a = try matrix(file, "base_model.model.\(m).lora_A.weight")
            let b = try matrix(file, "base_model.model.\(m).lora_B.weight")
            out[m] = LoRAFactors(A: a, B: b).delta(scale: scale)
        }
        return out
    }

    func testExactPiSSAMatchesPEFTInFloat32() throws {
        let (report, out) = try decompose("tiny_llama_f32", .pissa, check: true)
        let expected = try SafeTensorsFile(url: fixtures.appendingPathComponent("expected_a_f32_pissa.safetensors"))
        let residual = try SafeTensorsFile(url: out.appendingPathComponent("model.safetensors"))
        let modules = report.modules.map(\.module)
        XCTAssertEqual(modules.count, 14)
        let ours = try deltas(adapter: out.appendingPathComponent("pissa_init"), modules: modules, scale: 2)
        for m in modules {
            assertRelativeClose(ours[m]!, try matrix(expected, "\(m).delta"), tolerance: 1e-5, "\(m) scale·B·A")
            assertRelativeClose(try matrix(residual, "\(m).weight"), try matrix(expected, "\(m).residual"), tolerance: 1e-5, "\(m) residual")
        }
        for r in report.modules {
            XCTAssertLessThanOrEqual(try XCTUnwrap(r.reconstructionError), 1e-6, r.module)
            XCTAssertLessThanOrEqual(try XCTUnwrap(r.rankProductError), 1e-5, r.module)
        }
    }

    func testRSLoRAScaleMatchesPEFT() throws {
        let (report, out) = try decompose("tiny_llama_f32", .pissa, alpha: 4, rslora: true)
        let expected = try SafeTensorsFile(url: fixtures.appendingPathComponent("expected_b_f32_pissa_rslora.safetensors"))
        let adapter = try SafeTensorsFile(url: out.appendingPathComponent("pissa_init/adapter_model.safetensors"))
        for m in report.modules.map(\.module) {
            for factor in ["lora_A", "lora_B"] {
                // Row/column norms carry √(σ/scale); signs are arbitrary, norms are not.
                let ours = try matrix(adapter, "base_model.model.\(m).\(factor).weight")
                let peft = try matrix(expected, "\(m).\(factor)")
                XCTAssertEqual(Double(ours.frobeniusNorm), Double(peft.frobeniusNorm), accuracy: 1e-5 * Double(peft.frobeniusNorm), "\(m).\(factor)")
            }
        }
        let config = try JSONDecoder().decode(PEFTAdapterConfig.self, from: Data(contentsOf: out.appendingPathComponent("pissa_init/adapter_config.json")))
        XCTAssertTrue(config.useRslora)
        XCTAssertEqual(config.loraAlpha, 4)
    }

    func testBFloat16ResidualMatchesPEFTToRounding() throws {
        let (report, out) = try decompose("tiny_llama_bf16", .pissa)
        let expected = try SafeTensorsFile(url: fixtures.appendingPathComponent("expected_c_bf16_pissa.safetensors"))
        let residual = try SafeTensorsFile(url: out.appendingPathComponent("model.safetensors"))
        let ours = try deltas(adapter: out.appendingPathComponent("pissa_init"), modules: report.modules.map(\.module), scale: 2)
        var identical = 0, total = 0
        for m in report.modules.map(\.module) {
            let info = try XCTUnwrap(residual.info("\(m).weight"))
            XCTAssertEqual(info.dtype, .bf16, "the residual keeps the original dtype")
            let a = residual.rawBytes(info), b = expected.rawBytes(try XCTUnwrap(expected.info("\(m).residual")))
            let reference = try matrix(expected, "\(m).residual")
            let largest = reference.storage.map(abs).max()!
            for i in 0..<info.elementCount {
                let x = a.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
                let y = b.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
                if x == y { identical += 1 }
                total += 1
                // One bf16 ulp of the value, plus float32 rounding of W − sBA at the weight's scale
                // (where the residual nearly cancels, both float32 results round to different bf16s).
                let (fx, fy) = (HalfPrecision.float(bfloat16Bits: x), HalfPrecision.float(bfloat16Bits: y))
                XCTAssertLessThanOrEqual(abs(fx - fy), abs(fy) * 0x1p-7 + largest * 1e-6, "\(m)[\(i)]")
            }
            // PEFT rounds its stored factors to bf16 (fixture README); ours stay float32.
            assertRelativeClose(ours[m]!, try matrix(expected, "\(m).delta"), tolerance: 1e-2, "\(m) delta")
        }
        XCTAssertGreaterThan(Double(identical) / Double(total), 0.99)
    }

    func testRandomizedPiSSAIsAsCloseToExactAsPEFTs() throws {
        let (report, out) = try decompose("tiny_llama_f32", .pissaNiter(4))
        let expected = try SafeTensorsFile(url: fixtures.appendingPathComponent("expected_d_f32_pissa_niter_4.safetensors"))
        let ours = try deltas(adapter: out.appendingPathComponent("pissa_init"), modules: report.modules.map(\.module), scale: 2)
        let peftMax = try XCTUnwrap(Double(expected.metadata["peft_niter_rel_fro_max"] ?? ""))
        var errors: [Double] = []
        for m in report.modules.map(\.module) {
            errors.append(ours[m]!.relativeDifference(to: try matrix(expected, "\(m).delta")))
        }
        XCTAssertLessThanOrEqual(errors.max()!, peftMax, "with oversampling 4 our worst module beats PEFT's worst (\(peftMax))")
    }

    func testNonTargetTensorsAreCopiedByteForByteAndFilesCarried() throws {
        let (_, out) = try decompose("tiny_llama_f32", .pissaNiter(2))
        let original = try SafeTensorsFile(url: fixtures.appendingPathComponent("tiny_llama_f32/model.safetensors"))
        let residual = try SafeTensorsFile(url: out.appendingPathComponent("model.safetensors"))
        XCTAssertEqual(original.tensors.map(\.name), residual.tensors.map(\.name))
        for info in original.tensors where !info.name.contains("_proj") {
            XCTAssertEqual(Array(original.rawBytes(info)), Array(residual.rawBytes(try XCTUnwrap(residual.info(info.name)))), info.name)
        }
        XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent("config.json")),
                       try Data(contentsOf: fixtures.appendingPathComponent("tiny_llama_f32/config.json")))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.hasPrefix(".") }
        XCTAssertEqual(leftovers, [], "no temporary files left behind")
    }

    func testAdapterLayoutMatchesWhatPEFTWrites() throws {
        let (_, out) = try decompose("tiny_llama_f32", .lora)
        let adapterDir = out.appendingPathComponent("lora_init")
        let adapter = try SafeTensorsFile(url: adapterDir.appendingPathComponent("adapter_model.safetensors"))
        struct Expected: Decodable {
            struct Tensor: Decodable { var dtype: String; var shape: [Int] }
            var tensors: [String: Tensor]
            var safetensors_metadata: [String: String]
        }
        let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: fixtures.appendingPathComponent("expected_lora_shapes.json")))
        XCTAssertEqual(Set(adapter.tensors.map(\.name)), Set(expected.tensors.keys))
        for info in adapter.tensors {
            XCTAssertEqual(info.shape, expected.tensors[info.name]?.shape, info.name)
            XCTAssertEqual(info.dtype.rawValue, expected.tensors[info.name]?.dtype, info.name)
        }
        // PEFT's metadata, plus this tool's record of what the adapter is (which PEFT ignores).
        XCTAssertEqual(adapter.metadata, expected.safetensors_metadata.merging(["pissa.role": "initial"]) { a, _ in a })
        // Every key we write is one PEFT writes, with the same JSON type.
        let ours = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: adapterDir.appendingPathComponent("adapter_config.json"))) as? [String: Any])
        let peft = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: fixtures.appendingPathComponent("peft_adapter_config_example.json"))) as? [String: Any])
        for (key, value) in ours {
            let reference = try XCTUnwrap(peft[key], "PEFT writes no key '\(key)'")
            if !(reference is NSNull) { XCTAssertEqual("\(type(of: value))", "\(type(of: reference))", key) }
        }
        for key in ["r", "lora_alpha", "lora_dropout", "peft_type", "init_lora_weights", "use_rslora", "target_modules"] {
            XCTAssertNotNil(ours[key], key)
        }
        XCTAssertEqual(Set(try XCTUnwrap(ours["target_modules"] as? [String])), Set(try XCTUnwrap(peft["target_modules"] as? [String])))
        // A LoRA start leaves the model unchanged.
        XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent("model.safetensors")),
                       try Data(contentsOf: fixtures.appendingPathComponent("tiny_llama_f32/model.safetensors")))
    }

    func testBadTargetsAndRanksAreReportedTogether() throws {
        XCTAssertThrowsError(try ModelDecomposer.run(.init(
            model: fixtures.appendingPathComponent("tiny_llama_f32"), output: scratch.appendingPathComponent("x"),
            settings: AdapterSettings(rank: 4, targets: ["query"])))) { error in
            guard case .noTargetModules(let targets, _, let sample) = error as? AdapterError else { return XCTFail("\(error)") }
            XCTAssertEqual(targets, ["query"])
            XCTAssertTrue(sample.contains("model.layers.0.self_attn.q_proj"))
        }
        XCTAssertThrowsError(try ModelDecomposer.run(.init(
            model: fixtures.appendingPathComponent("tiny_llama_f32"), output: scratch.appendingPathComponent("y"),
            settings: AdapterSettings(rank: 40, targets: ["k_proj", "v_proj"])))) { error in
            guard case .unsupportedWeights(let problems) = error as? AdapterError else { return XCTFail("\(error)") }
            XCTAssertEqual(problems.count, 4, "every k/v weight (32×64) of both layers is listed")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: scratch.appendingPathComponent("y").path), "nothing written")
    }
}
