import Foundation
import LinearAlgebra
@testable import Model
import TestSupport
import XCTest

/// The NF4 frozen base against the dense base on its own dequantised matrix: the tiled products
/// must compute exactly what the dense path computes on `nf4.dequantized()`, so the only error
/// of QPiSSA / QLoRA training is the quantisation itself.
///
/// Shapes: 300 output rows are 4 forward tiles of 75 on two lanes (2 of 150 on one) and one
/// backward tile of 256 plus one of 44; 131 rows are tiles of 65 + 66 (forward) and 131 (backward).
/// 40 input columns make rows that start inside an absmax block (the element-wise head and tail
/// of `dequantizeRows`); 128 columns are block-aligned (SIMD path only). Tolerance: 1e-6 relative
/// (Frobenius) — the tiles change only the gemm's summation order (observed ≤ 2e-7).
final class FrozenLinearTests: XCTestCase {
    private typealias G = GradientCheck

    /// `dequantizeRows` (SIMD over whole blocks, element-wise at the edges) equals code · absmax
    /// element by element, for ranges that start and end inside blocks, and for a block size
    /// that is not a multiple of 8 (element-wise throughout).
    func testDequantizeRowsEqualsCodeTimesAbsmax() {
        var rng = SeededGenerator(seed: 41)
        for (rows, cols, block) in [(7, 40, 64), (5, 128, 64), (9, 30, 6), (3, 1, 64), (6, 256, 32), (4, 160, 16)] {
            let m = Matrix(rows: rows, cols: cols, storage: G.randomFloats(rows * cols, using: &rng))
            let q = NF4Matrix(quantizing: m, blockSize: block)
            for range in [0..<rows, 1..<rows, 0..<1, (rows / 2)..<rows, 2..<2] where range.upperBound <= rows {
                forEachKernelLevel { level in
                    var out = [Float](repeating: .nan, count: max(1, range.count * cols))
                    q.dequantizeRows(range, into: &out)
                    for i in 0..<(range.count * cols) {
                        let e = range.lowerBound * cols + i
                        let expected = NF4Matrix.codebook[Int(q.code(at: e))] * q.absmax[e / block]
                        guard out[i] == expected else {
                            return XCTFail("\(rows)×\(cols) block \(block) rows \(range) \(level): element \(e) is \(out[i]), expected \(expected)")
                        }
                    }
                }
            }
        }
    }

    /// y, x·Aᵀ, dx (both accumulate modes), dA and dB of the adapted projection on the NF4 base
    /// against the dense base holding `nf4.dequantized()`, on one and two lanes.
    func testNF4ProjectEqualsDenseOnDequantized() throws {
        let model1 = DecoderModel(weights: try G.tinyWeights(), lanes: 1), model2 = DecoderModel(weights: try G.tinyWeights(), lanes: 2)
        for (rows, inF, outF, seed) in [(5, 40, 300, 51), (37, 40, 300, 52), (1, 128, 131, 53), (70, 128, 131, 54)] {
            var rng = SeededGenerator(seed: UInt64(seed))
            let w = Matrix(rows: outF, cols: inF, storage: G.randomFloats(outF * inF, std: 1 / Float(inF).squareRoot(), using: &rng))
            let nf4 = NF4Matrix(quantizing: w)
            let dense = nf4.dequantized()
            let x = G.randomFloats(rows * inF, using: &rng), dy = G.randomFloats(rows * outF, using: &rng)
            let a = G.randomFloats(3 * inF, std: 0.5, using: &rng), b = G.randomFloats(outF * 3, std: 0.5, using: &rng)
            for model in [model1, model2] {
                let label = "\(rows)×\(inF)→\(outF), \(model.lanes) lanes"
                let expected = run(model, dense, x: x, dy: dy, a: a, b: b, rows: rows)
                let observed = run(model, nf4, x: x, dy: dy, a: a, b: b, rows: rows)
                let names = ["y", "x·Aᵀ", "dx", "dx (accumulate)", "dA", "dB"]
                for i in names.indices {
                    assertRelativeClose(observed[i], expected[i], tolerance: 1e-6, "\(names[i]) \(label)")
                }
            }
        }
    }

    /// The products of one adapted projection (rank 3, scale 0.75): [y, xa, dx, dx accumulated
    /// onto 1, dA, dB], each as a matrix.
    func run(_ model: DecoderModel, _ w: any LinearWeight, x: [Float], dy: [Float], a: [Float], b: [Float], rows: Int) -> [Matrix] {
        let (outF, inF, rank) = (w.rows, w.cols, 3)
        let aBuffer = G.FloatBuffer(a), bBuffer = G.FloatBuffer(b)
        let gradA = G.FloatBuffer(zeros: rank * inF), gradB = G.FloatBuffer(zeros: outF * rank)
        let adapter = LoRAAdapter(a: aBuffer.pointer, b: bBuffer.pointer, gradA: gradA.pointer, gradB: gradB.pointer,
                                  rank: rank, scale: 0.75)
        var y = [Float](repeating: .nan, count: rows * outF), xa = [Float](repeating: .nan, count: rows * rank)
        model.project(x, w, adapter: adapter, into: &y, rows: rows, xa: &xa)
        var dx = [Float](repeating: .nan, count: rows * inF), accumulated = [Float](repeating: 1, count: rows * inF)
        model.projectBackward(dy: dy, x: x, w, adapter: adapter, xa: xa, dx: &dx, rows: rows, accumulate: false)
        model.projectBackward(dy: dy, x: x, w, adapter: nil, xa: nil, dx: &accumulated, rows: rows, accumulate: true)
        return [Matrix(rows: rows, cols: outF, storage: y), Matrix(rows: rows, cols: rank, storage: xa),
                Matrix(rows: rows, cols: inF, storage: dx), Matrix(rows: rows, cols: inF, storage: accumulated),
                Matrix(rows: rank, cols: inF, storage: gradA.values), Matrix(rows: outF, cols: rank, storage: gradB.values)]
    }

    /// The whole training step (`lossAndGradients`, adapters on all seven projections) of the
    /// tiny Llama with every projection in NF4 against the same model with the dequantised
    /// projections in float32: loss and all adapter gradients within 1e-6 relative.
    func testNF4ModelLossAndGradientsEqualDequantizedModel() throws {
        var quantized = try G.tinyWeights()
        quantized.quantizeProjections(.nf4(blockSize: 64, doubleQuant: false))
        XCTAssertTrue(quantized.layers.allSatisfy { l in l.projections.allSatisfy { $0 is NF4Matrix } })
        let dense = quantized.dequantized()
        XCTAssertTrue(dense.layers.allSatisfy { l in l.projections.allSatisfy { $0 is Matrix } })
        XCTAssertLessThan(quantized.projectionBytes * 6, dense.projectionBytes)   // 4.5 bits vs 32 per weight

        var rng = SeededGenerator(seed: 61)
        let c = dense.config, (batch, T) = (2, 18)
        let tokens = (0..<(batch * T)).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) }
        let targets = (0..<(batch * T)).map { n in n % T == T - 1 || n == 0 ? Int32(-1) : tokens[n + 1] }
        let supervised = Float(targets.filter { $0 >= 0 }.count)
        var results: [(loss: Double, gradients: [Float])] = []
        for weights in [dense, quantized] {
            let flat = G.FlatAdapters(weights: weights, rank: 2, scale: 2, seed: 62)
            let model = DecoderModel(weights: weights, lanes: 2)
            let scratch = TrainingScratch(model: model, capacityRows: batch * T, maxRank: flat.rank)
            let loss = model.lossAndGradients(tokens: tokens, targets: targets, lengths: Array(repeating: tokens.count / batch, count: batch), adapters: flat.adapters,
                                              normalizer: supervised, scratch: scratch)
            results.append((loss, flat.gradientValues))
        }
        XCTAssertEqual(results[1].loss, results[0].loss, accuracy: 1e-6 * abs(results[0].loss))
        assertRelativeClose(Matrix(rows: 1, cols: results[1].gradients.count, storage: results[1].gradients),
                            Matrix(rows: 1, cols: results[0].gradients.count, storage: results[0].gradients),
                            tolerance: 1e-6, "all adapter gradients")
    }
}
