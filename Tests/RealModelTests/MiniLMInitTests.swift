import Adapters
import Formats
import Foundation
import LinearAlgebra
import TestSupport
import XCTest

/// `pissa init` on real float32 weights: all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384), the
/// full-precision model that ships as safetensors (docs/ASSETS.md). Run in release.
final class MiniLMInitTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws { scratch = try makeScratchDirectory("pissa-real") }

    private func run(_ method: InitMethod, rank: Int = 16) throws -> (InitReport, URL, URL) {
        let model = try Assets.require(Assets.miniLM)
        let out = scratch.appendingPathComponent(method.peftName)
        let settings = AdapterSettings(rank: rank, alpha: Float(rank), targets: ["query", "key", "value", "dense"],
                                       initMethod: method, seed: 0)
        return (try ModelDecomposer.run(.init(model: model, output: out, settings: settings, check: true)), model, out)
    }

    func testExactPiSSAOnMiniLMRebuildsEveryWeight() throws {
        let (report, model, out) = try run(.pissa)
        // 6 layers × (query, key, value, attention.output.dense, intermediate.dense, output.dense) + pooler.dense
        XCTAssertEqual(report.modules.count, 37)
        for m in report.modules {
            XCTAssertLessThanOrEqual(try XCTUnwrap(m.reconstructionError), 1e-6, m.module)
            XCTAssertLessThanOrEqual(try XCTUnwrap(m.rankProductError), 1e-4, m.module)
        }
        // Independently of the report: reload both files, W_res + scale·B·A = W for every target.
        let original = try SafeTensorsFile(url: model.appendingPathComponent("model.safetensors"))
        let residual = try SafeTensorsFile(url: out.appendingPathComponent("model.safetensors"))
        let adapter = try SafeTensorsFile(url: out.appendingPathComponent("pissa_init/adapter_model.safetensors"))
        func matrix(_ f: SafeTensorsFile, _ name: String) throws -> Matrix {
            let info = try XCTUnwrap(f.info(name), name)
            return Matrix(rows: info.shape[0], cols: info.shape[1], storage: try f.floats(info))
        }
        for m in report.modules {
            var rebuilt = try matrix(residual, "\(m.module).weight")
            BLAS.gemm(try matrix(adapter, "base_model.model.\(m.module).lora_B.weight"),
                      try matrix(adapter, "base_model.model.\(m.module).lora_A.weight"), into: &rebuilt, beta: 1)
            XCTAssertLessThanOrEqual(rebuilt.relativeDifference(to: try matrix(original, "\(m.module).weight")), 1e-6, m.module)
        }
        for info in original.tensors where !report.modules.contains(where: { "\($0.module).weight" == info.name }) {
            XCTAssertEqual(Array(original.rawBytes(info)), Array(residual.rawBytes(try XCTUnwrap(residual.info(info.name)))), info.name)
        }
        for name in ["config.json", "tokenizer.json", "vocab.txt"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent(name).path), name)
        }
    }

    func testRandomizedPiSSACapturesNearlyTheOptimalEnergy() throws {
        let (report, model, out) = try run(.pissaNiter(4))
        let original = try SafeTensorsFile(url: model.appendingPathComponent("model.safetensors"))
        let adapter = try SafeTensorsFile(url: out.appendingPathComponent("pissa_init/adapter_model.safetensors"))
        for m in report.modules {
            XCTAssertLessThanOrEqual(try XCTUnwrap(m.reconstructionError), 1e-6, m.module)
            // ‖W − sBA‖ is within 2 % of the optimal ‖W − P_r‖, though individual vectors may rotate
            // inside near-degenerate singular subspaces (docs/PLATFORM.md).
            let info = try XCTUnwrap(original.info("\(m.module).weight"))
            let w = Matrix(rows: info.shape[0], cols: info.shape[1], storage: try original.floats(info))
            let a = try XCTUnwrap(adapter.info("base_model.model.\(m.module).lora_A.weight"))
            let b = try XCTUnwrap(adapter.info("base_model.model.\(m.module).lora_B.weight"))
            let delta = LoRAFactors(A: Matrix(rows: a.shape[0], cols: a.shape[1], storage: try adapter.floats(a)),
                                    B: Matrix(rows: b.shape[0], cols: b.shape[1], storage: try adapter.floats(b))).delta(scale: 1)
            let ours = (w - delta).frobeniusNorm
            let best = (w - (try SVD.top(16, of: w).reconstruct(rank: 16))).frobeniusNorm
            XCTAssertLessThanOrEqual(ours, best * 1.02, m.module)
        }
    }
}
