@testable import Adapters
import Formats
import Foundation
import LinearAlgebra
import Model
import TestSupport
import XCTest

/// PiSSA → LoRA conversion on random factors: the stacked factors carry exactly ΔW = s·(B′A′ − B₀A₀)
/// at an unchanged scale, configs double as PEFT doubles them, and what cannot be converted is refused.
final class PiSSAConversionTests: XCTestCase {
    static func random(_ rows: Int, _ cols: Int, _ rng: inout SeededGenerator) -> Matrix {
        Matrix(rows: rows, cols: cols, storage: (0..<rows * cols).map { _ in Float.random(in: -1...1, using: &rng) })
    }

    static func adapter(_ modules: [String: (out: Int, in: Int, r: Int)], config: PEFTAdapterConfig, seed: UInt64) -> PEFTAdapter.Loaded {
        var rng = SeededGenerator(seed: seed)
        let list = modules.keys.sorted().map { path in
            let m = modules[path]!
            return (path, LoRAFactors(A: random(m.r, m.in, &rng), B: random(m.out, m.r, &rng)))
        }
        return PEFTAdapter.Loaded(config: config, modules: list)
    }

    static let shapes: [String: (out: Int, in: Int, r: Int)] = [
        "model.layers.0.self_attn.q_proj": (12, 8, 3), "model.layers.0.mlp.down_proj": (8, 20, 3), "model.layers.1.mlp.up_proj": (20, 8, 3),
    ]

    func config(rslora: Bool = false, alpha: Float = 6) -> PEFTAdapterConfig {
        PEFTAdapterConfig(r: 3, loraAlpha: alpha, targetModules: ["q_proj", "down_proj", "up_proj"], useRslora: rslora,
                          taskType: "CAUSAL_LM", baseModelNameOrPath: nil)
    }

    func checkUpdate(_ initial: PEFTAdapter.Loaded, _ trained: PEFTAdapter.Loaded) throws {
        let result = try PiSSAConversion.convert(initial: initial, trained: trained)
        XCTAssertFalse(result.unchanged)
        XCTAssertEqual(result.config.initLoraWeights, .bool(true))
        let converted = PEFTAdapter.Loaded(config: result.config, modules: result.modules)
        let start = Dictionary(uniqueKeysWithValues: initial.modules.map { ($0.path, $0.factors) })
        for ((path, f), (_, g)) in zip(trained.modules, converted.modules) {
            let s = trained.scale(rank: f.rank, module: path), f0 = start[path]!
            XCTAssertEqual(g.rank, 2 * f.rank, path)
            XCTAssertEqual(converted.configuredRank(module: path), 2 * trained.configuredRank(module: path), path)
            XCTAssertEqual(converted.scale(rank: g.rank, module: path), s, accuracy: 1e-6 * s, "\(path): the scale is unchanged")
            let expected = f.delta(scale: s) - f0.delta(scale: s)
            assertRelativeClose(g.delta(scale: converted.scale(rank: g.rank, module: path)), expected, tolerance: 1e-6, path)
        }
    }

    func testStackedFactorsCarryTheUpdateAtTheSameScale() throws {
        try checkUpdate(Self.adapter(Self.shapes, config: config(), seed: 1), Self.adapter(Self.shapes, config: config(), seed: 2))
        let c = try PiSSAConversion.convert(initial: Self.adapter(Self.shapes, config: config(), seed: 1),
                                            trained: Self.adapter(Self.shapes, config: config(), seed: 2)).config
        XCTAssertEqual(c.r, 6)
        XCTAssertEqual(c.loraAlpha, 12)
    }

    func testRSLoRAMultipliesAlphaBySquareRootOfTwo() throws {
        let cfg = config(rslora: true)
        try checkUpdate(Self.adapter(Self.shapes, config: cfg, seed: 3), Self.adapter(Self.shapes, config: cfg, seed: 4))
        let c = try PiSSAConversion.convert(initial: Self.adapter(Self.shapes, config: cfg, seed: 3),
                                            trained: Self.adapter(Self.shapes, config: cfg, seed: 4)).config
        XCTAssertEqual(c.loraAlpha, 6 * Float(2).squareRoot(), accuracy: 1e-6)
    }

    func testPatternsDoubleWithoutRSLoRAAndAreRefusedWithIt() throws {
        var shapes = Self.shapes
        shapes["model.layers.0.self_attn.q_proj"]!.r = 2
        var cfg = config()
        cfg.rankPattern = ["q_proj": 2]
        cfg.alphaPattern = ["down_proj": 5]
        try checkUpdate(Self.adapter(shapes, config: cfg, seed: 5), Self.adapter(shapes, config: cfg, seed: 6))
        let c = try PiSSAConversion.convert(initial: Self.adapter(shapes, config: cfg, seed: 5), trained: Self.adapter(shapes, config: cfg, seed: 6)).config
        XCTAssertEqual(c.rankPattern, ["q_proj": 4])
        XCTAssertEqual(c.alphaPattern, ["down_proj": 10])

        cfg.useRslora = true
        XCTAssertThrowsError(try PiSSAConversion.convert(initial: Self.adapter(shapes, config: cfg, seed: 5),
                                                         trained: Self.adapter(shapes, config: cfg, seed: 6))) { error in
            XCTAssertEqual(error as? ConversionError, .rsLoRAWithPatterns(path: "adapter"))
            XCTAssertTrue("\(error)".contains("rank_pattern"), "\(error)")
        }
    }

    func testMismatchedModulesShapesAndScalesAreAllListed() throws {
        var other = Self.shapes
        other["model.layers.1.mlp.up_proj"] = nil
        other["model.layers.1.mlp.gate_proj"] = (20, 8, 3)
        other["model.layers.0.mlp.down_proj"]!.r = 2
        let initial = Self.adapter(Self.shapes, config: config(), seed: 1)
        let trained = Self.adapter(other, config: config(alpha: 6), seed: 2)
        XCTAssertThrowsError(try PiSSAConversion.convert(initial: initial, trained: trained)) { error in
            guard case let .mismatched(_, _, problems)? = error as? ConversionError else { return XCTFail("\(error)") }
            let text = problems.joined(separator: "\n")
            XCTAssertTrue(text.contains("model.layers.1.mlp.up_proj: in the initial adapter only"), text)
            XCTAssertTrue(text.contains("model.layers.1.mlp.gate_proj: in the trained adapter only"), text)
            XCTAssertTrue(text.contains("model.layers.0.mlp.down_proj: initial lora_A [3, 20]"), text)
        }
        XCTAssertThrowsError(try PiSSAConversion.convert(initial: initial, trained: Self.adapter(Self.shapes, config: config(alpha: 9), seed: 2))) {
            XCTAssertTrue("\($0)".contains("scale 2.0 in the initial adapter, 3.0 in the trained one"), "\($0)")
        }
    }

    func testAZeroBStartKeepsTheTrainedAdapter() throws {
        var initial = Self.adapter(Self.shapes, config: config(), seed: 1)
        for i in initial.modules.indices { initial.modules[i].factors.B = Matrix(rows: initial.modules[i].factors.B.rows, cols: 3) }
        let trained = Self.adapter(Self.shapes, config: config(), seed: 2)
        let result = try PiSSAConversion.convert(initial: initial, trained: trained)
        XCTAssertTrue(result.unchanged)
        XCTAssertEqual(result.config.r, 3)
        XCTAssertEqual(result.modules.map(\.factors), trained.modules.map(\.factors))
    }

    func testAQuantisedRunIsRefusedUnlessForcedAndNothingIsWritten() throws {
        let run = FileManager.default.temporaryDirectory.appendingPathComponent("pissa-conv-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: run) }
        let initialDir = run.appendingPathComponent("pissa_init"), adapterDir = run.appendingPathComponent("adapter")
        let initial = Self.adapter(Self.shapes, config: config(), seed: 1), trained = Self.adapter(Self.shapes, config: config(), seed: 2)
        try PEFTAdapter.write(to: initialDir, modules: initial.modules, config: initial.config, role: .initial)
        try PEFTAdapter.write(to: adapterDir, modules: trained.modules, config: trained.config, role: .trained)
        let out = run.appendingPathComponent("lora")
        XCTAssertNil(PiSSAConversion.quantizationEvidence(initialDirectory: initialDir, adapterDirectory: adapterDir))
        try Data(#"{"model": "m", "quant": "nf4", "steps": 3}"#.utf8).write(to: run.appendingPathComponent("config.json"))
        XCTAssertThrowsError(try PiSSAConversion.convertDirectories(initial: initialDir, adapter: adapterDir, output: out)) { error in
            XCTAssertTrue("\(error)".contains("quant: nf4"), "\(error)")
            XCTAssertTrue("\(error)".contains("--force"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "nothing is written on refusal")
        let report = try PiSSAConversion.convertDirectories(initial: initialDir, adapter: adapterDir, output: out, force: true)
        XCTAssertEqual(report.quantization, "\(run.path)/config.json says quant: nf4")
        XCTAssertEqual(try PEFTAdapter.read(directory: out).config.r, 6)

        // A residual model's Hugging Face quantization_config counts too; "none" does not.
        try Data(#"{"quant": "none", "quantization_config": {"quant_method": "bitsandbytes", "bnb_4bit_quant_type": "nf4"}}"#.utf8)
            .write(to: run.appendingPathComponent("config.json"))
        XCTAssertEqual(PiSSAConversion.quantizationEvidence(initialDirectory: initialDir, adapterDirectory: adapterDir),
                       "\(run.path)/config.json says quantization_config: bitsandbytes nf4")
        // What `pissa train --quant nf4` writes: the NF4 settings as an object.
        let settings = String(decoding: try JSONEncoder().encode(QuantSettings(iterations: 5)), as: UTF8.self)
        try Data(#"{"model": "m", "quant": \#(settings)}"#.utf8).write(to: run.appendingPathComponent("config.json"))
        XCTAssertEqual(PiSSAConversion.quantizationEvidence(initialDirectory: initialDir, adapterDirectory: adapterDir),
                       "\(run.path)/config.json says quant: nf4 (block 64, 5 QPiSSA iterations)")
        try Data(#"{"quant": "none"}"#.utf8).write(to: run.appendingPathComponent("config.json"))
        XCTAssertNil(PiSSAConversion.quantizationEvidence(initialDirectory: initialDir, adapterDirectory: adapterDir))
    }
}

/// DoRA through merge and conversion: merging gives every row the norm of its magnitude, and a
/// trained DoRA adapter converted to the original model merges to the same weight as the trained
/// adapter on its residual (the norm ‖W + s·B_new·A_new‖ is ‖W_res + s·B′A′‖).
final class DoRAConversionTests: XCTestCase {
    func testMergedRowsHaveTheMagnitudesAndConversionIsExact() throws {
        var rng = SeededGenerator(seed: 11)
        let (w, _) = try matrixWithSpectrum(rows: 12, cols: 9, decay: 0.8, seed: 12)
        let settings = AdapterSettings(rank: 3, alpha: 6, targets: ["x"], initMethod: .pissa)
        var residual = w
        var start = try AdapterInitializer.initialize(&residual, settings: settings, using: &rng)
        start.magnitude = LoRAFactors.doraMagnitude(frozen: residual, A: start.A, B: start.B, scale: settings.scale)
        // The start's magnitude is ‖W‖ per row: DoRA starts as the model it adapts.
        assertRelativeClose(AdapterMerge.merged(residual, start, scale: settings.scale), w, tolerance: 1e-6, "merged start = W")
        var trained = LoRAFactors(A: PiSSAConversionTests.random(3, 9, &rng), B: PiSSAConversionTests.random(12, 3, &rng),
                                  magnitude: (0..<12).map { _ in Float.random(in: 0.5...2, using: &rng) })
        trained.A.storage = zip(trained.A.storage, start.A.storage).map { 0.1 * $0 + $1 }
        let merged = AdapterMerge.merged(residual, trained, scale: settings.scale)
        for i in 0..<12 {
            let norm = (0..<9).reduce(0.0) { $0 + Double(merged[i, $1] * merged[i, $1]) }.squareRoot()
            XCTAssertEqual(norm, Double(trained.magnitude![i]), accuracy: 1e-5, "row \(i) has the norm of its magnitude")
        }
        var config = PEFTAdapterConfig(r: 3, loraAlpha: 6, targetModules: ["x"], useRslora: false, taskType: nil, baseModelNameOrPath: nil)
        config.useDora = true
        let result = try PiSSAConversion.convert(initial: .init(config: config, modules: [("m", start)]),
                                                 trained: .init(config: config, modules: [("m", trained)]))
        let converted = result.modules[0].factors
        XCTAssertEqual(converted.magnitude, trained.magnitude)
        assertRelativeClose(AdapterMerge.merged(w, converted, scale: settings.scale), merged, tolerance: 1e-5, "converted on W = trained on W_res")
        // Exports have no magnitude vector: refused by name.
        XCTAssertThrowsError(try MLXAdapterExport.write(adapters: [("model.layers.0.self_attn.q_proj", converted, 2)], config: Self.oneLayerLlama,
                                                        to: FileManager.default.temporaryDirectory.appendingPathComponent("dora-mlx-\(getpid())"))) {
            XCTAssertTrue("\($0)".contains("DoRA adapter (lora_magnitude_vector)"), "\($0)")
        }
        // A DoRA start with a LoRA-trained adapter (or the reverse) is refused.
        var plain = config
        plain.useDora = false
        XCTAssertThrowsError(try PiSSAConversion.convert(initial: .init(config: config, modules: [("m", start)]),
                                                         trained: .init(config: plain, modules: [("m", LoRAFactors(A: trained.A, B: trained.B))])))
    }

    /// A one-layer Llama shape, for exports that need a config.
    static let oneLayerLlama = ModelConfig(
        architecture: "llama", modelType: "llama", hiddenSize: 8, intermediateSize: 8, numHiddenLayers: 1,
        numAttentionHeads: 2, numKeyValueHeads: 2, headDim: 4, vocabSize: 8, maxPositionEmbeddings: 8, rmsNormEps: 1e-5,
        tieWordEmbeddings: true, block: .llama(headDim: 4), layers: [LayerAttention(rope: RopeSpec(theta: 1e4))])
}
