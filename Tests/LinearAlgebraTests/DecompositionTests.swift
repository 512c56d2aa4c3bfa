import LinearAlgebra
import TestSupport
import XCTest

final class DecompositionTests: XCTestCase {
    func testGemmMatchesNaiveProductForEveryTransposeCombination() {
        var rng = SeededGenerator(seed: 1)
        let a = Matrix.gaussian(rows: 7, cols: 5, using: &rng)
        let b = Matrix.gaussian(rows: 5, cols: 3, using: &rng)
        let expected = naiveProduct(a, b)
        assertGemmMatchesNaiveProductForEveryTranspose(a, b)
        // alpha / beta accumulate into C.
        var c = expected
        BLAS.gemm(a, b, into: &c, alpha: -2, beta: 3)
        assertRelativeClose(c, expected, tolerance: 1e-6, "3C − 2AB = C")
    }

    func testExactSVDReconstructsAndIsOrthonormal() throws {
        for (m, n) in [(12, 7), (7, 12), (9, 9)] {
            var rng = SeededGenerator(seed: UInt64(m * 31 + n))
            let a = Matrix.gaussian(rows: m, cols: n, using: &rng)
            let svd = try SVD(exact: a)
            let k = min(m, n)
            XCTAssertEqual(svd.U.shape, [m, k])
            XCTAssertEqual(svd.Vh.shape, [k, n])
            XCTAssertEqual(svd.S, svd.S.sorted(by: >), "singular values descend")
            assertRelativeClose(svd.reconstruct(rank: k), a, tolerance: 1e-5, "U S Vh = A (\(m)×\(n))")
            let identity = Matrix(rows: k, cols: k, storage: (0..<(k * k)).map { $0 / k == $0 % k ? 1 : 0 })
            assertRelativeClose(BLAS.matmul(svd.U, transposeA: true, svd.U), identity, tolerance: 1e-5, "UᵀU = I")
            assertRelativeClose(BLAS.matmul(svd.Vh, svd.Vh, transposeB: true), identity, tolerance: 1e-5, "Vh Vhᵀ = I")
        }
    }

    func testExactSVDRecoversAKnownSpectrum() throws {
        let (a, s) = try matrixWithSpectrum(rows: 40, cols: 30, decay: 0.8, seed: 3)
        let svd = try SVD(exact: a)
        for i in 0..<10 { XCTAssertEqual(svd.S[i], s[i], accuracy: 1e-4 * s[0]) }
    }

    func testSVDRejectsNonFiniteInput() {
        var a = Matrix(rows: 3, cols: 3, repeating: 1)
        a[1, 1] = .nan
        XCTAssertThrowsError(try SVD(exact: a)) { XCTAssertEqual($0 as? LinearAlgebraError, .nonFinite(operation: "sgesdd")) }
    }

    func testQRGivesOrthonormalBasisOfTheSameSpan() throws {
        var rng = SeededGenerator(seed: 5)
        let y = Matrix.gaussian(rows: 20, cols: 6, using: &rng)
        var q = y
        try QR.orthonormalize(&q)
        let identity = Matrix(rows: 6, cols: 6, storage: (0..<36).map { $0 / 6 == $0 % 6 ? 1 : 0 })
        assertRelativeClose(BLAS.matmul(q, transposeA: true, q), identity, tolerance: 1e-5, "QᵀQ = I")
        // Projecting Y onto span(Q) gives Y back.
        let projected = BLAS.matmul(q, BLAS.matmul(q, transposeA: true, y))
        assertRelativeClose(projected, y, tolerance: 1e-5, "QQᵀY = Y")
    }

    func testRandomizedSVDApproachesExactOnDecayingSpectrum() throws {
        let (a, _) = try matrixWithSpectrum(rows: 120, cols: 80, decay: 0.85, seed: 7)
        let r = 8
        let exact = try SVD(exact: a).reconstruct(rank: r)
        var previous = Double.infinity
        for niter in [0, 2, 8] {
            var rng = SeededGenerator(seed: 11)
            let approx = try RandomizedSVD.compute(a, rank: r, niter: niter, oversample: 4, using: &rng)
            XCTAssertEqual(approx.U.shape, [120, r])
            XCTAssertEqual(approx.Vh.shape, [r, 80])
            let err = approx.reconstruct(rank: r).relativeDifference(to: exact)
            XCTAssertLessThanOrEqual(err, previous * 1.01, "more iterations must not be worse (niter \(niter))")
            previous = err
        }
        XCTAssertLessThan(previous, 1e-3, "niter 8 reaches the exact rank-r product")
    }

    func testRandomizedSVDIsDeterministicForASeed() throws {
        let (a, _) = try matrixWithSpectrum(rows: 30, cols: 50, decay: 0.7, seed: 9)
        var g1 = SeededGenerator(seed: 42), g2 = SeededGenerator(seed: 42)
        let x = try RandomizedSVD.compute(a, rank: 4, niter: 2, oversample: 2, using: &g1)
        let y = try RandomizedSVD.compute(a, rank: 4, niter: 2, oversample: 2, using: &g2)
        XCTAssertEqual(x.U, y.U)
        XCTAssertEqual(x.S, y.S)
        XCTAssertThrowsError(try RandomizedSVD.compute(a, rank: 31, niter: 1, oversample: 0, using: &g1))
    }
}
