import Formats
import Foundation
import LinearAlgebra
@testable import Model
import XCTest

/// Helpers of the finite-difference gradient checks (GradientTests, GradientModelTests):
/// random inputs, central differences in Double, the comparison that prints its error, an
/// in-memory random Llama and LoRA factors in one flat float32 layout.
enum GradientCheck {
    /// Step of the central differences. The reference is smooth and in Double, so the
    /// truncation error (~h²) and the rounding error (~1e-16/h) are both below 1e-9.
    static let step = 1e-5

    /// Gaussian floats with standard deviation `std`. Inputs are drawn in float32 so that the
    /// kernels and the Double reference see exactly the same values.
    static func randomFloats(_ count: Int, std: Float = 1, mean: Float = 0, using rng: inout SeededGenerator) -> [Float] {
        Matrix.gaussian(rows: 1, cols: count, std: std, using: &rng).storage.map { $0 + mean }
    }

    /// d f / d x_i by central differences for each i in `indices` (every coordinate when nil).
    static func centralDifferences(at x: [Double], indices: [Int]? = nil, h: Double = step,
                                   _ f: ([Double]) -> Double) -> [Double] {
        var x = x
        return (indices ?? Array(x.indices)).map { i in
            let x0 = x[i]
            x[i] = x0 + h
            let plus = f(x)
            x[i] = x0 - h
            let minus = f(x)
            x[i] = x0
            return (plus - minus) / (2 * h)
        }
    }

    /// Σ y ⊙ r: the scalar loss whose gradient with respect to y is r.
    static func weightedSum(_ y: [Double], _ r: [Double]) -> Double {
        precondition(y.count == r.count)
        var s = 0.0
        for i in y.indices { s += y[i] * r[i] }
        return s
    }

    /// The largest entrywise relative error, each entry measured against
    /// max(|expected_i|, 1% of max_j |expected_j|) so that near-zero entries (where float32
    /// cancellation leaves an absolute, not relative, error) do not dominate.
    static func maxRelativeError(_ observed: [Double], _ expected: [Double]) -> Double {
        precondition(observed.count == expected.count, "\(observed.count) observed vs \(expected.count) expected")
        let floor = max(0.01 * (expected.map(abs).max() ?? 0), .leastNormalMagnitude)
        var worst = 0.0
        for i in expected.indices {
            let e = abs(observed[i] - expected[i]) / max(abs(expected[i]), floor)
            if !(e <= worst) { worst = e }   // NaN propagates
        }
        return worst
    }

    /// Prints the max relative error of `observed` against `expected` and fails beyond `tolerance`,
    /// listing the first mismatches.
    static func check(_ label: String, _ observed: [Double], _ expected: [Double], tolerance: Double,
                      file: StaticString = #filePath, line: UInt = #line) {
        let error = maxRelativeError(observed, expected)
        let padded = label.padding(toLength: max(label.count, 44), withPad: " ", startingAt: 0)
        print("gradient check  \(padded) max rel error \(String(format: "%.2e", error))  (tolerance \(String(format: "%.0e", tolerance)))")
        guard !(error <= tolerance) else { return }
        let floor = 0.01 * (expected.map(abs).max() ?? 0)
        let bad = expected.indices.filter { abs(observed[$0] - expected[$0]) > tolerance * max(abs(expected[$0]), floor) }
        let lines = bad.prefix(6).map { "  [\($0)] observed \(observed[$0]) expected \(expected[$0])" }
        XCTFail("\(label): max relative error \(error) > \(tolerance) (\(bad.count) of \(expected.count) entries)\n"
                + lines.joined(separator: "\n"), file: file, line: line)
    }

    static func check(_ label: String, _ observed: [Float], _ expected: [Double], tolerance: Double,
                      file: StaticString = #filePath, line: UInt = #line) {
        check(label, observed.map(Double.init), expected, tolerance: tolerance, file: file, line: line)
    }
}

// MARK: - A tiny random Llama in memory

extension GradientCheck {
    /// hidden 16, MLP 24, 2 layers, 4 query heads on 2 KV heads of dim 4, vocabulary 20, tied head.
    static let tinyConfig = ModelConfig(
        architecture: "llama", modelType: "llama", hiddenSize: 16, intermediateSize: 24, numHiddenLayers: 2,
        numAttentionHeads: 4, numKeyValueHeads: 2, headDim: 4, vocabSize: 20, maxPositionEmbeddings: 64, rmsNormEps: 1e-5,
        tieWordEmbeddings: true, block: .llama(headDim: 4), layers: Array(repeating: LayerAttention(rope: RopeSpec(theta: 10000)), count: 2))

    /// A tiny Gemma 3: hidden 16, MLP 24, 3 layers (two sliding over 5 positions with base 10⁴,
    /// one global with base 10⁶), 4 query heads on 2 KV heads of dim 6 (H·D = 24 ≠ C), a
    /// `query_pre_attn_scalar` of 5, vocabulary 20, tied head.
    static let tinyGemmaConfig = ModelConfig(
        architecture: "gemma3", modelType: "gemma3_text", hiddenSize: 16, intermediateSize: 24, numHiddenLayers: 3,
        numAttentionHeads: 4, numKeyValueHeads: 2, headDim: 6, vocabSize: 20, maxPositionEmbeddings: 64, rmsNormEps: 1e-6,
        tieWordEmbeddings: true, block: Gemma3Architecture.block(hiddenSize: 16, queryPreAttnScalar: 5),
        layers: [LayerAttention(slidingWindow: 5, rope: RopeSpec(theta: 10_000)), LayerAttention(slidingWindow: 5, rope: RopeSpec(theta: 10_000)),
                 LayerAttention(rope: RopeSpec(theta: 1_000_000))])

    /// A tiny Qwen3-style block with every feature part 2 adds to the dense block: q, k, v and o
    /// biases, per-head q/k norms, head_dim 6 ≠ 16/4, and a window of 5 on layer 1 only.
    static let tinyQwenConfig: ModelConfig = {
        var block = BlockSpec.llama(headDim: 6)
        block.queryKeyNorm = true
        block.biases = [.q, .k, .v, .o]
        return ModelConfig(
            architecture: "qwen3", modelType: "qwen3", hiddenSize: 16, intermediateSize: 24, numHiddenLayers: 2,
            numAttentionHeads: 4, numKeyValueHeads: 2, headDim: 6, vocabSize: 20, maxPositionEmbeddings: 64, rmsNormEps: 1e-6,
            tieWordEmbeddings: true, block: block,
            layers: [LayerAttention(rope: RopeSpec(theta: 1e6)), LayerAttention(slidingWindow: 5, rope: RopeSpec(theta: 1e6))])
    }()

    /// A tiny Phi-3: fused qkv (H·D + 2·KV·D = 48 rows) and gate_up (48 rows), head_dim 6 ≠ 16/4,
    /// a window of 5 in both layers.
    static let tinyPhi3Config = ModelConfig(
        architecture: "phi3", modelType: "phi3", hiddenSize: 16, intermediateSize: 24, numHiddenLayers: 2,
        numAttentionHeads: 4, numKeyValueHeads: 2, headDim: 6, vocabSize: 20, maxPositionEmbeddings: 64, rmsNormEps: 1e-5,
        tieWordEmbeddings: true, block: Phi3Architecture.block(headDim: 6),
        layers: Array(repeating: LayerAttention(slidingWindow: 5, rope: RopeSpec(theta: 10_000)), count: 2))

    /// A tiny Mixtral: 4 experts of width 12, 2 per token, in 2 layers (hidden 16, 4 query heads
    /// on 2 KV heads of dim 4, vocabulary 20, tied head).
    static let tinyMixtralConfig = ModelConfig(
        architecture: "mixtral", modelType: "mixtral", hiddenSize: 16, intermediateSize: 12, numHiddenLayers: 2,
        numAttentionHeads: 4, numKeyValueHeads: 2, headDim: 4, vocabSize: 20, maxPositionEmbeddings: 64, rmsNormEps: 1e-5,
        tieWordEmbeddings: true, block: MixtralArchitecture.block(headDim: 4, experts: 4, topK: 2),
        layers: Array(repeating: LayerAttention(rope: RopeSpec(theta: 1e6)), count: 2))

    /// Random tensors under Hugging Face names: linear weights N(0, 1/in), norms 1 + N(0, 0.1²),
    /// biases N(0, 0.1²), embeddings N(0, 0.5²).
    struct RandomWeightSource: WeightSource {
        let config: ModelConfig
        private var tensors: [String: (shape: [Int], floats: [Float])] = [:]

        init(config c: ModelConfig, seed: UInt64) {
            self.config = c
            var rng = SeededGenerator(seed: seed)
            let (C, F, V) = (c.hiddenSize, c.intermediateSize, c.vocabSize)
            let (qw, kvw) = (c.numAttentionHeads * c.headDim, c.numKeyValueHeads * c.headDim)
            func add(_ name: String, _ shape: [Int], std: Float, mean: Float = 0) {
                tensors[name] = (shape, randomFloats(shape.reduce(1, *), std: std, mean: mean, using: &rng))
            }
            // Norm weights scatter around an effective scale of 1: w ≈ 1 for Llama, w ≈ 0 for Gemma's (1 + w).
            let normMean = 1 - c.block.normWeightOffset
            for (name, shape) in ModelTensors.expected(c) {
                if name.hasSuffix("norm.weight") { add(name, shape, std: 0.1, mean: normMean) }
                else if name == "model.embed_tokens.weight" { add(name, shape, std: 0.5) }
                else if name.hasSuffix(".bias") { add(name, shape, std: 0.1) }
                else { add(name, shape, std: 1 / Float(shape[1]).squareRoot()) }
            }
        }

        func has(_ name: String) -> Bool { tensors[name] != nil }

        func tensor(_ name: String) throws -> (shape: [Int], floats: [Float]) {
            guard let t = tensors[name] else { throw ModelError.missingTensor(source: "memory", name: name) }
            return t
        }
    }

    static func tinyWeights(config: ModelConfig = tinyConfig, seed: UInt64 = 7) throws -> ModelWeights {
        try ModelWeights(source: RandomWeightSource(config: config, seed: seed), sourceName: "memory")
    }
}

// MARK: - LoRA factors in one flat layout

extension GradientCheck {
    /// LoRA factors of every projection of every layer in one flat float32 buffer (per adapter
    /// A (r, in) then B (out, r)), with a gradient buffer of the same layout, as the trainer keeps
    /// them. `adapters` points into both.
    final class FlatAdapters {
        struct Slot {
            let layer: Int, projection: Projection
            let a: Int, b: Int          // offsets of A and B in the flat buffers
            let inF: Int, outF: Int
        }

        let rank: Int, scale: Float
        let slots: [Slot]
        let count: Int
        let parameters: UnsafeMutablePointer<Float>
        let gradients: UnsafeMutablePointer<Float>
        private(set) var adapters: ModelAdapters

        /// A and B ~ N(0, std²) (both nonzero, so every gradient path is exercised).
        init(weights: ModelWeights, rank: Int, scale: Float, std: Float = 0.3, seed: UInt64) {
            self.rank = rank
            self.scale = scale
            var slots: [Slot] = []
            var offset = 0
            for (l, layer) in weights.layers.enumerated() {
                for p in weights.config.projections where p.isAdapterTarget {
                    let w = layer[p]
                    slots.append(Slot(layer: l, projection: p, a: offset, b: offset + rank * w.cols, inF: w.cols, outF: w.rows))
                    offset += rank * (w.cols + w.rows)
                }
            }
            self.slots = slots
            count = offset
            var rng = SeededGenerator(seed: seed)
            parameters = .allocate(capacity: count)
            parameters.initialize(from: randomFloats(count, std: std, using: &rng), count: count)
            gradients = .allocate(capacity: count)
            gradients.initialize(repeating: 0, count: count)
            adapters = ModelAdapters(config: weights.config)
            for s in slots {
                adapters[s.layer, s.projection] = LoRAAdapter(
                    a: parameters + s.a, b: parameters + s.b, gradA: gradients + s.a, gradB: gradients + s.b,
                    rank: rank, scale: scale)
            }
        }

        deinit {
            parameters.deallocate()
            gradients.deallocate()
        }

        var parameterValues: [Float] { Array(UnsafeBufferPointer(start: parameters, count: count)) }
        var gradientValues: [Float] { Array(UnsafeBufferPointer(start: gradients, count: count)) }

        func setGradients(_ values: [Float]) { gradients.update(from: values, count: count) }

        /// A few random flat indices inside each A and each B (sorted), for finite differences
        /// that stay cheap in debug builds.
        func sampleIndices(perFactor n: Int, layer: Int? = nil, using rng: inout SeededGenerator) -> [Int] {
            var picked: [Int] = []
            for s in slots where layer == nil || s.layer == layer {
                for (start, size) in [(s.a, rank * s.inF), (s.b, s.outF * rank)] {
                    var chosen = Set<Int>()
                    while chosen.count < min(n, size) { chosen.insert(start + Int(rng.next() % UInt64(size))) }
                    picked += chosen.sorted()
                }
            }
            return picked
        }
    }
}

extension GradientCheck {
    /// A float32 buffer owned by a test (for kernels and adapters that take raw pointers).
    final class FloatBuffer {
        let pointer: UnsafeMutablePointer<Float>
        let count: Int

        init(_ values: [Float]) {
            count = values.count
            pointer = .allocate(capacity: max(1, count))
            pointer.initialize(from: values, count: count)
        }

        convenience init(zeros count: Int) { self.init([Float](repeating: 0, count: count)) }

        deinit { pointer.deallocate() }

        var values: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
        var doubles: [Double] { values.map(Double.init) }
    }
}
