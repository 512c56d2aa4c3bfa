import Formats
import LinearAlgebra
@testable import Model
import TestSupport
import XCTest

/// Products read straight from ggml blocks (`GGMLBlockMatrix`, `BlockProducts`) against the
/// dense products on the GGUF dequantiser's values (`dequantized()`, itself checked bit for bit
/// against gguf-py in FormatsTests), for every block format and every kernel level this CPU runs.
///
/// Weights are random blocks: random code bytes, float16 scales in [0.002, 0.05]. 512 columns are
/// two K-quant super-blocks and 16 32-value blocks. Tolerance 1e-5 relative (Frobenius): only the
/// summation order differs (observed ≤ 1e-6).
extension FrozenLinearTests {
    /// Direct products (≤ `directRows` rows of x) for n = 1…8 rows, β = 0 and 1, one and two lanes.
    func testBlockProductsEqualDenseOnDequantized() {
        var rng = SeededGenerator(seed: 71)
        for format in BlockFormat.allCases {
            let w = Self.randomBlocks(format, rows: 70, cols: 512, using: &rng)
            let dense = w.dequantized()
            for n in [1, 3, 4, 5, 8] {
                let x = Matrix.gaussian(rows: n, cols: 512, using: &rng), y0 = Matrix.gaussian(rows: n, cols: 70, using: &rng)
                let expected = naiveProduct(x, dense.transposed)
                forEachKernelLevel { level in
                    for (beta, lanes) in [(Float(0), 1), (1, 2)] {
                        var y = y0
                        x.storage.withUnsafeBufferPointer { xp in
                            y.storage.withUnsafeMutableBufferPointer {
                                w.forward(xp.baseAddress!, rows: n, into: $0.baseAddress!, beta: beta, lanes: lanes)
                            }
                        }
                        let sum = beta == 0 ? expected : Matrix(rows: n, cols: 70, storage: zip(expected.storage, y0.storage).map(+))
                        assertRelativeClose(y, sum, tolerance: 1e-5, "\(format) n \(n) \(level) β \(beta) lanes \(lanes)")
                    }
                }
            }
        }
    }

    /// The adapted projection (tiled products past `directRows` rows, backward) on blocks equals
    /// the dense base holding `dequantized()`, as for NF4.
    func testBlockProjectEqualsDenseOnDequantized() {
        let model = DecoderModel(weights: try! GradientCheck.tinyWeights(), lanes: 2)
        var rng = SeededGenerator(seed: 72)
        for (format, rows) in [(BlockFormat.q4_1, 2), (.q6_K, 20), (.q5_0, 40)] {
            let w = Self.randomBlocks(format, rows: 131, cols: 256, using: &rng)
            let x = GradientCheck.randomFloats(rows * 256, using: &rng), dy = GradientCheck.randomFloats(rows * 131, using: &rng)
            let a = GradientCheck.randomFloats(3 * 256, std: 0.5, using: &rng), b = GradientCheck.randomFloats(131 * 3, std: 0.5, using: &rng)
            let expected = run(model, w.dequantized(), x: x, dy: dy, a: a, b: b, rows: rows)
            let observed = run(model, w, x: x, dy: dy, a: a, b: b, rows: rows)
            for (i, name) in ["y", "x·Aᵀ", "dx", "dx (accumulate)", "dA", "dB"].enumerated() {
                assertRelativeClose(observed[i], expected[i], tolerance: 1e-5, "\(name) \(format) \(rows) rows")
            }
        }
    }

    /// Rows are copied in the order asked for (q/k un-permutation when loading a GGUF); types
    /// without a kernel are refused.
    func testBlockMatrixRowOrder() {
        var rng = SeededGenerator(seed: 73)
        let bytes = Self.randomBlockBytes(.q8_0, rows: 6, cols: 64, using: &rng)
        let order = [3, 0, 5, 1, 4, 2]
        let (w, reordered) = bytes.withUnsafeBytes {
            (GGMLBlockMatrix(type: .q8_0, rows: 6, cols: 64, bytes: $0)!, GGMLBlockMatrix(type: .q8_0, rows: 6, cols: 64, bytes: $0, rowOrder: order)!)
        }
        let (d, e) = (w.dequantized(), reordered.dequantized())
        for r in 0..<6 { XCTAssertEqual(Array(e.storage[(r * 64)..<(r * 64 + 64)]), Array(d.storage[(order[r] * 64)..<(order[r] * 64 + 64)])) }
        XCTAssertNil(bytes.withUnsafeBytes { GGMLBlockMatrix(type: .q5_1, rows: 6, cols: 64, bytes: $0) })
    }

    /// A (rows, cols) weight of random `format` blocks.
    static func randomBlocks(_ format: BlockFormat, rows: Int, cols: Int, using rng: inout SeededGenerator) -> GGMLBlockMatrix {
        let type: GGMLType = switch format {
        case .q4_0: .q4_0
        case .q4_1: .q4_1
        case .q5_0: .q5_0
        case .q8_0: .q8_0
        case .q4_K: .q4_K
        case .q6_K: .q6_K
        }
        return randomBlockBytes(format, rows: rows, cols: cols, using: &rng).withUnsafeBytes {
            GGMLBlockMatrix(type: type, rows: rows, cols: cols, bytes: $0)!
        }
    }

    /// Random code bytes with float16 scales in [0.002, 0.05].
    static func randomBlockBytes(_ format: BlockFormat, rows: Int, cols: Int, using rng: inout SeededGenerator) -> [UInt8] {
        let blocks = rows * cols / format.blockValues
        var bytes = (0..<(blocks * format.blockBytes)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        // Offsets of the float16 scale fields in a block (d, and m / dmin where the format has them).
        let halves: [Int] = switch format {
        case .q4_0, .q5_0, .q8_0: [0]
        case .q4_1, .q4_K: [0, 2]
        case .q6_K: [208]
        }
        for b in 0..<blocks {
            for offset in halves {
                let h = Float16(0.002 + 0.048 * rng.nextUniform()).bitPattern
                bytes[b * format.blockBytes + offset] = UInt8(h & 0xFF)
                bytes[b * format.blockBytes + offset + 1] = UInt8(h >> 8)
            }
        }
        return bytes
    }
}
