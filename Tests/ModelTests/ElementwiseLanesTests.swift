import LinearAlgebra
@testable import Model
import XCTest

/// The element-wise kernels split rows across lanes; each row's arithmetic is the same on any
/// lane, so two lanes must give the bits one lane gives. 300 rows make two chunks of 150
/// (`elementwiseRowsPerLane` = 128), each with a SIMD tail (width 19 or 13).
final class ElementwiseLanesTests: XCTestCase {
    private typealias G = GradientCheck
    private let rows = 300

    func testRMSNormOnTwoLanesMatchesOne() {
        var rng = SeededGenerator(seed: 11)
        let C = 19
        let x = G.randomFloats(rows * C, mean: 0.3, using: &rng), w = G.randomFloats(C, std: 0.2, mean: 1, using: &rng)
        let dy = G.randomFloats(rows * C, using: &rng)
        func run(lanes: Int) -> (y: [Float], rstd: [Float], dx: [Float]) {
            var y = [Float](repeating: 0, count: rows * C), rstd = [Float](repeating: 0, count: rows)
            RMSNorm.forward(x: x, weight: w, y: &y, rstd: &rstd, rows: rows, cols: C, eps: 1e-5, lanes: lanes)
            var dx = [Float](repeating: 1, count: rows * C)
            RMSNorm.backward(dy: dy, x: x, weight: w, rstd: rstd, dx: &dx, rows: rows, cols: C, accumulate: true, lanes: lanes)
            return (y, rstd, dx)
        }
        let (one, two) = (run(lanes: 1), run(lanes: 2))
        XCTAssertEqual(one.y, two.y)
        XCTAssertEqual(one.rstd, two.rstd)
        XCTAssertEqual(one.dx, two.dx)
    }

    func testSwiGLUOnTwoLanesMatchesOne() {
        var rng = SeededGenerator(seed: 12)
        let width = 13
        let g = G.randomFloats(rows * width, std: 3, using: &rng), u = G.randomFloats(rows * width, using: &rng)
        let dh = G.randomFloats(rows * width, using: &rng)
        func run(lanes: Int) -> [[Float]] {
            var h = [Float](repeating: 0, count: rows * width), dg = h, du = h
            SwiGLU.forward(gate: g, up: u, out: &h, rows: rows, width: width, lanes: lanes)
            SwiGLU.backward(dh: dh, gate: g, up: u, dGate: &dg, dUp: &du, rows: rows, width: width, lanes: lanes)
            return [h, dg, du]
        }
        XCTAssertEqual(run(lanes: 1), run(lanes: 2))
    }

    func testRotaryOnTwoLanesMatchesOne() {
        var rng = SeededGenerator(seed: 13)
        let (heads, D) = (3, 20)
        let table = RotaryTable(headDim: D, maxPositions: 64, rope: RopeSpec(theta: 10000))
        let positions = (0..<rows).map { Int32($0 % 64) }
        let x = G.randomFloats(rows * heads * D, using: &rng)
        func run(lanes: Int, inverse: Bool) -> [Float] {
            var y = x
            positions.withUnsafeBufferPointer { p in
                table.apply(&y, rows: rows, heads: heads, positions: p.baseAddress!, inverse: inverse, lanes: lanes)
            }
            return y
        }
        for inverse in [false, true] {
            XCTAssertEqual(run(lanes: 1, inverse: inverse), run(lanes: 2, inverse: inverse))
        }
    }
}
