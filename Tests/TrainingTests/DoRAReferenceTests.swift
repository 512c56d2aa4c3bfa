import Adapters
import Formats
import Foundation
import LinearAlgebra
import Model
import TestSupport
import Training
import XCTest

/// DoRA against PEFT (`use_dora=True` on the PiSSA start of the tiny Llama;
/// scripts/reference/make_variant_fixtures.py → peft/dora.safetensors): the magnitude PEFT
/// starts from, the loss and every gradient (A, B and the magnitude vector) of one step, then ten
/// AdamW steps.
final class DoRAReferenceTests: XCTestCase {
    private func trainable(_ c: PEFTGradientTests.Case, magnitudes: Bool = true) throws -> TrainableAdapters {
        var initial: [(layer: Int, projection: Projection, factors: LoRAFactors, scale: Float)] = []
        for layer in 0..<c.model.config.numHiddenLayers {
            for p in c.model.config.projections {
                let path = c.model.config.modulePath(p, layer: layer)
                let m = magnitudes ? try c.file.floats(try XCTUnwrap(c.file.info(path + ".magnitude"))) : nil
                initial.append((layer, p, LoRAFactors(A: try c.file.matrix(path + ".lora_A"), B: try c.file.matrix(path + ".lora_B"),
                                                      magnitude: m), 2))
            }
        }
        let t = try TrainableAdapters(initial: initial, config: c.model.config)
        t.refreshDoRANorms(model: c.model)
        return t
    }

    /// PEFT's magnitude is ‖W_res + s·B·A‖ per row of the start: what `LoRAFactors.doraMagnitude` gives.
    func testStartMagnitudeEqualsPEFTs() throws {
        let c = try PEFTGradientTests.Case("dora")
        var worst = 0.0
        for layer in 0..<c.model.config.numHiddenLayers {
            for p in c.model.config.projections {
                let path = c.model.config.modulePath(p, layer: layer)
                let w = try c.file.matrix("base." + path + ".weight")
                let ours = LoRAFactors.doraMagnitude(frozen: w, A: try c.file.matrix(path + ".lora_A"), B: try c.file.matrix(path + ".lora_B"),
                                                     scale: 2)
                let theirs = try c.file.floats(try XCTUnwrap(c.file.info(path + ".magnitude")))
                for (a, b) in zip(ours, theirs) { worst = max(worst, Double(abs(a - b) / abs(b))) }
            }
        }
        print("DoRA start magnitude vs PEFT: max relative difference \(worst)")
        XCTAssertLessThan(worst, 1e-6)
    }

    func testLossAndGradientsMatchPEFT() throws {
        for lanes in [1, 2] {
            let c = try PEFTGradientTests.Case("dora", lanes: lanes)
            let t = try trainable(c)
            let scratch = TrainingScratch(model: c.model, capacityRows: c.tokens.count, maxRank: 4)
            t.store.zeroGradients()
            let loss = c.model.lossAndGradients(tokens: c.tokens, targets: c.targets, lengths: Array(repeating: c.tokens.count / c.batch, count: c.batch),
                                                adapters: t.adapters, normalizer: Float(c.supervised), scratch: scratch) / Double(c.supervised)
            let expectedLoss = Double(try c.file.floats(try XCTUnwrap(c.file.info("loss")))[0])
            XCTAssertEqual(loss, expectedLoss, accuracy: 1e-5 * expectedLoss)
            var worst = 0.0
            for m in t.modules {
                for (view, name) in [(m.a, "grad_A"), (m.b, "grad_B"), (m.magnitude!, "grad_magnitude")] {
                    let expected = try c.file.floats(try XCTUnwrap(c.file.info(m.path + "." + name)))
                    let observed = t.store.gradientValues(view)
                    let scale = max(expected.map { abs(Double($0)) }.max()!, 1e-12)
                    let error = zip(observed, expected).map { abs(Double($0) - Double($1)) }.max()! / scale
                    worst = max(worst, error)
                    XCTAssertLessThanOrEqual(error, 1e-4, "\(m.path).\(name), \(lanes) lanes")
                }
            }
            print("DoRA, \(lanes) lanes: loss \(loss) vs PEFT \(expectedLoss); worst gradient error (relative to each tensor's largest) \(worst)")
        }
    }

    /// Ten AdamW steps (cosine, 1 warmup step, clipping to 1): the norms are refreshed after each
    /// step, as the trainer does; the losses and gradient norms follow PyTorch's.
    func testTenStepsMatchPyTorch() throws {
        let c = try PEFTGradientTests.Case("dora")
        let t = try trainable(c)
        let scratch = TrainingScratch(model: c.model, capacityRows: c.tokens.count, maxRank: 4)
        let schedule = LRSchedule(kind: .cosine, baseLearningRate: 1e-2, totalSteps: 10, warmup: .steps(1))
        let losses = try c.file.doubles("steps_loss"), norms = try c.file.doubles("steps_grad_norm")
        for step in 0..<10 {
            t.store.zeroGradients()
            let loss = c.model.lossAndGradients(tokens: c.tokens, targets: c.targets, lengths: Array(repeating: c.tokens.count / c.batch, count: c.batch),
                                                adapters: t.adapters, normalizer: Float(c.supervised), scratch: scratch) / Double(c.supervised)
            let norm = t.store.clipGradients(maxNorm: 1)
            AdamW().step(t.store, schedule: schedule)
            t.refreshDoRANorms(model: c.model)
            XCTAssertEqual(loss, losses[step], accuracy: 1e-4 * losses[step], "loss at step \(step)")
            XCTAssertEqual(norm, norms[step], accuracy: 1e-4 * norms[step], "grad norm at step \(step)")
        }
    }
}
