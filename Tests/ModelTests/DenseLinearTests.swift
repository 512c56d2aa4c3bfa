import Foundation
import LinearAlgebra
@testable import Model
import TestSupport
import XCTest

/// The dense frozen product y = β·y + x·Wᵀ on each of its three splits (decoding: W's rows;
/// many rows: x's rows; many rows through a wide W such as the output head: tiles of W's rows
/// with all of x), against the product in Double; and observing a forward pass through fewer
/// layers than the model has.
final class DenseLinearTests: XCTestCase {
    func testEverySplitEqualsTheProductInDouble() throws {
        var rng = SeededGenerator(seed: 17)
        let inF = 24, wide = 4 * DenseLinear.wideColumnTile + 100   // a partial last tile
        let cases: [(rows: Int, outF: Int, split: String)] = [(5, 300, "decoding"), (40, 300, "rows"), (40, wide, "wide tiles")]
        for c in cases {
            let w = Matrix.gaussian(rows: c.outF, cols: inF, std: 1, using: &rng)
            let x = Matrix.gaussian(rows: c.rows, cols: inF, std: 1, using: &rng)
            let start = Matrix.gaussian(rows: c.rows, cols: c.outF, std: 1, using: &rng)
            var product = Matrix(rows: c.rows, cols: c.outF)
            for r in 0..<c.rows {
                for o in 0..<c.outF {
                    var s = 0.0
                    for i in 0..<inF { s += Double(x[r, i]) * Double(w[o, i]) }
                    product[r, o] = Float(s)
                }
            }
            for lanes in [1, 2] {
                // β = 0 overwrites whatever y holds, NaN included.
                var y = [Float](repeating: .nan, count: c.rows * c.outF)
                x.storage.withUnsafeBufferPointer { xp in
                    y.withUnsafeMutableBufferPointer { w.forward(xp.baseAddress!, rows: c.rows, into: $0.baseAddress!, beta: 0, lanes: lanes) }
                }
                assertRelativeClose(Matrix(rows: c.rows, cols: c.outF, storage: y), product, tolerance: 1e-6,
                                    "\(c.split), β = 0, \(lanes) lanes")
                // β = 1 adds onto y.
                var sum = start.storage
                x.storage.withUnsafeBufferPointer { xp in
                    sum.withUnsafeMutableBufferPointer { w.forward(xp.baseAddress!, rows: c.rows, into: $0.baseAddress!, beta: 1, lanes: lanes) }
                }
                let expected = Matrix(rows: c.rows, cols: c.outF, storage: zip(start.storage, product.storage).map { $0 + $1 })
                assertRelativeClose(Matrix(rows: c.rows, cols: c.outF, storage: sum), expected, tolerance: 1e-6,
                                    "\(c.split), β = 1, \(lanes) lanes")
            }
        }
    }

    /// `observeInputs` runs the first `layers` layers only, and shows every group of each; the
    /// inputs it shows are those of a whole forward pass.
    func testObservingRunsOnlyTheLayersNeeded() throws {
        let weights = try GradientCheck.tinyWeights()
        let model = DecoderModel(weights: weights, lanes: 2)
        let L = weights.config.numHiddenLayers
        XCTAssertGreaterThanOrEqual(L, 2)
        let tokens: [Int32] = [3, 9, 4, 17, 2, 8, 5]
        let all = Recorder(), first = Recorder()
        model.observeInputs(tokens: tokens, lengths: [4, 3], layers: L, observer: all)
        model.observeInputs(tokens: tokens, lengths: [4, 3], layers: 1, observer: first)
        XCTAssertEqual(Set(all.seen.map(\.layer)), Set(0..<L))
        XCTAssertEqual(first.seen.map(\.layer), Array(repeating: 0, count: 4), "q/k/v, o, gate/up and down of layer 0 only")
        XCTAssertEqual(first.seen.map(\.input), Array(all.seen.prefix(4).map(\.input)))
        let none = Recorder()
        model.observeInputs(tokens: tokens, lengths: [7], layers: 0, observer: none)
        XCTAssertTrue(none.seen.isEmpty)
    }
}

private final class Recorder: ProjectionInputObserver {
    var seen: [(layer: Int, input: [Float])] = []

    func observe(layer: Int, projections: [Projection], input: UnsafePointer<Float>, rows: Int, width: Int) {
        seen.append((layer, Array(UnsafeBufferPointer(start: input, count: rows * width))))
    }
}
