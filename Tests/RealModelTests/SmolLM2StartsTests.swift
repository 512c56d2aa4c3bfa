import Adapters
import Foundation
import LinearAlgebra
import Model
import TestSupport
import Tokenizer
import Training
import XCTest

/// The data-driven starts and DoRA on SmolLM2-135M, with generated math problems as calibration
/// data: what each start must be on a real model, and that a few steps of each lower the loss.
final class SmolLM2StartsTests: XCTestCase {
    private func setup() throws -> (gguf: URL, math: MathScratch, weights: ModelWeights, tokenizer: BPETokenizer) {
        let gguf = try Assets.require(Assets.smolLM2GGUF)
        let math = try MathScratch("starts", train: 64, test: 8, seed: 1)
        let (weights, tokenizer) = try LanguageModel.loadParts(path: gguf.path)
        return (gguf, math, weights, tokenizer)
    }

    private func measure(_ method: InitMethod, _ s: (gguf: URL, math: MathScratch, weights: ModelWeights, tokenizer: BPETokenizer),
                         rank: Int = 16) throws -> (AdapterSettings, CalibrationResult) {
        let settings = AdapterSettings(rank: rank, alpha: Float(rank), targets: ["all-linear"], initMethod: method)
        let result = try CalibrationLoader.measure(weights: s.weights, tokenizer: s.tokenizer, settings: settings, path: s.math.train,
                                                   batchSize: 4, maxSeqLen: 128, count: 3, lanes: 2)
        return (settings, result)
    }

    /// EVA spends exactly the budget Σ r over the 210 modules, no module above round(ρ·r), the
    /// alphas follow the ranks; every A has orthonormal rows (principal directions).
    func testEVASpendsTheBudgetOnOrthonormalDirections() throws {
        let s = try setup()
        defer { s.math.remove() }
        let (settings, result) = try measure(.eva, s)
        var total = 0
        for (path, calibration) in result.modules {
            guard case .components(let a) = calibration else { return XCTFail("\(path): not components") }
            total += a.rows
            XCTAssertLessThanOrEqual(a.rows, 32, path)
            XCTAssertEqual(result.scale(module: path, rank: a.rows, settings: settings), 1, accuracy: 1e-6, "\(path): alpha × rank / r keeps α/r")
            let gram = BLAS.matmul(a, a, transposeB: true)
            for i in 0..<a.rows { for j in 0..<a.rows { XCTAssertEqual(gram[i, j], i == j ? 1 : 0, accuracy: 1e-4, path) } }
        }
        XCTAssertEqual(total, 16 * 210, "the budget Σ r")
        print("EVA on SmolLM2: \(result.batchesRun) batches, \(result.dropped.count) modules at rank 0, ranks \(Set(result.modules.values.compactMap { if case .components(let a) = $0 { a.rows } else { nil } }).sorted())")
    }

    /// CorDA (IPM) and LoRA-GA rewrite the base exactly (W_res + sBA = W). CorDA's s·B·A·C′ is the
    /// best rank-r approximation of W·C′ (C′ the damped covariance), so it holds at least as much
    /// of ‖W·C′‖ as PiSSA's s·B·A·C′, a projection of W·C′ onto r directions.
    func testCorDAAndLoRAGARewriteTheBaseExactly() throws {
        let s = try setup()
        defer { s.math.remove() }
        for method in [InitMethod.corda, .loraGA] {
            let (settings, result) = try measure(method, s)
            for (layer, p) in [(0, Projection.q), (12, .down), (29, .o)] {
                let path = s.weights.config.modulePath(p, layer: layer)
                let w = s.weights.layers[layer][p].dequantized()
                var residual = w
                var rng = SeededGenerator(seed: 0)
                let f = try AdapterInitializer.initialize(&residual, settings: settings, calibration: result.modules[path], using: &rng)
                var rebuilt = residual
                BLAS.gemm(f.B, f.A, into: &rebuilt, alpha: settings.scale, beta: 1)
                XCTAssertLessThan(rebuilt.relativeDifference(to: w), 1e-6, "\(method) \(path)")
                XCTAssertTrue(f.A.storage.allSatisfy(\.isFinite) && f.B.storage.allSatisfy(\.isFinite))
                guard method == .corda, case .covariance(let c)? = result.modules[path] else { continue }
                var pissaResidual = w
                var pissa = settings
                pissa.initMethod = .pissa
                let pf = try AdapterInitializer.initialize(&pissaResidual, settings: pissa, using: &rng)
                var damped = c   // PEFT's first damping, 1 % of the mean diagonal
                let mean = (0..<c.rows).reduce(Float(0)) { $0 + c[$1, $1] } / Float(c.rows)
                for i in 0..<c.rows { damped[i, i] += 0.01 * mean }
                func seen(_ d: Matrix) -> Double { Double(BLAS.matmul(d, damped).frobeniusNorm) }
                XCTAssertGreaterThan(seen(f.delta(scale: settings.scale)), seen(pf.delta(scale: settings.scale)) * 0.99, "\(path)")
            }
        }
    }

    /// Six steps from each start (DoRA on the LoRA start, with LoRA+) lower the training loss.
    func testShortRunsFromEachStartLowerTheLoss() throws {
        let gguf = try Assets.require(Assets.smolLM2GGUF)
        let math = try MathScratch("starts-runs", train: 48, test: 8, seed: 2)
        defer { math.remove() }
        for (method, dora) in [(InitMethod.milora, false), (.olora, false), (.eva, false), (.lora, true)] {
            var settings = AdapterSettings(rank: 8, alpha: 8, targets: ["all-linear"], initMethod: method)
            settings.useDoRA = dora
            var config = TrainConfig(model: gguf.path, data: math.train, output: math.run + "-\(method)\(dora ? "-dora" : "")", adapter: settings)
            config.learningRate = 1e-3
            config.batchSize = 4
            config.maxSeqLen = 128
            config.steps = 6
            config.calibration = CalibrationSettings(batches: 2)
            if dora { config.loraplusLRRatio = 4 }
            let metrics = try Trainer(config: config).fit()
            let first = try XCTUnwrap(metrics.first?.loss), last = try XCTUnwrap(metrics.last?.loss)
            print("\(method)\(dora ? " + DoRA + LoRA+" : ""): loss \(first) → \(last)")
            XCTAssertLessThan(last, first, "\(method)")
            try? FileManager.default.removeItem(atPath: config.output)
        }
    }
}
