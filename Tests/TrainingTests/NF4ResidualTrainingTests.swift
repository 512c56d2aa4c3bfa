import Adapters
import Formats
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

    /// A sharded source (two shards and an index) gives an NF4 residual whose index lists every
    /// tensor of its shards, the NF4 state beside each weight included, so that it loads and
    /// trains (the 7B-shaped scale run found the source's index copied as it was, and refused).
    func testShardedQPiSSAResidualHasItsOwnIndex() throws {
        let tiny = AdapterInteropTests.tinyModel
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("pissa-nf4-sharded-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let sharded = scratch.appendingPathComponent("sharded")
        try FileManager.default.createDirectory(at: sharded, withIntermediateDirectories: true)
        for name in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
            try FileManager.default.copyItem(at: tiny.appendingPathComponent(name), to: sharded.appendingPathComponent(name))
        }
        let source = try SafeTensorsFile(url: tiny.appendingPathComponent("model.safetensors"))
        let half = source.tensors.count / 2
        var weightMap: [String: String] = [:]
        for (k, part) in [Array(source.tensors[..<half]), Array(source.tensors[half...])].enumerated() {
            let name = "model-0000\(k + 1)-of-00002.safetensors"
            let writer = try SafeTensorsWriter(url: sharded.appendingPathComponent(name),
                                               tensors: part.map { TensorSpec(name: $0.name, dtype: $0.dtype, shape: $0.shape) })
            for info in part {
                try writer.write(info.name, bytes: source.rawBytes(info))
                weightMap[info.name] = name
            }
            try writer.commit()
        }
        let index = try JSONSerialization.data(withJSONObject: ["metadata": ["total_size": 0], "weight_map": weightMap])
        try index.write(to: sharded.appendingPathComponent(ShardedSafeTensors.standardIndexFileName))

        let out = scratch.appendingPathComponent("qpissa")
        let settings = AdapterSettings(rank: 4, alpha: 4, targets: ["all-linear"], initMethod: .pissa)
        _ = try ModelDecomposer.run(.init(model: sharded, output: out, settings: settings, lanes: 1, quant: QuantSettings(iterations: 1)))
        let residual = try ShardedSafeTensors(directory: out)   // refuses a shard's tensor missing from the index
        XCTAssertEqual(residual.indexFileName, ShardedSafeTensors.standardIndexFileName)
        XCTAssertEqual(residual.files.count, 2)
        XCTAssertTrue(residual.tensorNames.contains { $0.hasSuffix(".absmax") })
        let text = try String(contentsOf: out.appendingPathComponent(ShardedSafeTensors.standardIndexFileName), encoding: .utf8)
        let bytes = residual.files.reduce(0) { total, file in total + file.tensors.reduce(0) { $0 + $1.byteCount } }
        XCTAssertTrue(text.contains("\"total_size\": \(bytes)"), "total_size is the shards' tensor bytes (\(bytes))")
        let weights = try ModelWeights(source: SafeTensorsWeightSource(directory: out), sourceName: out.path)
        XCTAssertTrue(weights.layers.allSatisfy { l in l.projections.allSatisfy { $0 is NF4Matrix } })
    }
}
