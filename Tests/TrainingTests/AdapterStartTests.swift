import Adapters
import Foundation
import LinearAlgebra
import Model
@testable import Training
import XCTest

/// The streaming start (`AdapterStart`: each projection initialised and quantised as it is read)
/// gives exactly the bits of the in-memory start (the whole model loaded in float32, then every
/// target initialised in order with its own random stream, then the rest quantised): NF4 codes,
/// absmax values and adapter factors, for QPiSSA, float32 PiSSA, and an --adapter-path start.
final class AdapterStartTests: XCTestCase {
    private let tiny = AdapterInteropTests.tinyModel

    private func config(_ settings: AdapterSettings, quant: QuantSettings?) -> TrainConfig {
        var c = TrainConfig(model: tiny.path, data: "", output: "", adapter: settings)
        c.quant = quant
        return c
    }

    /// The in-memory start: load everything, then initialise the targets in layer and projection order.
    private func inMemoryStart(_ settings: AdapterSettings, quant: QuantSettings?) throws
        -> (weights: ModelWeights, factors: [String: LoRAFactors]) {
        var weights = try ModelWeights(source: SafeTensorsWeightSource(directory: tiny), sourceName: tiny.path)
        var factors: [String: LoRAFactors] = [:]
        for (index, (layer, p)) in try TargetModules.projections(settings.targets, config: weights.config).enumerated() {
            var rng = SeededGenerator(seed: settings.seed, stream: UInt64(index))
            var w = weights.layers[layer][p].dequantized()
            let (frozen, f) = try AdapterStart.initializeFrozen(&w, settings: settings, quant: quant, using: &rng)
            weights.layers[layer][p] = frozen
            factors[weights.config.modulePath(p, layer: layer)] = f
        }
        if let quant { weights.quantizeProjections(.nf4(blockSize: quant.blockSize, doubleQuant: quant.doubleQuant)) }
        return (weights, factors)
    }

    private func assertSameBits(_ start: AdapterStart, _ expected: (weights: ModelWeights, factors: [String: LoRAFactors]),
                                file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(start.modules.count, expected.factors.count, file: file, line: line)
        let c = start.weights.config
        for m in start.modules {
            let path = c.modulePath(m.projection, layer: m.layer)
            let f = try XCTUnwrap(expected.factors[path], path, file: file, line: line)
            XCTAssertEqual(m.factors.A.storage, f.A.storage, "\(path) A", file: file, line: line)
            XCTAssertEqual(m.factors.B.storage, f.B.storage, "\(path) B", file: file, line: line)
        }
        for (l, layer) in start.weights.layers.enumerated() {
            for p in c.projections {
                let (got, want) = (layer[p], expected.weights.layers[l][p])
                if let q = got as? NF4Matrix {
                    let r = try XCTUnwrap(want as? NF4Matrix, "\(c.modulePath(p, layer: l)) is NF4 in both", file: file, line: line)
                    XCTAssertEqual(q.packed, r.packed, "\(c.modulePath(p, layer: l)) codes", file: file, line: line)
                    XCTAssertEqual(q.absmax, r.absmax, "\(c.modulePath(p, layer: l)) absmax", file: file, line: line)
                } else {
                    let m = try XCTUnwrap(got as? Matrix, file: file, line: line)
                    XCTAssertEqual(m.storage, try XCTUnwrap(want as? Matrix, file: file, line: line).storage,
                                   c.modulePath(p, layer: l), file: file, line: line)
                }
            }
        }
    }

    func testStreamingQPiSSAStartEqualsTheInMemoryStart() throws {
        // Randomized SVD (its random streams must line up), two QPiSSA iterations, some projections untargeted.
        let settings = AdapterSettings(rank: 4, alpha: 8, targets: ["q_proj", "v_proj", "down_proj"], initMethod: .pissaNiter(2), seed: 7)
        let quant = QuantSettings(iterations: 2, blockSize: 32)
        let start = try AdapterStart.load(config(settings, quant: quant))
        XCTAssertTrue(start.weights.layers.allSatisfy { l in start.weights.config.projections.allSatisfy { l[$0] is NF4Matrix } })
        try assertSameBits(start, inMemoryStart(settings, quant: quant))
    }

    func testStreamingFloatPiSSAStartEqualsTheInMemoryStart() throws {
        let settings = AdapterSettings(rank: 4, alpha: 4, targets: ["all-linear"], initMethod: .pissaNiter(4), seed: 1)
        let start = try AdapterStart.load(config(settings, quant: nil))
        try assertSameBits(start, inMemoryStart(settings, quant: nil))
    }

    func testAdapterPathStartQuantisesAsItLoadsAndInitRefusesAnNF4Base() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("pissa-start-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let out = scratch.appendingPathComponent("residual")
        let settings = AdapterSettings(rank: 4, alpha: 4, targets: ["q_proj"], initMethod: .pissa)
        _ = try ModelDecomposer.run(.init(model: tiny, output: out, settings: settings, lanes: 1))
        var c = config(settings, quant: QuantSettings())
        c.model = out.path
        c.adapterPath = out.appendingPathComponent("pissa_init").path
        let start = try AdapterStart.load(c)
        var whole = try ModelWeights(source: SafeTensorsWeightSource(directory: out), sourceName: out.path)
        whole.quantizeProjections(.nf4(blockSize: NF4Matrix.defaultBlockSize, doubleQuant: false))
        for (l, layer) in start.weights.layers.enumerated() {
            for p in start.weights.config.projections {
                let (q, r) = (try XCTUnwrap(layer[p] as? NF4Matrix), try XCTUnwrap(whole.layers[l][p] as? NF4Matrix))
                XCTAssertEqual(q.packed, r.packed)
                XCTAssertEqual(q.absmax, r.absmax)
            }
        }
        XCTAssertEqual(start.modules.count, 2)

        // An NF4 residual cannot be the float32 weight an initialiser starts from.
        let nf4 = scratch.appendingPathComponent("nf4")
        _ = try ModelDecomposer.run(.init(model: tiny, output: nf4, settings: settings, lanes: 1, quant: QuantSettings()))
        var again = config(settings, quant: nil)
        again.model = nf4.path
        XCTAssertThrowsError(try AdapterStart.load(again)) { error in
            XCTAssertTrue("\(error)".contains("model.layers.0.self_attn.q_proj is already quantised"), "\(error)")
        }
    }
}
