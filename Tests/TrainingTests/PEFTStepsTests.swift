import Adapters
import Formats
import Foundation
import LinearAlgebra
import Model
import TestSupport
import Training
import XCTest

/// Ten optimiser steps (AdamW, cosine schedule with warmup, clipping to norm 1) on the PEFT
/// fixture batch reproduce PyTorch's losses, gradient norms and learning rates.
final class PEFTStepsTests: XCTestCase {
    private func run(_ name: String) throws {
        let c = try PEFTGradientTests.Case(name)
        var initial: [(layer: Int, projection: Projection, factors: LoRAFactors, scale: Float)] = []
        for layer in 0..<c.model.config.numHiddenLayers {
            for p in c.model.config.projections {
                let path = c.model.config.modulePath(p, layer: layer)
                initial.append((layer, p, LoRAFactors(A: try c.file.matrix(path + ".lora_A"), B: try c.file.matrix(path + ".lora_B")), 2))
            }
        }
        let trainable = try TrainableAdapters(initial: initial, config: c.model.config)
        let scratch = TrainingScratch(model: c.model, capacityRows: c.tokens.count, maxRank: 4)
        let schedule = LRSchedule(kind: .cosine, baseLearningRate: 1e-2, totalSteps: 10, warmup: .steps(1))
        let optimizer = AdamW()
        let losses = try c.file.doubles("steps_loss"), norms = try c.file.doubles("steps_grad_norm")
        let lrs = try c.file.doubles("steps_lr")
        for step in 0..<10 {
            trainable.store.zeroGradients()
            let loss = c.model.lossAndGradients(tokens: c.tokens, targets: c.targets, lengths: Array(repeating: c.tokens.count / c.batch, count: c.batch), adapters: trainable.adapters,
                                                normalizer: Float(c.supervised), scratch: scratch) / Double(c.supervised)
            let norm = trainable.store.clipGradients(maxNorm: 1)
            let lr = optimizer.step(trainable.store, schedule: schedule)
            XCTAssertEqual(loss, losses[step], accuracy: 1e-4 * losses[step], "\(name) loss at step \(step)")
            XCTAssertEqual(norm, norms[step], accuracy: 1e-4 * norms[step], "\(name) grad norm at step \(step)")
            XCTAssertEqual(lr, lrs[step], accuracy: 1e-9, "\(name) lr at step \(step)")
            print("\(name) step \(step): loss \(loss) (PyTorch \(losses[step])), grad norm \(norm) (\(norms[step]))")
        }
    }

    func testPiSSATenStepsMatchPyTorch() throws { try run("pissa") }
    func testLoRATenStepsMatchPyTorch() throws { try run("lora") }
}
