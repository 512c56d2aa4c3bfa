import Formats
import Foundation
import LinearAlgebra
import Model
import TestSupport
import XCTest

/// One training step on a tiny random Llama against PEFT (scripts/reference/make_training_fixtures.py):
/// the masked mean loss and the gradient of every adapter factor, for a PiSSA and a LoRA start.
final class PEFTGradientTests: XCTestCase {
    /// Tensors of a fixture file under a name prefix, as a model source.
    struct FixtureSource: WeightSource {
        let file: SafeTensorsFile
        let config: ModelConfig
        func has(_ name: String) -> Bool { file.info("base." + name) != nil }
        func tensor(_ name: String) throws -> (shape: [Int], floats: [Float]) {
            let info = try XCTUnwrap(file.info("base." + name))
            return (info.shape, try file.floats(info))
        }
    }

    static var fixtures: URL { Bundle.module.url(forResource: "Fixtures", withExtension: nil)! }

    /// The model, adapter buffers (A then B per module, owned here) and batch of a fixture case.
    final class Case {
        let file: SafeTensorsFile
        let model: DecoderModel
        var factors: [String: [Float]] = [:]
        var grads: [String: [Float]] = [:]
        let tokens: [Int32]
        let targets: [Int32]
        let batch: Int

        init(_ name: String, lanes: Int = 2) throws {
            file = try SafeTensorsFile(url: PEFTGradientTests.fixtures.appendingPathComponent("peft/\(name).safetensors"))
            let modelDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("ModelTests/Fixtures/tiny_llama")
            let config = try SafeTensorsWeightSource.readConfig(directory: modelDir)
            model = DecoderModel(weights: try ModelWeights(source: FixtureSource(file: file, config: config), sourceName: name), lanes: lanes)
            let labels = try file.integers("labels"), ids = try file.integers("tokens")
            let shape = try XCTUnwrap(file.info("tokens")).shape
            batch = shape[0]
            let T = shape[1]
            tokens = ids.map(Int32.init)
            targets = (0..<ids.count).map { n in
                let t = n % T
                return t + 1 < T && labels[n + 1] != -100 ? Int32(labels[n + 1]) : -1
            }
            for layer in 0..<config.numHiddenLayers {
                for p in config.projections {
                    let path = config.modulePath(p, layer: layer)
                    factors[path + ".A"] = try file.floats(try XCTUnwrap(file.info(path + ".lora_A")))
                    factors[path + ".B"] = try file.floats(try XCTUnwrap(file.info(path + ".lora_B")))
                    grads[path + ".A"] = [Float](repeating: 0, count: factors[path + ".A"]!.count)
                    grads[path + ".B"] = [Float](repeating: 0, count: factors[path + ".B"]!.count)
                }
            }
        }

        /// Runs `body` with adapters pointing at this case's buffers.
        func withAdapters<R>(_ body: (ModelAdapters) throws -> R) rethrows -> R {
            var pinned: [(UnsafeMutablePointer<Float>, Int, String)] = []
            func pin(_ key: String, _ dict: [String: [Float]]) -> UnsafeMutablePointer<Float> {
                let values = dict[key]!
                let p = UnsafeMutablePointer<Float>.allocate(capacity: values.count)
                p.initialize(from: values, count: values.count)
                return p
            }
            var ads = ModelAdapters(config: model.config)
            for layer in 0..<model.config.numHiddenLayers {
                for p in model.config.projections {
                    let path = model.config.modulePath(p, layer: layer)
                    let a = pin(path + ".A", factors), b = pin(path + ".B", factors)
                    let ga = pin(path + ".A", grads), gb = pin(path + ".B", grads)
                    pinned += [(a, factors[path + ".A"]!.count, "f" + path + ".A"), (b, factors[path + ".B"]!.count, "f" + path + ".B"),
                               (ga, grads[path + ".A"]!.count, "g" + path + ".A"), (gb, grads[path + ".B"]!.count, "g" + path + ".B")]
                    ads[layer, p] = LoRAAdapter(a: a, b: b, gradA: ga, gradB: gb, rank: 4, scale: 2)
                }
            }
            defer {
                for (p, n, key) in pinned {
                    let values = Array(UnsafeBufferPointer(start: p, count: n))
                    if key.hasPrefix("f") { factors[String(key.dropFirst())] = values } else { grads[String(key.dropFirst())] = values }
                    p.deallocate()
                }
            }
            return try body(ads)
        }

        var supervised: Int { targets.filter { $0 >= 0 }.count }
    }

    private func check(_ name: String, lanes: Int) throws {
        let c = try Case(name, lanes: lanes)
        let scratch = TrainingScratch(model: c.model, capacityRows: c.tokens.count, maxRank: 4)
        let n = c.supervised
        let lossSum = c.withAdapters { ads in
            c.model.lossAndGradients(tokens: c.tokens, targets: c.targets, lengths: Array(repeating: c.tokens.count / c.batch, count: c.batch), adapters: ads,
                                     normalizer: Float(n), scratch: scratch)
        }
        let expectedLoss = try c.file.matrix("loss").storage[0]
        XCTAssertEqual(lossSum / Double(n), Double(expectedLoss), accuracy: 1e-5 * Double(expectedLoss), "\(name) loss")
        var worst = 0.0
        for layer in 0..<c.model.config.numHiddenLayers {
            for p in c.model.config.projections {
                let path = c.model.config.modulePath(p, layer: layer)
                for (ours, theirs) in [(".A", ".grad_A"), (".B", ".grad_B")] {
                    let expected = try c.file.matrix(path + theirs)
                    let observed = Matrix(rows: expected.rows, cols: expected.cols, storage: c.grads[path + ours]!)
                    let norm = Double(expected.frobeniusNorm)
                    if norm == 0 {
                        XCTAssertEqual(observed.frobeniusNorm, 0, accuracy: 1e-7, "\(path)\(ours) should be zero")
                    } else {
                        let rel = observed.relativeDifference(to: expected)
                        worst = max(worst, rel)
                        XCTAssertLessThanOrEqual(rel, 1e-4, "\(name) \(path)\(theirs)")
                    }
                }
            }
        }
        print("\(name), \(lanes) lanes: loss \(lossSum / Double(n)) vs PEFT \(expectedLoss); worst gradient relative error \(worst)")
    }

    func testPiSSAGradientsMatchPEFT() throws {
        try check("pissa", lanes: 1)
        try check("pissa", lanes: 2)
    }

    /// Also with every kernel level (AVX2 and AVX-512 where the CPU has it).
    func testLoRAGradientsMatchPEFT() throws {
        try forEachKernelLevel { _ in try check("lora", lanes: 2) }
    }
}
