import Foundation
import LinearAlgebra
@testable import Model
import TestSupport
import XCTest

/// Every kernel's backward against central differences of a Double reference forward
/// (GradientReference.swift) on tiny shapes. The scalar loss is L = Σ y ⊙ R for a fixed random
/// R (so dL/dy = R is what the backward receives), or the cross-entropy itself.
///
/// Inputs are float32 values; the reference sees the same values widened to Double. Errors are
/// entrywise relative (GradientCheck.maxRelativeError). Tolerances: forwards 3e-5 and kernel
/// gradients 1e-4. The finite differences are good to ~1e-9, so what is measured is the
/// float32 rounding of the kernels (observed 1e-7…1e-5).
/// The element-wise kernels' checks run at every kernel level this CPU supports (AVX2 and AVX-512).
final class GradientTests: XCTestCase {
    private typealias G = GradientCheck
    private typealias Ref = GradientCheck.Reference
    /// float32 rounding of a 130-term dot product against Double reaches ≈ 1.1e-5 (relative to
    /// the 1 % floor) with some OpenBLAS kernels: 3e-5 keeps a margin without hiding a bug (a
    /// wrong term is off by ≥ 1e-2).
    private let forwardTolerance = 3e-5
    private let gradientTolerance = 1e-4

    // MARK: RMSNorm

    func testRMSNormBackward() {
        forEachKernelLevel { level in
            var rng = SeededGenerator(seed: 1)
            let (N, C) = (3, 19)                    // 19 = two SIMD blocks and a tail of 3
            let eps: Float = 1e-5
            let x = G.randomFloats(N * C, mean: 0.3, using: &rng), w = G.randomFloats(C, std: 0.2, mean: 1, using: &rng)
            let r = G.randomFloats(N * C, using: &rng)
            let (xd, wd, rd) = (x.map(Double.init), w.map(Double.init), r.map(Double.init))

            var y = [Float](repeating: 0, count: N * C), rstd = [Float](repeating: 0, count: N)
            RMSNorm.forward(x: x, weight: w, y: &y, rstd: &rstd, rows: N, cols: C, eps: eps)
            G.check("\(level) RMSNorm forward", y, Ref.rmsNorm(xd, weight: wd, eps: Double(eps)), tolerance: forwardTolerance)

            let fd = G.centralDifferences(at: xd) { G.weightedSum(Ref.rmsNorm($0, weight: wd, eps: Double(eps)), rd) }
            var dx = [Float](repeating: .nan, count: N * C)
            RMSNorm.backward(dy: r, x: x, weight: w, rstd: rstd, dx: &dx, rows: N, cols: C, accumulate: false)
            G.check("\(level) RMSNorm dx", dx, fd, tolerance: gradientTolerance)

            var accumulated = [Float](repeating: 1, count: N * C)
            RMSNorm.backward(dy: r, x: x, weight: w, rstd: rstd, dx: &accumulated, rows: N, cols: C, accumulate: true)
            G.check("\(level) RMSNorm dx (accumulate: true, onto 1)", accumulated.map { Double($0) - 1 }, fd, tolerance: gradientTolerance)
        }
    }

    // MARK: SwiGLU

    func testSwiGLUBackward() {
        forEachKernelLevel { level in
            var rng = SeededGenerator(seed: 2)
            let n = 13                              // one SIMD block and a tail of 5
            let g = G.randomFloats(n, std: 3, using: &rng), u = G.randomFloats(n, using: &rng), r = G.randomFloats(n, using: &rng)
            let (gd, ud, rd) = (g.map(Double.init), u.map(Double.init), r.map(Double.init))

            var h = [Float](repeating: 0, count: n)
            SwiGLU.forward(gate: g, up: u, out: &h, rows: 1, width: n)
            G.check("\(level) SwiGLU forward", h, Ref.swiGLU(gate: gd, up: ud), tolerance: forwardTolerance)

            var dg = [Float](repeating: .nan, count: n), du = dg
            SwiGLU.backward(dh: r, gate: g, up: u, dGate: &dg, dUp: &du, rows: 1, width: n)
            G.check("\(level) SwiGLU dgate", dg, G.centralDifferences(at: gd) { G.weightedSum(Ref.swiGLU(gate: $0, up: ud), rd) },
                    tolerance: gradientTolerance)
            G.check("\(level) SwiGLU dup", du, G.centralDifferences(at: ud) { G.weightedSum(Ref.swiGLU(gate: gd, up: $0), rd) },
                    tolerance: gradientTolerance)
        }
    }

    // MARK: GeGLU

    /// Gemma's gate (PyTorch's tanh GELU) against the Double formula and its central differences,
    /// at every kernel level; gates spread over both tails of the tanh.
    func testGeGLUBackward() {
        forEachKernelLevel { level in
            var rng = SeededGenerator(seed: 5)
            let n = 37                              // two 16-wide blocks and a tail of 5
            let g = G.randomFloats(n, std: 3, using: &rng), u = G.randomFloats(n, using: &rng), r = G.randomFloats(n, using: &rng)
            let (gd, ud, rd) = (g.map(Double.init), u.map(Double.init), r.map(Double.init))

            var h = [Float](repeating: 0, count: n)
            GeGLU.forward(gate: g, up: u, out: &h, rows: 1, width: n)
            G.check("\(level) GeGLU forward", h, Ref.geGLU(gate: gd, up: ud), tolerance: forwardTolerance)

            var dg = [Float](repeating: .nan, count: n), du = dg
            GeGLU.backward(dh: r, gate: g, up: u, dGate: &dg, dUp: &du, rows: 1, width: n)
            G.check("\(level) GeGLU dgate", dg, G.centralDifferences(at: gd) { G.weightedSum(Ref.geGLU(gate: $0, up: ud), rd) },
                    tolerance: gradientTolerance)
            G.check("\(level) GeGLU dup", du, G.centralDifferences(at: ud) { G.weightedSum(Ref.geGLU(gate: gd, up: $0), rd) },
                    tolerance: gradientTolerance)
        }
    }

    // MARK: Rotary

    /// The rotation is linear, so its backward is its transpose: ⟨R x, y⟩ = ⟨x, Rᵀ y⟩, and
    /// d Σ y ⊙ R x / dx = Rᵀ y, which `apply(inverse: true)` must compute.
    func testRotaryInverseIsTranspose() {
        forEachKernelLevel { level in
            var rng = SeededGenerator(seed: 3)
            let positions: [Int32] = [0, 1, 5, 15]
            for D in [4, 20] {                      // D/2 = 2 (tail only) and 10 (SIMD block and tail)
                let heads = 3, N = positions.count
                let table = RotaryTable(headDim: D, maxPositions: 16, rope: RopeSpec(theta: 10000))
                let x = G.randomFloats(N * heads * D, using: &rng), y = G.randomFloats(N * heads * D, using: &rng)
                let (xd, yd) = (x.map(Double.init), y.map(Double.init))
                func reference(_ v: [Double]) -> [Double] {
                    Ref.rotary(v, heads: heads, headDim: D, positions: positions.map(Int.init), theta: 10000)
                }

                var rx = x, rty = y
                table.apply(&rx, rows: N, heads: heads, positions: positions)
                table.apply(&rty, rows: N, heads: heads, positions: positions, inverse: true)
                G.check("\(level) rotary forward (D \(D))", rx, reference(xd), tolerance: forwardTolerance)
                let lhs = G.weightedSum(rx.map(Double.init), yd), rhs = G.weightedSum(xd, rty.map(Double.init))
                G.check("\(level) rotary ⟨R x, y⟩ = ⟨x, inverse(y)⟩ (D \(D))", [rhs], [lhs], tolerance: forwardTolerance)
                G.check("\(level) rotary dx = inverse(dy) (D \(D))", rty, G.centralDifferences(at: xd) { G.weightedSum(reference($0), yd) },
                        tolerance: gradientTolerance)
            }
        }
    }

    // MARK: Attention

    func testAttentionBackwardGQA() {
        // The brief's shape (batch 2, T 5, 4 heads on 2 KV heads, D 4); one long enough for the
        // SIMD path of the dS rows (T 9) with 3 query heads per KV head; and sequences of unequal
        // lengths packed back to back, which must each attend to themselves only.
        let cases: [(lengths: [Int], heads: Int, kvHeads: Int, headDim: Int)] = [
            ([5, 5], 4, 2, 4), ([9], 6, 2, 8), ([5, 2, 7], 4, 2, 4),
            ([Attention.blockRows + 2], 2, 1, 2),   // a second causal block of query rows
        ]
        var rng = SeededGenerator(seed: 4)
        for c in cases {
            let s = Attention.Shape.packed(lengths: c.lengths, heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim)
            let (N, H, KV, D) = (c.lengths.reduce(0, +), c.heads, c.kvHeads, c.headDim)
            let label = "lengths \(c.lengths) H\(H) KV\(KV) D\(D)"
            let q = G.randomFloats(N * H * D, using: &rng), r = G.randomFloats(N * H * D, using: &rng)
            let k = G.randomFloats(N * KV * D, using: &rng), v = G.randomFloats(N * KV * D, using: &rng)
            let (qd, kd, vd, rd) = (q.map(Double.init), k.map(Double.init), v.map(Double.init), r.map(Double.init))
            /// The reference on each sequence alone, outputs concatenated.
            func reference(_ q: [Double], _ k: [Double], _ v: [Double]) -> [Double] {
                var out: [Double] = [], row = 0
                for T in c.lengths {
                    let (qs, kvs) = (row * H * D..<(row + T) * H * D, row * KV * D..<(row + T) * KV * D)
                    out += Ref.attention(q: Array(q[qs]), k: Array(k[kvs]), v: Array(v[kvs]), batch: 1, time: T,
                                         heads: H, kvHeads: KV, headDim: D)
                    row += T
                }
                return out
            }
            func loss(_ q: [Double], _ k: [Double], _ v: [Double]) -> Double { G.weightedSum(reference(q, k, v), rd) }
            let expected = reference(qd, kd, vd)
            let fdQ = G.centralDifferences(at: qd) { loss($0, kd, vd) }
            let fdK = G.centralDifferences(at: kd) { loss(qd, $0, vd) }
            let fdV = G.centralDifferences(at: vd) { loss(qd, kd, $0) }

            for lanes in [1, 2] {
                var out = [Float](repeating: 0, count: q.count)
                Attention.forward(q: q, k: k, v: v, out: &out, shape: s, lanes: lanes)
                G.check("attention forward \(label), \(lanes) lanes", out, expected, tolerance: forwardTolerance)

                // Garbage in the outputs: backward must overwrite, not accumulate.
                var dq = [Float](repeating: 7, count: q.count), dk = [Float](repeating: 7, count: k.count), dv = dk
                Attention.backward(dOut: r, q: q, k: k, v: v, dq: &dq, dk: &dk, dv: &dv, shape: s, lanes: lanes)
                G.check("attention dq \(label), \(lanes) lanes", dq, fdQ, tolerance: gradientTolerance)
                G.check("attention dk \(label), \(lanes) lanes", dk, fdK, tolerance: gradientTolerance)
                G.check("attention dv \(label), \(lanes) lanes", dv, fdV, tolerance: gradientTolerance)
            }
        }
    }

    // MARK: Adapted linear

    /// y = x·Wᵀ + s·(x·Aᵀ)·Bᵀ, rank 3, s = 0.75: dx, dA, dB. 5 rows take the small path; 37
    /// rows take the row-split path (two chunks on two lanes).
    func testProjectBackward() throws {
        try checkProject(rows: 5, inF: 9, outF: 11, seed: 5)
        try checkProject(rows: 37, inF: 9, outF: 11, seed: 6)
    }

    /// 130 inputs and 129 outputs: dA and dB are split across lanes by columns (chunks of ≥ 64);
    /// finite differences on 24 sampled entries of each of dx, dA, dB.
    func testProjectBackwardWide() throws {
        try checkProject(rows: 3, inF: 130, outF: 129, seed: 7, sampled: 24)
    }

    /// The same through the NF4 base (the reference uses its dequantised weight): 300 outputs
    /// are several forward tiles and a partial backward tile; 40 inputs put rows inside blocks.
    func testProjectBackwardNF4() throws {
        try checkProject(rows: 5, inF: 40, outF: 300, seed: 8, sampled: 24, quantize: true)
        try checkProject(rows: 37, inF: 40, outF: 300, seed: 9, sampled: 24, quantize: true)
    }

    private func checkProject(rows: Int, inF: Int, outF: Int, seed: UInt64, sampled: Int? = nil, quantize: Bool = false,
                              file: StaticString = #filePath, line: UInt = #line) throws {
        var rng = SeededGenerator(seed: seed)
        let (rank, scale): (Int, Float) = (3, 0.75)
        let dense = Matrix(rows: outF, cols: inF, storage: G.randomFloats(outF * inF, std: 1 / Float(inF).squareRoot(), using: &rng))
        let w: any LinearWeight = quantize ? NF4Matrix(quantizing: dense) : dense
        let a = G.FloatBuffer(G.randomFloats(rank * inF, std: 0.5, using: &rng))
        let b = G.FloatBuffer(G.randomFloats(outF * rank, std: 0.5, using: &rng))
        let gradA = G.FloatBuffer(zeros: rank * inF), gradB = G.FloatBuffer(zeros: outF * rank)
        let adapter = LoRAAdapter(a: a.pointer, b: b.pointer, gradA: gradA.pointer, gradB: gradB.pointer, rank: rank, scale: scale)
        let x = G.randomFloats(rows * inF, using: &rng), r = G.randomFloats(rows * outF, using: &rng)
        let (wd, ad, bd, xd, rd) = (w.dequantized().storage.map(Double.init), a.doubles, b.doubles, x.map(Double.init), r.map(Double.init))
        func loss(x: [Double], a: [Double], b: [Double]) -> Double {
            let lora = Ref.LoRA(a: a[...], b: b[...], rank: rank, scale: Double(scale))
            return G.weightedSum(Ref.linear(x, weight: wd, outF: outF, inF: inF, lora: lora), rd)
        }
        func pick(_ count: Int) -> [Int] {
            guard let sampled, sampled < count else { return Array(0..<count) }
            var chosen = Set<Int>()
            while chosen.count < sampled { chosen.insert(Int(rng.next() % UInt64(count))) }
            return chosen.sorted()
        }
        let (iX, iA, iB) = (pick(x.count), pick(ad.count), pick(bd.count))
        let fdX = G.centralDifferences(at: xd, indices: iX) { loss(x: $0, a: ad, b: bd) }
        let fdA = G.centralDifferences(at: ad, indices: iA) { loss(x: xd, a: $0, b: bd) }
        let fdB = G.centralDifferences(at: bd, indices: iB) { loss(x: xd, a: ad, b: $0) }
        let expected = Ref.linear(xd, weight: wd, outF: outF, inF: inF,
                                  lora: Ref.LoRA(a: ad[...], b: bd[...], rank: rank, scale: Double(scale)))
        let weights = try G.tinyWeights()

        for lanes in [1, 2] {
            let model = DecoderModel(weights: weights, lanes: lanes)
            let label = "\(rows)×\(inF)→\(outF), \(lanes) lanes"
            var y = [Float](repeating: 0, count: rows * outF), xa = [Float](repeating: 0, count: rows * rank)
            model.project(x, w, adapter: adapter, into: &y, rows: rows, xa: &xa)
            G.check("project forward \(label)", y, expected, tolerance: forwardTolerance, file: file, line: line)

            // Gradients are added: start from random values and subtract them.
            let startA = G.randomFloats(gradA.count, std: 0.01, using: &rng)
            let startB = G.randomFloats(gradB.count, std: 0.01, using: &rng)
            gradA.pointer.update(from: startA, count: gradA.count)
            gradB.pointer.update(from: startB, count: gradB.count)
            var dx = [Float](repeating: 7, count: rows * inF)
            model.projectBackward(dy: r, x: x, w, adapter: adapter, xa: xa, dx: &dx, rows: rows, accumulate: false)
            let (dA, dB) = (gradA.values, gradB.values)
            G.check("projectBackward dx \(label)", iX.map { Double(dx[$0]) }, fdX, tolerance: gradientTolerance, file: file, line: line)
            G.check("projectBackward dA \(label)", iA.map { Double(dA[$0]) - Double(startA[$0]) }, fdA,
                    tolerance: gradientTolerance, file: file, line: line)
            G.check("projectBackward dB \(label)", iB.map { Double(dB[$0]) - Double(startB[$0]) }, fdB,
                    tolerance: gradientTolerance, file: file, line: line)

            // accumulate: true adds dy·W + s·(dy·B)·A onto what dx holds.
            var accumulated = [Float](repeating: 1, count: rows * inF)
            model.projectBackward(dy: r, x: x, w, adapter: adapter, xa: xa, dx: &accumulated, rows: rows, accumulate: true)
            G.check("projectBackward dx (accumulate: true) \(label)", iX.map { Double(accumulated[$0]) - 1 }, fdX,
                    tolerance: gradientTolerance, file: file, line: line)
        }
    }

    // MARK: Head and cross-entropy

    /// dz of Σ NLL / normalizer over the tied head, with ignored (−1) targets; 35 supervised rows
    /// make two chunks of the head (18 + 17), which two lanes run in parallel. The frozen head's
    /// online pass runs in one vocabulary tile and in tiles of 7 and 1 rows of E (the running
    /// max grows, and the last tile is partial).
    func testHeadLossAndBackward() throws {
        var rng = SeededGenerator(seed: 6)
        let weights = try G.tinyWeights()
        let (C, V) = (weights.config.hiddenSize, weights.config.vocabSize)
        let N = 40, normalizer: Float = 12.5
        let ignored: Set = [0, 7, 13, 21, 39]
        let targets = (0..<N).map { ignored.contains($0) ? Int32(-1) : Int32(rng.next() % UInt64(V)) }
        let z = G.randomFloats(N * C, using: &rng)
        let (zd, e) = (z.map(Double.init), weights.outputHead.storage.map(Double.init))
        let expectedLoss = Ref.crossEntropySum(z: zd, head: e, vocab: V, targets: targets)
        let fd = G.centralDifferences(at: zd) {
            Ref.crossEntropySum(z: $0, head: e, vocab: V, targets: targets) / Double(normalizer)
        }
        for lanes in [1, 2] {
            let model = DecoderModel(weights: weights, lanes: lanes)
            forEachKernelLevel { level in
                for tile in [DecoderModel.headVocabTile, 7, 1] {
                    let label = "\(lanes) lanes, tile \(tile), \(level)"
                    var dz = [Float](repeating: 7, count: N * C)
                    let loss = model.headLossAndBackward(z: z, targets: targets, normalizer: normalizer, dz: &dz, vocabTile: tile)
                    G.check("head Σ NLL, \(label)", [loss], [expectedLoss], tolerance: forwardTolerance)
                    G.check("head dz (normalizer 12.5, 5 targets −1), \(label)", dz, fd, tolerance: gradientTolerance)
                }
            }

            var none = [Float](repeating: 7, count: 3 * C)
            XCTAssertEqual(model.headLossAndBackward(z: z, targets: [-1, -1, -1], normalizer: 1, dz: &none), 0)
            XCTAssertEqual(none, [Float](repeating: 0, count: 3 * C), "no supervised rows: dz must be zero")
        }
    }

    /// Head chunks: near-equal, at most `headChunkRows` rows, as many per lane where the rows allow
    /// (a masked math batch of 240 supervised rows is one chunk per lane, not two of 128 and 112).
    func testHeadChunksBalanceLanes() {
        let cases: [(rows: Int, lanes: Int, size: Int, count: Int)] = [
            (1, 2, 1, 1), (3, 2, 2, 2), (33, 2, 17, 2), (240, 2, 120, 2), (256, 2, 128, 2),
            (257, 2, 65, 4), (290, 1, 97, 3), (290, 2, 73, 4), (1024, 2, 128, 8), (1024, 1, 128, 8),
        ]
        for c in cases {
            let (size, count) = DecoderModel.headChunks(rows: c.rows, lanes: c.lanes)
            XCTAssertEqual([size, count], [c.size, c.count], "\(c.rows) rows on \(c.lanes) lanes")
            XCTAssertLessThanOrEqual(size, DecoderModel.headChunkRows)
            XCTAssert((count - 1) * size < c.rows && c.rows <= count * size, "chunks must cover the rows exactly")
        }
    }
}
