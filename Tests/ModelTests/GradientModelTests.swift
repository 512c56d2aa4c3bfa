import Foundation
import LinearAlgebra
@testable import Model
import TestSupport
import XCTest

/// The composed backward passes against central differences of the tiny Llama written out in
/// Double (GradientReference.swift): one decoder layer, then the whole training step.
///
/// hidden 16, MLP 24, 2 layers, 4 heads on 2 KV heads of dim 4, vocabulary 20, tied head; LoRA
/// rank 2 with scale 2 on all seven projections, A and B both nonzero. Tolerances (entrywise
/// relative, GradientCheck.maxRelativeError): forwards 1e-4, gradients 1e-3 — the float32
/// step composes a dozen kernels, and the residual stream's small entries lose digits to
/// cancellation (observed: layer output 1.3e-5, loss 4e-8, gradients ≤ 5e-5).
final class GradientModelTests: XCTestCase {
    private typealias G = GradientCheck
    private let forwardTolerance = 1e-4
    private let gradientTolerance = 1e-3

    /// Checks sampled adapter gradients one projection at a time, so a failure names the backward.
    private func checkAdapterGradients(_ label: String, observed: [Float], expected: [Double], indices: [Int],
                                       flat: G.FlatAdapters, file: StaticString = #filePath, line: UInt = #line) {
        for p in Set(flat.slots.map(\.projection)).sorted(by: { "\($0)" < "\($1)" }) {
            let mine = indices.indices.filter { i in flat.slots.contains { $0.projection == p && $0.a <= indices[i] && indices[i] < $0.b + $0.outF * flat.rank } }
            guard !mine.isEmpty else { continue }
            G.check("\(label) \(p) dA, dB (\(mine.count) sampled)", mine.map { Double(observed[indices[$0]]) },
                    mine.map { expected[$0] }, tolerance: gradientTolerance, file: file, line: line)
        }
    }

    /// The tiny model, LoRA factors (rank 2, scale 2, A and B nonzero) from `seed` on all its
    /// projections, and the Double reference of both.
    private func tinyAdapted(seed: UInt64, config: ModelConfig = G.tinyConfig) throws
        -> (weights: ModelWeights, flat: G.FlatAdapters, reference: G.ReferenceModel) {
        let weights = try G.tinyWeights(config: config)
        let flat = G.FlatAdapters(weights: weights, rank: 2, scale: 2, seed: seed)
        return (weights, flat, G.ReferenceModel(weights: weights, adapters: flat))
    }

    /// One `lossAndGradients` on `lanes` lanes shared as `parallelism` says, with the adapters'
    /// gradients starting at `start` (zero when nil): Σ NLL and what the step added to each gradient.
    private func trainingStep(_ weights: ModelWeights, _ flat: G.FlatAdapters, lanes: Int, parallelism: StepParallelism = .automatic,
                              tokens: [Int32], targets: [Int32], lengths: [Int], capacityRows: Int,
                              start: [Float]? = nil) -> (loss: Double, added: [Float]) {
        let model = DecoderModel(weights: weights, lanes: lanes)
        let scratch = TrainingScratch(model: model, capacityRows: capacityRows, maxRank: flat.rank)
        let start = start ?? [Float](repeating: 0, count: flat.count)
        flat.setGradients(start)
        let normalizer = Float(targets.filter { $0 >= 0 }.count)
        let loss = model.lossAndGradients(tokens: tokens, targets: targets, lengths: lengths, adapters: flat.adapters,
                                          normalizer: normalizer, scratch: scratch, parallelism: parallelism)
        return (loss, zip(flat.gradientValues, start).map { Float(Double($0) - Double($1)) })
    }

    /// Layer 1's forwardLayer / backwardLayer: output, dx (every entry) and its adapters' dA, dB
    /// (4 sampled entries of each factor) for L = Σ layer(x) ⊙ R. Batch 2 × 6 positions.
    func testDecoderLayerBackward() throws {
        try checkLayerBackward(G.tinyConfig)
    }

    /// The same through a Qwen3-style layer: frozen q/k/v/o biases beside the adapters, q/k norms, a window.
    func testQwenDecoderLayerBackward() throws {
        try checkLayerBackward(G.tinyQwenConfig)
    }

    /// The same through a Phi-3 layer: adapters on the fused qkv and gate_up matrices.
    func testPhi3DecoderLayerBackward() throws {
        try checkLayerBackward(G.tinyPhi3Config)
    }

    /// The same through a Mixtral layer: routing recomputed in backward, adapters on every expert,
    /// the gradient reaching the layer's input through the frozen router too.
    func testMixtralDecoderLayerBackward() throws {
        try checkLayerBackward(G.tinyMixtralConfig)
    }

    private func checkLayerBackward(_ config: ModelConfig) throws {
        var rng = SeededGenerator(seed: 21)
        let (weights, flat, reference) = try tinyAdapted(seed: 22, config: config)
        let c = weights.config
        let (batch, T, layer) = (2, 6, 1)
        let N = batch * T, C = c.hiddenSize
        let positions = (0..<N).map { Int32($0 % T) }
        let x = G.randomFloats(N * C, using: &rng), r = G.randomFloats(N * C, using: &rng)
        let (xd, rd, θ) = (x.map(Double.init), r.map(Double.init), flat.parameterValues.map(Double.init))
        let sample = flat.sampleIndices(perFactor: 4, layer: layer, using: &rng)

        let expected = reference.layer(layer, x: xd, batch: batch, parameters: θ)
        let fdX = G.centralDifferences(at: xd) { G.weightedSum(reference.layer(layer, x: $0, batch: batch, parameters: θ), rd) }
        let fdθ = G.centralDifferences(at: θ, indices: sample) {
            G.weightedSum(reference.layer(layer, x: xd, batch: batch, parameters: $0), rd)
        }

        for lanes in [1, 2] {
            let model = DecoderModel(weights: weights, lanes: lanes)
            let adapters = flat.adapters.layers[layer]
            let tape = LayerTape(rows: N, config: c, maxRank: flat.rank)
            let work = Workspace(rows: N, config: c), grad = BackwardWorkspace(rows: N, config: c)
            flat.setGradients([Float](repeating: 0, count: flat.count))
            var y = x
            model.forwardLayer(layer, x: &y, work: work, lengths: Array(repeating: N / batch, count: batch), positions: positions, rows: N, cache: nil,
                               adapters: adapters, tape: tape)
            G.check("decoder layer forward, \(lanes) lanes", y, expected, tolerance: forwardTolerance)
            var dx = r
            model.backwardLayer(layer, dx: &dx, tape: tape, work: work, grad: grad, lengths: Array(repeating: N / batch, count: batch), positions: positions,
                                rows: N, adapters: adapters)
            G.check("decoder layer dx, \(lanes) lanes", dx, fdX, tolerance: gradientTolerance)
            checkAdapterGradients("decoder layer, \(lanes) lanes,", observed: flat.gradientValues, expected: fdθ,
                                  indices: sample, flat: flat)
        }
    }

    /// The ways of running a step checked against the reference: one lane; two lanes splitting
    /// every product (and the head's chunks); two lanes taking whole sequences each.
    private let ways: [(lanes: Int, parallelism: StepParallelism)] = [(1, .automatic), (2, .products), (2, .sequences)]

    /// `lossAndGradients` on 2 sequences of 18 (36 rows, 33 supervised: two head chunks when
    /// the products are split) with a masked prompt and right padding, each way of `ways`;
    /// gradients of the mean NLL for 2 sampled entries of each of the 28 factors, added onto
    /// random values.
    func testLossAndGradientsMatchFiniteDifferences() throws {
        var rng = SeededGenerator(seed: 31)
        let (weights, flat, reference) = try tinyAdapted(seed: 32)
        let c = weights.config
        let (batch, T) = (2, 18)
        let N = batch * T
        let tokens = (0..<N).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) }
        var targets = (0..<N).map { n in n % T == T - 1 ? Int32(-1) : tokens[n + 1] }
        targets[0] = -1                          // a one-token prompt in sequence 0
        targets[N - 2] = -1                      // padding at the end of sequence 1
        let supervised = targets.filter { $0 >= 0 }.count   // 33: two head chunks on two lanes
        let θ = flat.parameterValues.map(Double.init)
        let sample = flat.sampleIndices(perFactor: 2, using: &rng)

        let expectedLoss = reference.lossSum(tokens: tokens, targets: targets, batch: batch, parameters: θ)
        let fd = G.centralDifferences(at: θ, indices: sample) {
            reference.lossSum(tokens: tokens, targets: targets, batch: batch, parameters: $0) / Double(supervised)
        }

        var gradients: [[Double]] = []
        for (lanes, parallelism) in ways {
            // Every kernel level (AVX2, and AVX-512 where the CPU has it) against the same references.
            forEachKernelLevel { level in
                let way = "\(lanes) lanes, \(parallelism), \(level)"
                let (loss, added) = trainingStep(weights, flat, lanes: lanes, parallelism: parallelism, tokens: tokens, targets: targets,
                                                 lengths: Array(repeating: T, count: batch), capacityRows: N + 5,
                                                 start: G.randomFloats(flat.count, std: 1e-3, using: &rng))
                G.check("lossAndGradients Σ NLL, \(way)", [loss], [expectedLoss], tolerance: forwardTolerance)
                checkAdapterGradients("lossAndGradients, \(way),", observed: added, expected: fd, indices: sample, flat: flat)
                if level == CPUKernels.best.description { gradients.append(added.map(Double.init)) }
            }
        }
        // Two lanes sum the same products in another order: float32 reassociation only (3e-5
        // observed on some OpenBLAS kernels); a lane that dropped or doubled a chunk or a
        // sequence is off by O(1).
        for (i, (lanes, parallelism)) in ways.enumerated().dropFirst() {
            G.check("lossAndGradients all \(flat.count) grads, \(lanes) lanes \(parallelism) vs 1", gradients[i], gradients[0], tolerance: 1e-4)
        }
    }

    /// Sequences of unequal lengths packed back to back (no padding) give each sequence what it
    /// gets alone, each way of `ways` (taking whole sequences, lane 0 gets 12 rows, lane 1 the
    /// 7 + 3 around them): the loss is the Double reference's sum over the sequences one at a time, and
    /// every adapter gradient equals finite differences of that sum.
    func testPackedSequencesMatchEachSequenceAlone() throws {
        var rng = SeededGenerator(seed: 33)
        let (weights, flat, reference) = try tinyAdapted(seed: 34)
        let c = weights.config
        let lengths = [7, 12, 3]
        let sequences = lengths.map { n in (0..<n).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) } }
        let seqTargets = sequences.map { seq in seq.indices.map { t in t == 0 || t + 1 == seq.count ? Int32(-1) : seq[t + 1] } }
        let (tokens, targets) = (Array(sequences.joined()), Array(seqTargets.joined()))
        let supervised = targets.filter { $0 >= 0 }.count
        let θ = flat.parameterValues.map(Double.init)
        let sample = flat.sampleIndices(perFactor: 2, using: &rng)
        func alone(_ parameters: [Double]) -> Double {
            zip(sequences, seqTargets).reduce(0.0) { $0 + reference.lossSum(tokens: $1.0, targets: $1.1, batch: 1, parameters: parameters) }
        }
        let expectedLoss = alone(θ)
        let fd = G.centralDifferences(at: θ, indices: sample) { alone($0) / Double(supervised) }
        for (lanes, parallelism) in ways {
            let (loss, added) = trainingStep(weights, flat, lanes: lanes, parallelism: parallelism, tokens: tokens, targets: targets,
                                             lengths: lengths, capacityRows: tokens.count)
            G.check("packed Σ NLL, \(lanes) lanes, \(parallelism)", [loss], [expectedLoss], tolerance: forwardTolerance)
            checkAdapterGradients("packed lossAndGradients, \(lanes) lanes, \(parallelism),", observed: added, expected: fd,
                                  indices: sample, flat: flat)
            let nll = Perplexity.maskedNLL(model: DecoderModel(weights: weights, lanes: lanes), tokens: tokens, targets: targets, lengths: lengths, adapters: flat.adapters)
            G.check("packed maskedNLL, \(lanes) lanes", [nll.totalNLL], [expectedLoss], tolerance: forwardTolerance)
        }
    }
}
