import Formats
import Foundation
import LinearAlgebra
import Model
import TestSupport
import Training
import XCTest

/// Each family against transformers on a tiny random model that transformers made
/// (scripts/reference/make_family_fixtures.py): the model is read from its own `config.json` and
/// safetensors as a user's would be, then its logits, its masked loss, the full fine-tuning
/// gradient of every weight (biases included) and the gradient of a PEFT LoRA on every projection must match
/// PyTorch's. Tolerances: logits 1e-5 of their largest magnitude, gradients 1e-4 relative (per tensor).
final class FamilyReferenceTests: XCTestCase {
    private static var families: URL {
        Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("families")
    }

    /// One family's fixture: the model directory, the reference tensors and the batch.
    private struct Fixture {
        let directory: URL
        let reference: SafeTensorsFile
        let tokens: [Int32], targets: [Int32], lengths: [Int]
        /// Rows whose logits transformers computed without padding in their context.
        let unpaddedRows: [Int]

        init(_ family: String) throws {
            directory = FamilyReferenceTests.families.appendingPathComponent(family)
            reference = try SafeTensorsFile(url: directory.appendingPathComponent("reference.safetensors"))
            let ids = try reference.integers("tokens"), labels = try reference.integers("labels")
            let shape = try XCTUnwrap(reference.info("tokens")).shape
            let (B, T) = (shape[0], shape[1])
            tokens = ids.map(Int32.init)
            targets = (0..<ids.count).map { n in
                n % T + 1 < T && labels[n + 1] != -100 ? Int32(labels[n + 1]) : -1
            }
            lengths = Array(repeating: T, count: B)
            // Sequence 1 ends in padding: its last labelled position bounds the rows compared.
            let lastLabel = (0..<T).last { labels[T + $0] != -100 } ?? (T - 1)
            unpaddedRows = Array(0..<T) + Array(T..<(T + lastLabel + 1))
        }

        var supervised: Int { targets.filter { $0 >= 0 }.count }

        func weights() throws -> ModelWeights {
            try ModelWeights(source: SafeTensorsWeightSource(directory: directory), sourceName: directory.path)
        }

        func matrix(_ name: String) throws -> Matrix { try reference.matrix(name) }
    }

    private func checkLogits(_ family: String) throws {
        let f = try Fixture(family)
        let model = DecoderModel(weights: try f.weights(), lanes: 2)
        let hidden = model.hiddenStates(tokens: f.tokens, lengths: f.lengths)
        let logits = hidden.withUnsafeBufferPointer { model.logits(hidden: $0.baseAddress!, rows: f.tokens.count) }
        let expected = try f.reference.floats(try XCTUnwrap(f.reference.info("logits")))
        let V = model.config.vocabSize
        var worst: Float = 0, largest: Float = 0
        for r in f.unpaddedRows {
            for j in 0..<V {
                worst = max(worst, abs(logits[r * V + j] - expected[r * V + j]))
                largest = max(largest, abs(expected[r * V + j]))
            }
        }
        print(String(format: "family check  %@ logits: max |Δ| %.2e of max |logit| %.2f (%.1e relative; tolerance 1e-5)",
                     family, worst, largest, worst / largest))
        XCTAssertLessThanOrEqual(worst, 1e-5 * largest, "\(family) logits: worst difference \(worst), largest logit \(largest)")
    }

    private func checkFullFineTuningGradients(_ family: String, lanes: Int) throws {
        let f = try Fixture(family)
        var weights = try f.weights()
        let trainable = try TrainableWeights(moving: &weights)
        let model = DecoderModel(weights: weights, lanes: lanes, buffers: trainable.buffers)
        let scratch = TrainingScratch(model: model, capacityRows: f.tokens.count, maxRank: 0)
        let loss = model.lossAndGradients(tokens: f.tokens, targets: f.targets, lengths: f.lengths,
                                          adapters: ModelAdapters(config: model.config),
                                          normalizer: Float(f.supervised), scratch: scratch)
        let expectedLoss = Double(try f.matrix("loss").storage[0])
        XCTAssertEqual(loss / Double(f.supervised), expectedLoss, accuracy: 1e-5 * expectedLoss, "\(family) loss")
        var compared = 0, worst = 0.0
        for view in trainable.store.views {
            let expected = try f.matrix("grad." + view.name)
            let observed = Matrix(rows: expected.rows, cols: expected.cols,
                                  storage: Array(UnsafeBufferPointer(trainable.store.gradients(of: view))))
            XCTAssertLessThanOrEqual(observed.relativeDifference(to: expected), 1e-4, "\(family) d\(view.name), \(lanes) lanes")
            worst = max(worst, observed.relativeDifference(to: expected))
            compared += 1
        }
        print(String(format: "family check  %@ full fine-tuning: %d gradients, worst relative difference %.1e (tolerance 1e-4), %d lanes",
                     family, compared, worst, lanes))
        XCTAssertEqual(compared, f.reference.tensors.filter { $0.name.hasPrefix("grad.") }.count, "every weight compared")
    }

    private func checkAdapterGradients(_ family: String, lanes: Int) throws {
        let f = try Fixture(family)
        let model = DecoderModel(weights: try f.weights(), lanes: lanes)
        let L = model.config.numHiddenLayers
        var buffers: [UnsafeMutablePointer<Float>] = []
        defer { buffers.forEach { $0.deallocate() } }
        func buffer(_ values: [Float]) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: values.count)
            p.initialize(from: values, count: values.count)
            buffers.append(p)
            return p
        }
        var adapters = ModelAdapters(config: model.config)
        var gradients: [(String, UnsafeMutablePointer<Float>, Matrix)] = []
        for layer in 0..<L {
            for p in model.config.projections where p.isAdapterTarget {
                let path = "lora." + model.config.modulePath(p, layer: layer)
                let a = try f.matrix(path + ".lora_A"), b = try f.matrix(path + ".lora_B")
                let ga = buffer([Float](repeating: 0, count: a.count)), gb = buffer([Float](repeating: 0, count: b.count))
                adapters[layer, p] = LoRAAdapter(a: buffer(a.storage), b: buffer(b.storage), gradA: ga, gradB: gb, rank: 4, scale: 2)
                gradients += [(path + ".grad_A", ga, try f.matrix(path + ".grad_A")), (path + ".grad_B", gb, try f.matrix(path + ".grad_B"))]
            }
        }
        let scratch = TrainingScratch(model: model, capacityRows: f.tokens.count, maxRank: 4)
        let loss = model.lossAndGradients(tokens: f.tokens, targets: f.targets, lengths: f.lengths, adapters: adapters,
                                          normalizer: Float(f.supervised), scratch: scratch)
        let expectedLoss = Double(try f.matrix("lora_loss").storage[0])
        XCTAssertEqual(loss / Double(f.supervised), expectedLoss, accuracy: 1e-5 * expectedLoss, "\(family) adapted loss")
        var worst = 0.0
        for (name, pointer, expected) in gradients {
            let observed = Matrix(rows: expected.rows, cols: expected.cols, storage: Array(UnsafeBufferPointer(start: pointer, count: expected.count)))
            XCTAssertLessThanOrEqual(observed.relativeDifference(to: expected), 1e-4, "\(family) \(name), \(lanes) lanes")
            worst = max(worst, observed.relativeDifference(to: expected))
        }
        print(String(format: "family check  %@ LoRA: %d factor gradients, worst relative difference %.1e (tolerance 1e-4), %d lanes",
                     family, gradients.count, worst, lanes))
    }

    /// Logits, full fine-tuning and PEFT LoRA gradients on 1 and 2 lanes.
    private func checkAll(_ family: String) throws {
        try checkLogits(family)
        for lanes in [1, 2] {
            try checkFullFineTuningGradients(family, lanes: lanes)
            try checkAdapterGradients(family, lanes: lanes)
        }
    }

    // MARK: Gemma 3

    func testGemma3LogitsMatchTransformers() throws { try checkLogits("gemma3") }

    func testGemma3FullFineTuningGradientsMatchPyTorch() throws {
        try checkFullFineTuningGradients("gemma3", lanes: 1)
        try checkFullFineTuningGradients("gemma3", lanes: 2)
    }

    func testGemma3AdapterGradientsMatchPEFT() throws {
        try checkAdapterGradients("gemma3", lanes: 1)
        try checkAdapterGradients("gemma3", lanes: 2)
    }

    // MARK: Part 2 families

    /// q/k/v biases (trained by full fine-tuning, frozen under LoRA), windows on layers 1 and 2, tied head.
    func testQwen2MatchesTransformers() throws { try checkAll("qwen2") }

    /// Per-head q/k norms, head_dim 6 ≠ 16/4, q/k/v/o biases.
    func testQwen3MatchesTransformers() throws { try checkAll("qwen3") }

    /// A window of 5 in every layer, shorter than the 11 positions.
    func testMistralMatchesTransformers() throws { try checkAll("mistral") }

    /// Llama 3.1's rope scaling (all three frequency bands), with attention and MLP biases.
    func testLlama3RopeScalingMatchesTransformers() throws { try checkAll("llama3") }

    /// Fused qkv_proj and gate_up_proj, LoRA on the fused matrices as PEFT puts it, a window of 5.
    func testPhi3MatchesTransformers() throws { try checkAll("phi3") }

    /// 4 experts, 2 per token: routing, renormalised weights and the router's gradient (full
    /// fine-tuning), LoRA on q/k/v/o and every expert's w1, w2, w3 (the router frozen).
    func testMixtralMatchesPyTorch() throws { try checkAll("mixtral") }

    /// rope_scaling linear and dynamic (the latter unchanged within max_position_embeddings).
    func testLinearAndDynamicRopeScalingMatchTransformers() throws {
        try checkAll("llama_linear")
        try checkAll("llama_dynamic")
    }
}
