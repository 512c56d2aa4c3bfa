import LinearAlgebra
import XCTest

/// Asserts ‖observed − expected‖_F / ‖expected‖_F ≤ tolerance, printing both norms and the
/// first few mismatching entries when it fails.
public func assertRelativeClose(
    _ observed: Matrix, _ expected: Matrix, tolerance: Double, _ label: String = "",
    file: StaticString = #filePath, line: UInt = #line
) {
    guard observed.rows == expected.rows, observed.cols == expected.cols else {
        XCTFail("\(label): shape \(observed.shape) ≠ expected \(expected.shape)", file: file, line: line)
        return
    }
    let rel = observed.relativeDifference(to: expected)
    if !(rel <= tolerance) {
        var lines: [String] = []
        for i in 0..<expected.count where lines.count < 5 {
            let d = abs(Double(observed.storage[i]) - Double(expected.storage[i]))
            if d > tolerance * Double(abs(expected.storage[i])) + 1e-12 {
                lines.append("  [\(i / expected.cols), \(i % expected.cols)] observed \(observed.storage[i]) expected \(expected.storage[i])")
            }
        }
        XCTFail("\(label): relative error \(rel) > \(tolerance)\n" + lines.joined(separator: "\n"), file: file, line: line)
    }
}

/// A random m×n matrix with singular values `decay^i` (i = 0…), built as U·diag(s)·Vᵀ from
/// orthonormalised Gaussian factors: a controlled spectrum for SVD tests.
public func matrixWithSpectrum(rows m: Int, cols n: Int, decay: Float, seed: UInt64) throws -> (Matrix, [Float]) {
    var rng = SeededGenerator(seed: seed)
    let k = min(m, n)
    var u = Matrix.gaussian(rows: m, cols: k, using: &rng)
    var v = Matrix.gaussian(rows: n, cols: k, using: &rng)
    try QR.orthonormalize(&u)
    try QR.orthonormalize(&v)
    var s = [Float](repeating: 0, count: k)
    var x: Float = 10
    for i in 0..<k { s[i] = x; x *= decay }
    u.scaleColumns(by: s)
    return (BLAS.matmul(u, v, transposeB: true), s)
}

/// Naive triple loop in Double: the reference for gemm tests.
public func naiveProduct(_ a: Matrix, _ b: Matrix) -> Matrix {
    var c = Matrix(rows: a.rows, cols: b.cols)
    for i in 0..<a.rows {
        for j in 0..<b.cols {
            var sum = 0.0
            for p in 0..<a.cols { sum += Double(a[i, p]) * Double(b[p, j]) }
            c[i, j] = Float(sum)
        }
    }
    return c
}

/// `BLAS.gemm` of a and b passed plain and transposed in all four ways equals `naiveProduct(a, b)`.
public func assertGemmMatchesNaiveProductForEveryTranspose(_ a: Matrix, _ b: Matrix, tolerance: Double = 1e-6,
                                                           _ label: String = "", file: StaticString = #filePath, line: UInt = #line) {
    let expected = naiveProduct(a, b)
    let at = a.transposed, bt = b.transposed
    assertRelativeClose(BLAS.matmul(a, b), expected, tolerance: tolerance, "NN \(label)", file: file, line: line)
    assertRelativeClose(BLAS.matmul(at, transposeA: true, b), expected, tolerance: tolerance, "TN \(label)", file: file, line: line)
    assertRelativeClose(BLAS.matmul(a, bt, transposeB: true), expected, tolerance: tolerance, "NT \(label)", file: file, line: line)
    assertRelativeClose(BLAS.matmul(at, transposeA: true, bt, transposeB: true), expected, tolerance: tolerance,
                        "TT \(label)", file: file, line: line)
}
