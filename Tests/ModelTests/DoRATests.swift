import Foundation
import LinearAlgebra
@testable import Model
import XCTest

/// DoRA's forward and backward on one projection against a Double transcription and finite
/// differences. DoRA treats n = ‖W + s·B·A‖ (per output row) as a constant in backward (PEFT
/// detaches it, the paper's §4.3), so the reference differentiates
/// f(x, A, B, m) = (m / n₀) ⊙ (x·Wᵀ + s·x·Aᵀ·Bᵀ) with n₀ the norm at the point of evaluation.
final class DoRATests: XCTestCase {
    private typealias G = GradientCheck
    private typealias Ref = GradientCheck.Reference

    /// One DoRA adapter's buffers, owned by the test.
    private final class Buffers {
        let a, b, m, gradA, gradB, gradM, norm: G.FloatBuffer
        let base: UnsafeMutablePointer<Double>
        let rank: Int, scale: Float

        init(rank: Int, inF: Int, outF: Int, scale: Float, using rng: inout SeededGenerator) {
            self.rank = rank
            self.scale = scale
            a = G.FloatBuffer(G.randomFloats(rank * inF, std: 0.5, using: &rng))
            b = G.FloatBuffer(G.randomFloats(outF * rank, std: 0.5, using: &rng))
            m = G.FloatBuffer(G.randomFloats(outF, std: 0.3, mean: 1, using: &rng))
            gradA = G.FloatBuffer(zeros: rank * inF)
            gradB = G.FloatBuffer(zeros: outF * rank)
            gradM = G.FloatBuffer(zeros: outF)
            norm = G.FloatBuffer(zeros: outF)
            base = .allocate(capacity: outF)
            base.initialize(repeating: .nan, count: outF)
        }

        deinit { base.deallocate() }

        var adapter: LoRAAdapter {
            LoRAAdapter(a: a.pointer, b: b.pointer, gradA: gradA.pointer, gradB: gradB.pointer, rank: rank, scale: scale,
                        dora: DoRAMagnitude(magnitude: m.pointer, gradMagnitude: gradM.pointer, weightNorm: norm.pointer,
                                            baseSquaredNorm: base))
        }
    }

    /// ‖W + s·B·A‖ per row in Double.
    private static func norms(w: [Double], a: [Double], b: [Double], outF: Int, inF: Int, rank: Int, scale: Double) -> [Double] {
        (0..<outF).map { o in
            var sum = 0.0
            for i in 0..<inF {
                var v = w[o * inF + i]
                for k in 0..<rank { v += scale * b[o * rank + k] * a[k * inF + i] }
                sum += v * v
            }
            return sum.squareRoot()
        }
    }

    /// (m / n) ⊙ (x·Wᵀ + s·x·Aᵀ·Bᵀ), n given.
    private static func dora(_ x: [Double], w: [Double], a: [Double], b: [Double], m: [Double], n: [Double],
                             outF: Int, inF: Int, rank: Int, scale: Double) -> [Double] {
        var y = Ref.linear(x, weight: w, outF: outF, inF: inF, lora: Ref.LoRA(a: a[...], b: b[...], rank: rank, scale: scale))
        for i in y.indices { y[i] *= m[i % outF] / n[i % outF] }
        return y
    }

    /// The norms the model keeps follow A and B (refreshed after a change of B too), on a dense
    /// and on an NF4 base (whose dequantised weight is the reference's W).
    func testNormsFollowTheFactors() throws {
        var rng = SeededGenerator(seed: 30)
        for quantize in [false, true] {
            let (outF, inF, rank, scale): (Int, Int, Int, Float) = (70, 64, 3, 1.5)
            let dense = Matrix(rows: outF, cols: inF, storage: G.randomFloats(outF * inF, std: 0.2, using: &rng))
            let w: any LinearWeight = quantize ? NF4Matrix(quantizing: dense) : dense
            let buffers = Buffers(rank: rank, inF: inF, outF: outF, scale: scale, using: &rng)
            var weights = try G.tinyWeights()
            weights.layers[0][.q] = w
            let model = DecoderModel(weights: weights, lanes: 2)
            var adapters = ModelAdapters(config: weights.config)
            adapters[0, .q] = buffers.adapter
            for round in 0..<2 {
                model.refreshDoRANorms(adapters)
                let expected = Self.norms(w: w.dequantized().storage.map(Double.init), a: buffers.a.doubles, b: buffers.b.doubles,
                                          outF: outF, inF: inF, rank: rank, scale: Double(scale))
                G.check("DoRA norms (\(quantize ? "NF4" : "dense"), round \(round))", buffers.norm.values, expected, tolerance: 1e-5)
                for i in 0..<buffers.b.count { buffers.b.pointer[i] *= 1.7 }
            }
        }
    }

    func testDoRAProjectForwardAndBackward() throws {
        try check(rows: 5, inF: 9, outF: 11, seed: 31, accumulate: false)
        try check(rows: 37, inF: 9, outF: 11, seed: 32, accumulate: true)
        try check(rows: 37, inF: 40, outF: 300, seed: 33, accumulate: false, quantize: true, sampled: 16)
    }

    /// `sampled`: finite differences on that many random entries of each gradient (all when nil).
    private func check(rows: Int, inF: Int, outF: Int, seed: UInt64, accumulate: Bool, quantize: Bool = false, sampled: Int? = nil,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        var rng = SeededGenerator(seed: seed)
        let (rank, scale): (Int, Float) = (3, 0.75)
        let dense = Matrix(rows: outF, cols: inF, storage: G.randomFloats(outF * inF, std: 1 / Float(inF).squareRoot(), using: &rng))
        let w: any LinearWeight = quantize ? NF4Matrix(quantizing: dense) : dense
        let buffers = Buffers(rank: rank, inF: inF, outF: outF, scale: scale, using: &rng)
        var weights = try G.tinyWeights()
        weights.layers[0][.q] = w
        var adapters = ModelAdapters(config: weights.config)
        adapters[0, .q] = buffers.adapter
        let x = G.randomFloats(rows * inF, using: &rng), r = G.randomFloats(rows * outF, using: &rng)
        let (wd, ad, bd, md, xd, rd) = (w.dequantized().storage.map(Double.init), buffers.a.doubles, buffers.b.doubles, buffers.m.doubles,
                                        x.map(Double.init), r.map(Double.init))
        let n0 = Self.norms(w: wd, a: ad, b: bd, outF: outF, inF: inF, rank: rank, scale: Double(scale))
        func loss(x: [Double] = xd, a: [Double] = ad, b: [Double] = bd, m: [Double] = md) -> Double {
            G.weightedSum(Self.dora(x, w: wd, a: a, b: b, m: m, n: n0, outF: outF, inF: inF, rank: rank, scale: Double(scale)), rd)
        }
        func pick(_ count: Int) -> [Int] {
            guard let sampled, sampled < count else { return Array(0..<count) }
            var chosen = Set<Int>()
            while chosen.count < sampled { chosen.insert(Int(rng.next() % UInt64(count))) }
            return chosen.sorted()
        }
        let (iX, iA, iB, iM) = (pick(xd.count), pick(ad.count), pick(bd.count), pick(md.count))
        let fdX = G.centralDifferences(at: xd, indices: iX) { loss(x: $0) }
        let fdA = G.centralDifferences(at: ad, indices: iA) { loss(a: $0) }
        let fdB = G.centralDifferences(at: bd, indices: iB) { loss(b: $0) }
        let fdM = G.centralDifferences(at: md, indices: iM) { loss(m: $0) }
        let expected = Self.dora(xd, w: wd, a: ad, b: bd, m: md, n: n0, outF: outF, inF: inF, rank: rank, scale: Double(scale))

        for lanes in [1, 2] {
            let model = DecoderModel(weights: weights, lanes: lanes)
            model.refreshDoRANorms(adapters)
            let label = "DoRA \(rows)×\(inF)→\(outF)\(quantize ? " NF4" : ""), \(lanes) lanes"
            let start = G.randomFloats(rows * outF, std: 0.1, using: &rng)
            var y = accumulate ? start : [Float](repeating: 0, count: rows * outF), xa = [Float](repeating: 0, count: rows * rank)
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { yp in
                    xa.withUnsafeMutableBufferPointer { ap in
                        model.project(xp.baseAddress!, [DecoderModel.ProjectionOutput(weight: w, adapter: buffers.adapter, y: yp.baseAddress!,
                                                                                     xa: ap.baseAddress!, accumulate: accumulate)], rows: rows)
                    }
                }
            }
            let forward = accumulate ? zip(y, start).map { Double($0) - Double($1) } : y.map(Double.init)
            G.check("\(label) forward", forward, expected, tolerance: 1e-5, file: file, line: line)

            for g in [buffers.gradA, buffers.gradB, buffers.gradM] { g.pointer.update(repeating: 0, count: g.count) }
            var dx = [Float](repeating: 7, count: rows * inF)
            model.projectBackward(dy: r, x: x, w, adapter: buffers.adapter, xa: xa, dx: &dx, rows: rows, accumulate: false)
            let (dA, dB, dm) = (buffers.gradA.values, buffers.gradB.values, buffers.gradM.values)
            G.check("\(label) dx", iX.map { Double(dx[$0]) }, fdX, tolerance: 1e-4, file: file, line: line)
            G.check("\(label) dA", iA.map { Double(dA[$0]) }, fdA, tolerance: 1e-4, file: file, line: line)
            G.check("\(label) dB", iB.map { Double(dB[$0]) }, fdB, tolerance: 1e-4, file: file, line: line)
            G.check("\(label) dm", iM.map { Double(dm[$0]) }, fdM, tolerance: 1e-4, file: file, line: line)
        }
    }
}
