import Adapters
import Foundation
import Model
import TestSupport
import Training
import XCTest

/// PiSSA fine-tuning of SmolLM2-135M on generated math problems: 30 steps lower the held-out loss,
/// and the written adapter, applied by `pissa eval`'s path, reproduces the trainer's eval loss.
final class SmolLM2TrainingTests: XCTestCase {
    func testThirtyPiSSAStepsLowerTheHeldOutLoss() throws {
        let gguf = try Assets.require(Assets.smolLM2GGUF)
        let math = try MathScratch("train", train: 120, test: 16, seed: 0)
        defer { math.remove() }
        var config = TrainConfig(model: gguf.path, data: math.train,
                                 output: math.run,
                                 adapter: AdapterSettings(rank: 16, alpha: 16, targets: ["all-linear"], initMethod: .pissaNiter(4)))
        config.valid = math.test
        config.learningRate = 2e-4
        config.warmupRatio = 0.03
        config.batchSize = 4
        config.maxSeqLen = 128
        config.steps = 30
        config.evalEvery = 30
        let trainer = try Trainer(config: config)
        let validExamples = try DatasetLoader(tokenizer: trainer.tokenizer, maxSeqLen: 128).load(path: config.valid!).examples
        let before = trainer.evaluate(validExamples)
        let metrics = try trainer.fit()
        let after = try XCTUnwrap(metrics.last?.evalLoss)
        print("held-out loss: \(before) → \(after); train loss \(metrics.first?.loss ?? .nan) → \(metrics.last?.loss ?? .nan)")
        XCTAssertLessThan(after, before * 0.9, "30 PiSSA steps lower the held-out loss by more than 10 %")

        // The written adapter (on the residual weights the trainer used) gives the same eval loss.
        let run = URL(fileURLWithPath: config.output)
        for name in ["adapter", "pissa_init", "metrics.jsonl", "loss.svg", "config.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: run.appendingPathComponent(name).path), name)
        }
        let reloaded = try AdapterLoading.inference(path: run.appendingPathComponent("adapter").path, model: trainer.model)
        let again = Evaluation.loss(model: trainer.model, adapters: reloaded.adapters, examples: validExamples,
                                    batchSize: 4).nll
        XCTAssertEqual(again, after, accuracy: 1e-5 * after)
    }
}
