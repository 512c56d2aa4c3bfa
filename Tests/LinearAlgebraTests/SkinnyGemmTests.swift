@testable import LinearAlgebra
import TestSupport
import XCTest

/// The narrow-product kernels `BLAS.gemm` uses on one thread, against a Double reference, at every
/// kernel level (AVX2: blocks of 6 rows; AVX-512: blocks of 12).
final class SkinnyGemmTests: XCTestCase {
    override func setUp() { saved = BLAS.threadCount; BLAS.threadCount = 1 }
    override func tearDown() { BLAS.threadCount = saved }
    private var saved = 1

    func testEveryTransposeCombinationWidthAndRowTailMatchesNaiveProduct() {
        var rng = SeededGenerator(seed: 7)
        // m = 6·k + tail for tails 0…5 (and 12·k + 0, 1, 5, 6, 9, 11); widths of one and two
        // 16-column panels; depths over one TN block.
        for (m, k, n) in [(12, 17, 16), (13, 40, 16), (23, 16, 32), (6, 33, 32), (41, 20, 16), (9, 64, 32)] {
            XCTAssertTrue(SkinnyGemm.applies(n: n, m: m, k: k))
            let a = Matrix.gaussian(rows: m, cols: k, using: &rng)
            let b = Matrix.gaussian(rows: k, cols: n, using: &rng)
            forEachKernelLevel { assertGemmMatchesNaiveProductForEveryTranspose(a, b, "\(m)×\(k)×\(n) \($0)") }
        }
    }

    func testAlphaBetaAndZeroBetaDoesNotReadC() {
        var rng = SeededGenerator(seed: 8)
        let a = Matrix.gaussian(rows: 14, cols: 30, using: &rng)
        let b = Matrix.gaussian(rows: 30, cols: 16, using: &rng)
        let ab = naiveProduct(a, b)
        let c0 = Matrix.gaussian(rows: 14, cols: 16, using: &rng)
        forEachKernelLevel { level in
            var c = c0
            BLAS.gemm(a, b, into: &c, alpha: -2, beta: 3)
            let expected = Matrix(rows: 14, cols: 16, storage: zip(ab.storage, c0.storage).map { -2 * $0 + 3 * $1 })
            assertRelativeClose(c, expected, tolerance: 1e-6, "3C − 2AB \(level)")
            // beta = 0 overwrites C, even where C held NaN (as BLAS does).
            var poisoned = Matrix(rows: 14, cols: 16, storage: Array(repeating: .nan, count: 14 * 16))
            BLAS.gemm(a, b, into: &poisoned)
            assertRelativeClose(poisoned, ab, tolerance: 1e-6, "C ← AB over NaN \(level)")
        }
    }

    func testStridedOperandsAndOutput() {
        // Sub-blocks of larger row-major buffers: lda, ldb, ldc exceed the logical widths.
        var rng = SeededGenerator(seed: 9)
        let (m, k, n) = (19, 24, 16)
        let big = Matrix.gaussian(rows: m, cols: k + 5, using: &rng)
        let bigB = Matrix.gaussian(rows: k, cols: n + 16, using: &rng)
        var out = [Float](repeating: 0, count: m * (n + 3))
        big.storage.withUnsafeBufferPointer { pa in
            bigB.storage.withUnsafeBufferPointer { pb in
                out.withUnsafeMutableBufferPointer { pc in
                    BLAS.gemm(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: pa.baseAddress! + 2, lda: k + 5,
                              b: pb.baseAddress! + 16, ldb: n + 16, beta: 0, c: pc.baseAddress! + 1, ldc: n + 3)
                }
            }
        }
        for i in 0..<m {
            for j in 0..<n {
                var sum = 0.0
                for p in 0..<k { sum += Double(big[i, p + 2]) * Double(bigB[p, j + 16]) }
                XCTAssertEqual(Double(out[i * (n + 3) + 1 + j]), sum, accuracy: 1e-4 * max(1, abs(sum)), "(\(i), \(j))")
            }
        }
        XCTAssertEqual(out[0], 0, "the column before the block is untouched")
    }
}
