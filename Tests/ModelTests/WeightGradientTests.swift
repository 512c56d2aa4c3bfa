import Foundation
import LinearAlgebra
@testable import Model
import XCTest

/// The weight gradients of full fine-tuning against central differences of the Double
/// reference (GradientReference.swift): a projection's dW, an RMSNorm's dWeight, the embedding's
/// scatter-add, the head's dE (several chunks in rounds on two lanes), and the whole tiny model
/// with every weight in external buffers (the tied embedding then receives the lookup's and the
/// head's gradient). Gradients are added onto random values, which are subtracted.
/// Tolerances as in GradientTests / GradientModelTests: kernels 1e-4, the whole model 1e-3.
final class WeightGradientTests: XCTestCase {
    private typealias G = GradientCheck
    private typealias Ref = GradientCheck.Reference

    /// Every tensor of `weights` copied into one flat value buffer with a gradient buffer of the
    /// same layout, and the `ModelWeightBuffers` pointing into them (as the trainer's store does).
    private final class FlatWeights {
        struct Slot { let offset: Int, rows: Int, cols: Int }
        let values: GradientCheck.FloatBuffer, gradients: GradientCheck.FloatBuffer
        let embedding: Slot, finalNorm: Slot
        let layers: [(norms: [Slot?], projections: [Slot], biases: [Slot?])]
        var all: [(name: String, slot: Slot)] = []

        init(_ w: ModelWeights) {
            var flat: [Float] = []
            var names: [(String, Slot)] = []
            func add(_ name: String, _ v: [Float], _ rows: Int, _ cols: Int) -> Slot {
                let s = Slot(offset: flat.count, rows: rows, cols: cols)
                flat += v
                names.append((name, s))
                return s
            }
            embedding = add("embedding", w.embedding.storage, w.embedding.rows, w.embedding.cols)
            layers = w.layers.enumerated().map { i, l in
                (LayerNorm.allCases.map { n in l[n].isEmpty ? nil : add("layer \(i) norm \(n)", l[n], 1, l[n].count) },
                 w.config.projections.map { p in add("layer \(i) \(p)", l[p].dequantized().storage, l[p].rows, l[p].cols) },
                 w.config.projections.map { p in l.bias(p).map { add("layer \(i) bias \(p)", $0, 1, $0.count) } })
            }
            finalNorm = add("final norm", w.finalNorm, 1, w.finalNorm.count)
            all = names
            values = G.FloatBuffer(flat)
            gradients = G.FloatBuffer(zeros: flat.count)
        }

        func buffer(_ s: Slot) -> WeightBuffer {
            WeightBuffer(values: values.pointer + s.offset, gradient: gradients.pointer + s.offset, rows: s.rows, cols: s.cols)
        }

        var buffers: ModelWeightBuffers {
            ModelWeightBuffers(embedding: buffer(embedding), lmHead: nil, finalNorm: buffer(finalNorm),
                               layers: layers.map {
                                   .init(norms: $0.norms.map { $0.map(buffer) }, projections: $0.projections.map(buffer),
                                         biases: $0.biases.map { $0.map(buffer) })
                               })
        }
    }

    private func sample(_ count: Int, _ n: Int?, using rng: inout SeededGenerator) -> [Int] {
        guard let n, n < count else { return Array(0..<count) }
        var chosen = Set<Int>()
        while chosen.count < n { chosen.insert(Int(rng.next() % UInt64(count))) }
        return chosen.sorted()
    }

    // MARK: Projection dW

    /// dW += dyᵀ·x for y = x·Wᵀ: 37 rows (row-split products), and 129 outputs (dW split over
    /// its rows across lanes, 64 + 65) with 24 sampled entries.
    func testProjectionWeightGradient() throws {
        try checkProjection(rows: 37, inF: 9, outF: 11, seed: 41)
        try checkProjection(rows: 3, inF: 130, outF: 129, seed: 42, sampled: 24)
    }

    private func checkProjection(rows: Int, inF: Int, outF: Int, seed: UInt64, sampled: Int? = nil) throws {
        var rng = SeededGenerator(seed: seed)
        let w = G.randomFloats(outF * inF, std: 1 / Float(inF).squareRoot(), using: &rng)
        let x = G.randomFloats(rows * inF, using: &rng), r = G.randomFloats(rows * outF, using: &rng)
        let (wd, xd, rd) = (w.map(Double.init), x.map(Double.init), r.map(Double.init))
        let iW = sample(w.count, sampled, using: &rng)
        let fdW = G.centralDifferences(at: wd, indices: iW) {
            G.weightedSum(Ref.linear(xd, weight: $0, outF: outF, inF: inF, lora: nil), rd)
        }
        let fdX = G.centralDifferences(at: xd) { G.weightedSum(Ref.linear($0, weight: wd, outF: outF, inF: inF, lora: nil), rd) }
        let values = G.FloatBuffer(w)
        for lanes in [1, 2] {
            let model = DecoderModel(weights: try G.tinyWeights(), lanes: lanes)
            let start = G.randomFloats(w.count, std: 0.01, using: &rng)
            let dW = G.FloatBuffer(start)
            let weight = WeightBuffer(values: values.pointer, gradient: dW.pointer, rows: outF, cols: inF)
            var dx = [Float](repeating: 7, count: rows * inF)
            model.projectBackward(dy: r, x: x, weight, adapter: nil, xa: nil, dx: &dx, rows: rows, accumulate: false)
            let label = "\(rows)×\(inF)→\(outF), \(lanes) lanes"
            G.check("projection dW \(label)", iW.map { Double(dW.values[$0]) - Double(start[$0]) }, fdW, tolerance: 1e-4)
            G.check("projection dx with dW \(label)", dx, fdX, tolerance: 1e-4)
        }
    }

    // MARK: RMSNorm dWeight

    func testRMSNormWeightGradient() {
        var rng = SeededGenerator(seed: 43)
        let (N, C) = (5, 19)                    // two SIMD blocks and a tail
        let eps: Float = 1e-5
        let x = G.randomFloats(N * C, mean: 0.3, using: &rng), w = G.randomFloats(C, std: 0.2, mean: 1, using: &rng)
        let r = G.randomFloats(N * C, using: &rng)
        let (xd, wd, rd) = (x.map(Double.init), w.map(Double.init), r.map(Double.init))
        let fd = G.centralDifferences(at: wd) { G.weightedSum(Ref.rmsNorm(xd, weight: $0, eps: Double(eps)), rd) }
        var y = [Float](repeating: 0, count: N * C), rstd = [Float](repeating: 0, count: N)
        RMSNorm.forward(x: x, weight: w, y: &y, rstd: &rstd, rows: N, cols: C, eps: eps)
        let start = G.randomFloats(C, std: 0.01, using: &rng)
        var dw = start
        RMSNorm.backwardWeight(dy: r, x: x, rstd: rstd, dWeight: &dw, rows: N, cols: C)
        G.check("RMSNorm dWeight", zip(dw, start).map { Double($0) - Double($1) }, fd, tolerance: 1e-4)
    }

    // MARK: Embedding and head

    /// L = Σ embed(tokens) ⊙ R with repeated tokens: dE[t] = Σ over rows n with tₙ = t of Rₙ.
    func testEmbeddingBackward() throws {
        var rng = SeededGenerator(seed: 44)
        let weights = try G.tinyWeights()
        let (C, V) = (weights.config.hiddenSize, weights.config.vocabSize)
        let tokens: [Int32] = [3, 7, 3, 0, 19, 7, 3]
        let r = G.randomFloats(tokens.count * C, using: &rng), rd = r.map(Double.init)
        let ed = weights.embedding.storage.map(Double.init)
        let fd = G.centralDifferences(at: ed) { e in
            G.weightedSum(tokens.flatMap { e[(Int($0) * C)..<(Int($0) * C + C)] }, rd)
        }
        let model = DecoderModel(weights: weights, lanes: 2)
        let start = G.randomFloats(V * C, std: 0.01, using: &rng)
        var dE = start
        model.embedBackward(tokens: tokens, dx: r, dEmbedding: &dE)
        G.check("embedding dE (repeated tokens)", zip(dE, start).map { Double($0) - Double($1) }, fd, tolerance: 1e-5)
    }

    /// dE of Σ NLL / normalizer over the head: 290 supervised rows make 3 chunks of 97 on one
    /// lane and 4 of 73 on two, which two lanes run in two rounds; dz must equal the untrained
    /// head's to float32 rounding, and the loss too.
    func testHeadWeightGradient() throws {
        var rng = SeededGenerator(seed: 45)
        let weights = try G.tinyWeights()
        let (C, V) = (weights.config.hiddenSize, weights.config.vocabSize)
        let N = 294, normalizer: Float = 9.5
        let ignored: Set = [0, 9, 33, 293]
        let targets = (0..<N).map { ignored.contains($0) ? Int32(-1) : Int32(rng.next() % UInt64(V)) }
        let z = G.randomFloats(N * C, using: &rng)
        let (zd, e) = (z.map(Double.init), weights.outputHead.storage.map(Double.init))
        let fdZ = G.centralDifferences(at: zd, indices: Array(stride(from: 0, to: N * C, by: 37))) {
            Ref.crossEntropySum(z: $0, head: e, vocab: V, targets: targets) / Double(normalizer)
        }
        let fd = G.centralDifferences(at: e) {
            Ref.crossEntropySum(z: zd, head: $0, vocab: V, targets: targets) / Double(normalizer)
        }
        for lanes in [1, 2] {
            let model = DecoderModel(weights: weights, lanes: lanes)
            var plain = [Float](repeating: 0, count: N * C), dz = plain
            let plainLoss = model.headLossAndBackward(z: z, targets: targets, normalizer: normalizer, dz: &plain)
            let start = G.randomFloats(V * C, std: 0.01, using: &rng)
            var dE = start
            let loss = dE.withUnsafeMutableBufferPointer { d in
                model.headLossAndBackward(z: z, targets: targets, normalizer: normalizer, dz: &dz, dHead: d.baseAddress!)
            }
            G.check("head Σ NLL with dE vs without, \(lanes) lanes", [loss], [plainLoss], tolerance: 1e-6)
            G.check("head dz with dE, \(lanes) lanes", stride(from: 0, to: N * C, by: 37).map { Double(dz[$0]) }, fdZ, tolerance: 1e-4)
            G.check("head dE (several chunks), \(lanes) lanes", zip(dE, start).map { Double($0) - Double($1) }, fd, tolerance: 1e-4)
        }
    }

    // MARK: The whole model

    /// `lossAndGradients` with every weight in external buffers: 3 sampled entries of each of the
    /// 20 tensors (the tied embedding's includes the head's part) against central differences of
    /// the Double model; 2 sequences of 18 with a masked prompt and padding, as GradientModelTests.
    func testWholeModelWeightGradients() throws {
        try checkWholeModel(G.tinyConfig)
    }

    /// The same on the tiny Gemma 3 (sandwich and q/k norms with (1 + w), GELU, sliding windows
    /// shorter than the sequences, a scaled embedding).
    func testWholeGemmaModelWeightGradients() throws {
        try checkWholeModel(G.tinyGemmaConfig)
    }

    /// The same on a tiny Qwen3-style block: q/k/v/o biases (their dB), q/k norms, a window on one layer.
    func testWholeQwenModelWeightGradients() throws {
        try checkWholeModel(G.tinyQwenConfig)
    }

    /// The same on a tiny Phi-3: the fused qkv and gate_up weights' dW.
    func testWholePhi3ModelWeightGradients() throws {
        try checkWholeModel(G.tinyPhi3Config)
    }

    /// The same on a tiny Mixtral: the router's gradient (through the renormalised top-2 weights
    /// and the softmax) and every expert's dW.
    func testWholeMixtralModelWeightGradients() throws {
        try checkWholeModel(G.tinyMixtralConfig)
    }

    private func checkWholeModel(_ config: ModelConfig) throws {
        var rng = SeededGenerator(seed: 46)
        let weights = try G.tinyWeights(config: config)
        let c = weights.config
        let flat = FlatWeights(weights)
        let noAdapters = G.FlatAdapters(weights: weights, rank: 1, scale: 0, std: 0, seed: 1)
        let reference = G.ReferenceModel(weights: weights, adapters: noAdapters)
        let (batch, T) = (2, 18)
        let N = batch * T
        let tokens = (0..<N).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) }
        var targets = (0..<N).map { n in n % T == T - 1 ? Int32(-1) : tokens[n + 1] }
        targets[0] = -1
        targets[N - 2] = -1
        let supervised = targets.filter { $0 >= 0 }.count
        let θ = G.FlatAdapters(weights: weights, rank: 1, scale: 0, std: 0, seed: 1).parameterValues.map(Double.init)

        /// The reference with flat entry `index` moved by `delta`.
        func loss(_ index: Int, _ delta: Double) -> Double {
            var ref = reference
            let (name, slot) = flat.all.last { $0.slot.offset <= index }!
            let i = index - slot.offset
            if name == "embedding" { ref.embedding[i] += delta }
            else if name == "final norm" { ref.finalNorm[i] += delta }
            else {
                let layer = Int(name.split(separator: " ")[1])!
                if let n = LayerNorm.allCases.first(where: { name.hasSuffix("norm \($0)") }) { ref.layers[layer].norms[n.rawValue][i] += delta }
                else if name.contains(" bias ") {
                    let p = c.projections.first { name.hasSuffix(" bias \($0)") }!
                    ref.layers[layer].biases[c.block.layout.slot(p)!][i] += delta
                } else {
                    let p = c.projections.first { name.hasSuffix(" \($0)") }!
                    ref.layers[layer].projections[c.block.layout.slot(p)!].w[i] += delta
                }
            }
            return ref.lossSum(tokens: tokens, targets: targets, batch: batch, parameters: θ) / Double(supervised)
        }

        var indices: [Int] = []
        for (_, s) in flat.all { indices += sample(s.rows * s.cols, 3, using: &rng).map { s.offset + $0 } }
        let h = G.step
        let fd = indices.map { (loss($0, h) - loss($0, -h)) / (2 * h) }

        for lanes in [1, 2] {
            let model = DecoderModel(weights: weights, lanes: lanes, buffers: flat.buffers)
            let scratch = TrainingScratch(model: model, capacityRows: N, maxRank: 0)
            let start = G.randomFloats(flat.gradients.count, std: 1e-3, using: &rng)
            flat.gradients.pointer.update(from: start, count: start.count)
            let lossSum = model.lossAndGradients(tokens: tokens, targets: targets, lengths: Array(repeating: tokens.count / batch, count: batch),
                                                 adapters: ModelAdapters(config: c),
                                                 normalizer: Float(supervised), scratch: scratch)
            let expected = reference.lossSum(tokens: tokens, targets: targets, batch: batch, parameters: θ)
            G.check("whole model Σ NLL (weights in buffers), \(lanes) lanes", [lossSum], [expected], tolerance: 1e-4)
            let g = flat.gradients.values
            for (name, s) in flat.all {
                let mine = indices.indices.filter { indices[$0] >= s.offset && indices[$0] < s.offset + s.rows * s.cols }
                G.check("whole model d(\(name)), \(lanes) lanes", mine.map { Double(g[indices[$0]]) - Double(start[indices[$0]]) },
                        mine.map { fd[$0] }, tolerance: 1e-3)
            }
        }
    }
}
