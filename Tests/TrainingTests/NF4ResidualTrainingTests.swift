import Adapters
import Foundation
import LinearAlgebra
import Model
import Training
import XCTest

/// The QPiSSA start that `pissa init --quant nf4` writes trains as NF4: the residual model's
/// Linear4bit tensors load as `NF4Matrix` (never dequantised whole), equal the in-memory
/// quantisation of the same residual, rebuild W with the start adapter up to NF4's error, and
/// `pissa train --model OUT --adapter-path OUT/pissa_init` runs on them.
final class NF4ResidualTrainingTests: XCTestCase {
    func testQPiSSAResidualModelLoadsAsNF4AndTrains() throws {
        let tiny = AdapterInteropTests.tinyModel
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("pissa-nf4-residual-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let out = scratch.appendingPathComponent("qpissa")
        let settings = AdapterSettings(rank: 4, alpha: 4, targets: ["all-linear"], initMethod: .pissa)
        _ = try ModelDecomposer.run(.init(model: tiny, output: out, settings: settings, lanes: 1, quant: QuantSettings(iterations: 2)))

        let original = try ModelWeights(source: SafeTensorsWeightSource(directory: tiny), sourceName: tiny.path)
        let residual = try ModelWeights(source: SafeTensorsWeightSource(directory: out), sourceName: out.path)
        let adapter = try PEFTAdapter.read(directory: out.appendingPathComponent("pissa_init"))
        XCTAssertEqual(adapter.modules.count, 14)
        for (path, factors) in adapter.modules {
            let (layer, p) = try XCTUnwrap(original.config.projection(modulePath: path))
            let q = try XCTUnwrap(residual.layers[layer][p] as? NF4Matrix, "\(path) loads as NF4")
            let w = original.layers[layer][p].dequantized()
            // The stored codes are the in-memory QPiSSA start's, bit for bit (the exact SVD uses no randomness).
            var rng = SeededGenerator(seed: 0)
            let expected = try QuantizedInitializer.initialize(w, settings: settings, quant: QuantSettings(iterations: 2), using: &rng)
            XCTAssertEqual(q.packed, expected.residual.packed, path)
            XCTAssertEqual(q.absmax, expected.residual.absmax, path)
            XCTAssertEqual(factors.A, expected.factors.A, path)
            var rebuilt = q.dequantized()
            BLAS.gemm(factors.B, factors.A, into: &rebuilt, alpha: settings.scale, beta: 1)
            let error = rebuilt.relativeDifference(to: w)
            XCTAssertLessThan(error, 0.1, "\(path): deq(Q) + sBA ≈ W (NF4's error is ≈ 0.09 of the residual)")
        }

        var config = TrainConfig(model: out.path, data: tiny.appendingPathComponent("train.jsonl").path,
                                 output: scratch.appendingPathComponent("run").path, adapter: settings)
        config.adapterPath = out.appendingPathComponent("pissa_init").path
        config.steps = 2
        config.batchSize = 4
        config.learningRate = 5e-3
        let trainer = try Trainer(config: config)
        XCTAssertTrue(trainer.model.weights.layers.allSatisfy { l in l.projections.allSatisfy { $0 is NF4Matrix } })
        let metrics = try trainer.fit()
        XCTAssertEqual(metrics.count, 2)
        XCTAssertTrue(metrics.allSatisfy { ($0.loss ?? .nan).isFinite })
    }
}
