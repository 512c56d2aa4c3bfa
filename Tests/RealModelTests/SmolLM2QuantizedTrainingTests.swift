import Adapters
import Foundation
import LinearAlgebra
import Model
import TestSupport
import Training
import XCTest

/// QPiSSA (T = 1) on SmolLM2-135M: PiSSA's factors on W, the residual held in NF4 during
/// training (`--quant nf4`). A few steps on generated math lower the held-out loss, and the
/// trainer's eval loss on the NF4 base equals the eval of the same adapter on the dense model
/// holding the dequantised residual (≤ 1e-5 relative): the tiled NF4 products compute the
/// dequantised model exactly, up to summation order.
final class SmolLM2QuantizedTrainingTests: XCTestCase {
    func testQPiSSAStepsOnNF4BaseLowerTheLossAndMatchTheDequantizedModel() throws {
        let gguf = try Assets.require(Assets.smolLM2GGUF)
        let math = try MathScratch("qtrain", train: 60, test: 12, seed: 1)
        defer { math.remove() }
        var config = TrainConfig(model: gguf.path, data: math.train,
                                 output: math.run,
                                 adapter: AdapterSettings(rank: 16, alpha: 16, targets: ["all-linear"], initMethod: .pissaNiter(4)))
        config.valid = math.test
        config.learningRate = 3e-4
        config.warmupSteps = 0
        config.batchSize = 4
        config.maxSeqLen = 128
        config.steps = 12
        config.evalEvery = 12
        config.quant = QuantSettings()   // NF4, QPiSSA with T = 1
        let trainer = try Trainer(config: config)
        let weights = trainer.model.weights
        XCTAssertTrue(weights.layers.allSatisfy { l in l.projections.allSatisfy { $0 is NF4Matrix } }, "every projection in NF4")
        XCTAssertTrue(weights.embedding.count > 0 && weights.outputHead.count > 0, "embedding and head stay float32")

        let validExamples = try DatasetLoader(tokenizer: trainer.tokenizer, maxSeqLen: 128).load(path: config.valid!).examples
        let before = trainer.evaluate(validExamples)
        let metrics = try trainer.fit()
        let after = try XCTUnwrap(metrics.last?.evalLoss)
        let losses = metrics.compactMap(\.loss)
        print("QPiSSA on NF4: held-out loss \(before) → \(after); train loss \(losses.first ?? .nan) → \(losses.last ?? .nan); "
              + "projections \(weights.projectionBytes / 1_048_576) MB")
        XCTAssertTrue(losses.allSatisfy(\.isFinite), "finite training losses")
        XCTAssertLessThan(after, before * 0.95, "12 QPiSSA steps lower the held-out loss")

        // The same adapter on the dense model holding the dequantised residual.
        let dense = DecoderModel(weights: weights.dequantized(), lanes: 2)
        let denseLoss = Evaluation.loss(model: dense, adapters: try XCTUnwrap(trainer.trainable).adapters, examples: validExamples,
                                        batchSize: config.batchSize).nll
        print("eval loss: NF4 base \(after), dense dequantised \(denseLoss), relative \(abs(after - denseLoss) / denseLoss)")
        XCTAssertEqual(after, denseLoss, accuracy: 1e-5 * denseLoss)
    }
}
