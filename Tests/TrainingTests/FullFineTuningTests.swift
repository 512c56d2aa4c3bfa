import Formats
import Foundation
import LinearAlgebra
import Model
import TestSupport
import Training
import XCTest

/// Full fine-tuning (every weight trained) on the tiny random Llama against PyTorch
/// (scripts/reference/make_full_ft_fixtures.py): the masked mean loss and the gradient of every
/// parameter (the tied embedding's is the lookup's plus the head's), ten AdamW steps' losses,
/// and gradient checkpointing giving the same gradients bit for bit.
final class FullFineTuningTests: XCTestCase {
    /// The tiny model with its weights moved into a store, and the fixture's batch.
    final class Case {
        let file: SafeTensorsFile
        let trainable: TrainableWeights
        let model: DecoderModel
        let tokens: [Int32]
        let targets: [Int32]
        let batch: Int
        var supervised: Int { targets.filter { $0 >= 0 }.count }

        init(lanes: Int = 2) throws {
            file = try SafeTensorsFile(url: PEFTGradientTests.fixtures.appendingPathComponent("full/full.safetensors"))
            let modelDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("ModelTests/Fixtures/tiny_llama")
            var weights = try ModelWeights(source: SafeTensorsWeightSource(directory: modelDir), sourceName: modelDir.path)
            trainable = try TrainableWeights(moving: &weights)
            XCTAssertTrue(weights.embedding.storage.isEmpty && weights.layers[0][.q].rows == 0, "the weights must be moved, not copied")
            model = DecoderModel(weights: weights, lanes: lanes, buffers: trainable.buffers)
            let labels = try file.integers("labels"), ids = try file.integers("tokens")
            let shape = try XCTUnwrap(file.info("tokens")).shape
            batch = shape[0]
            let T = shape[1]
            tokens = ids.map(Int32.init)
            targets = (0..<ids.count).map { n in
                n % T + 1 < T && labels[n + 1] != -100 ? Int32(labels[n + 1]) : -1
            }
        }

        func lossAndGradients(_ scratch: TrainingScratch) -> Double {
            model.lossAndGradients(tokens: tokens, targets: targets, lengths: Array(repeating: tokens.count / batch, count: batch),
                                   adapters: ModelAdapters(config: model.config),
                                   normalizer: Float(supervised), scratch: scratch) / Double(supervised)
        }
    }

    private func checkGradients(lanes: Int) throws {
        let c = try Case(lanes: lanes)
        let store = c.trainable.store
        XCTAssertEqual(store.views.count, 2 + 2 * 9, "embedding, final norm, 9 tensors per layer (no lm_head: tied)")
        store.zeroGradients()
        let loss = c.lossAndGradients(TrainingScratch(model: c.model, capacityRows: c.tokens.count, maxRank: 0))
        let expectedLoss = Double(try c.file.matrix("loss").storage[0])
        XCTAssertEqual(loss, expectedLoss, accuracy: 1e-5 * expectedLoss, "loss")
        var worst = (0.0, "")
        for v in store.views {
            let expected = try c.file.matrix("grad." + v.name)
            let observed = Matrix(rows: expected.rows, cols: expected.cols, storage: store.gradientValues(v))
            let rel = observed.relativeDifference(to: expected)
            if rel > worst.0 { worst = (rel, v.name) }
            XCTAssertLessThanOrEqual(rel, 1e-4, "gradient of \(v.name)")
        }
        print("full FT, \(lanes) lanes: loss \(loss) vs PyTorch \(expectedLoss); worst gradient relative error \(worst.0) (\(worst.1)) over \(store.views.count) tensors")
    }

    func testEveryGradientMatchesPyTorch() throws {
        try checkGradients(lanes: 1)
        try checkGradients(lanes: 2)
    }

    func testTenAdamWStepsMatchPyTorch() throws {
        let c = try Case()
        let store = c.trainable.store
        let scratch = TrainingScratch(model: c.model, capacityRows: c.tokens.count, maxRank: 0)
        let schedule = LRSchedule(kind: .cosine, baseLearningRate: 1e-3, totalSteps: 10, warmup: .steps(1))
        let optimizer = AdamW()
        let losses = try c.file.doubles("steps_loss"), norms = try c.file.doubles("steps_grad_norm")
        let lrs = try c.file.doubles("steps_lr")
        for step in 0..<10 {
            store.zeroGradients()
            let loss = c.lossAndGradients(scratch)
            let norm = store.clipGradients(maxNorm: 1)
            let lr = optimizer.step(store, schedule: schedule)
            XCTAssertEqual(loss, losses[step], accuracy: 1e-4 * losses[step], "loss at step \(step)")
            XCTAssertEqual(norm, norms[step], accuracy: 1e-4 * norms[step], "grad norm at step \(step)")
            XCTAssertEqual(lr, lrs[step], accuracy: 1e-12, "lr at step \(step)")
            print("full FT step \(step): loss \(loss) (PyTorch \(losses[step])), grad norm \(norm) (\(norms[step]))")
        }
    }

    /// Recomputing each layer's forward in backward gives the very same gradients.
    func testGradientCheckpointingIsBitIdentical() throws {
        let c = try Case()
        let store = c.trainable.store
        store.zeroGradients()
        let plain = c.lossAndGradients(TrainingScratch(model: c.model, capacityRows: c.tokens.count + 3, maxRank: 0))
        let expected = Array(UnsafeBufferPointer(start: store.gradients, count: store.count))
        store.zeroGradients()
        let scratch = TrainingScratch(model: c.model, capacityRows: c.tokens.count + 3, maxRank: 0, checkpointing: true)
        XCTAssertTrue(scratch.checkpointing)
        let checkpointed = c.lossAndGradients(scratch)
        XCTAssertEqual(checkpointed, plain)
        XCTAssertEqual(Array(UnsafeBufferPointer(start: store.gradients, count: store.count)), expected,
                       "checkpointed gradients must equal the taped ones bit for bit")
    }

    /// The same for adapter training (PiSSA on the PEFT fixture): the recomputed forward also
    /// refills each projection's x·Aᵀ.
    func testGradientCheckpointingIsBitIdenticalForAdapters() throws {
        var results: [(Double, [String: [Float]])] = []
        for checkpointing in [false, true] {
            let c = try PEFTGradientTests.Case("pissa")
            let scratch = TrainingScratch(model: c.model, capacityRows: c.tokens.count, maxRank: 4, checkpointing: checkpointing)
            let loss = c.withAdapters { ads in
                c.model.lossAndGradients(tokens: c.tokens, targets: c.targets, lengths: Array(repeating: c.tokens.count / c.batch, count: c.batch), adapters: ads,
                                         normalizer: Float(c.supervised), scratch: scratch)
            }
            results.append((loss, c.grads))
        }
        XCTAssertEqual(results[1].0, results[0].0)
        XCTAssertEqual(results[1].1, results[0].1, "checkpointed adapter gradients must equal the taped ones bit for bit")
    }
}
