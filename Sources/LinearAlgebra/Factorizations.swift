import COpenBLAS

/// Factorisations the adapter starts need beyond the SVD: the thin Householder QR of a whole
/// matrix (OLoRA), the inverse of a square matrix (CorDA's covariance) and a double-precision
/// SVD (EVA's incremental PCA).
extension QR {
    /// The thin QR factorisation A = Q·R of an m×n matrix, k = min(m, n): Q is m×k with
    /// orthonormal columns, R is k×n upper triangular (trapezoidal when n > k). LAPACK `sgeqrf` +
    /// `sorgqr`, the routines `torch.linalg.qr(mode="reduced")` calls on a CPU, so the signs of
    /// R's diagonal follow the same Householder convention.
    public static func thin(_ a: Matrix) throws -> (Q: Matrix, R: Matrix) {
        let m = a.rows, n = a.cols, k = min(m, n)
        guard a.storage.allSatisfy({ $0.isFinite }) else { throw LinearAlgebraError.nonFinite(operation: "sgeqrf") }
        var column = a.transposed.storage   // row-major Aᵀ is column-major A (m×n, leading dimension m)
        var tau = [Float](repeating: 0, count: max(1, k))
        var info = LAPACKE_sgeqrf(LAPACK_COL_MAJOR, Int32(m), Int32(n), &column, Int32(m), &tau)
        guard info == 0 else { throw LinearAlgebraError.lapackFailure(routine: "sgeqrf", info: Int(info), rows: m, cols: n) }
        var r = Matrix(rows: k, cols: n)
        for j in 0..<n {
            for i in 0...min(j, k - 1) { r[i, j] = column[j * m + i] }
        }
        info = LAPACKE_sorgqr(LAPACK_COL_MAJOR, Int32(m), Int32(k), Int32(k), &column, Int32(m), &tau)
        guard info == 0 else { throw LinearAlgebraError.lapackFailure(routine: "sorgqr", info: Int(info), rows: m, cols: k) }
        var q = Matrix(rows: m, cols: k)
        for j in 0..<k {
            for i in 0..<m { q[i, j] = column[j * m + i] }
        }
        return (q, r)
    }
}

extension Matrix {
    /// The inverse of a square matrix by LU with partial pivoting (`sgetrf` + `sgetri`, as
    /// `torch.linalg.inv`). Throws when the matrix is singular to working precision.
    public func inverse() throws -> Matrix {
        precondition(rows == cols, "inverse of a \(rows)×\(cols) matrix")
        let n = rows
        guard storage.allSatisfy({ $0.isFinite }) else { throw LinearAlgebraError.nonFinite(operation: "sgetrf") }
        // Row-major M is column-major Mᵀ, and (Mᵀ)⁻¹ = (M⁻¹)ᵀ: inverting the storage as it lies
        // gives M⁻¹ in row-major order.
        var work = storage
        var pivots = [Int32](repeating: 0, count: max(1, n))
        var info = LAPACKE_sgetrf(LAPACK_COL_MAJOR, Int32(n), Int32(n), &work, Int32(n), &pivots)
        guard info == 0 else { throw LinearAlgebraError.lapackFailure(routine: "sgetrf", info: Int(info), rows: n, cols: n) }
        info = LAPACKE_sgetri(LAPACK_COL_MAJOR, Int32(n), &work, Int32(n), &pivots)
        guard info == 0 else { throw LinearAlgebraError.lapackFailure(routine: "sgetri", info: Int(info), rows: n, cols: n) }
        return Matrix(rows: n, cols: n, storage: work)
    }
}

/// A thin SVD in double precision, `A = U·diag(S)·Vh` with A m×n row-major, k = min(m, n):
/// U m×k, S descending, Vh k×n (LAPACK `dgesdd`, with the same row-major/column-major
/// correspondence as `SVD(exact:)`).
public struct DoubleSVD: Sendable {
    public var U: [Double]
    public var S: [Double]
    public var Vh: [Double]
    public let rows: Int
    public let cols: Int
    public var rank: Int { S.count }

    public init(_ a: [Double], rows m: Int, cols n: Int) throws {
        precondition(a.count == m * n, "DoubleSVD: \(a.count) values for \(m)×\(n)")
        guard a.allSatisfy({ $0.isFinite }) else { throw LinearAlgebraError.nonFinite(operation: "dgesdd") }
        let k = min(m, n)
        var work = a
        var s = [Double](repeating: 0, count: k)
        var u = [Double](repeating: 0, count: m * k)
        var vh = [Double](repeating: 0, count: k * n)
        let info = LAPACKE_dgesdd(LAPACK_COL_MAJOR, Int8(UInt8(ascii: "S")), Int32(n), Int32(m),
                                  &work, Int32(n), &s, &vh, Int32(n), &u, Int32(k))
        guard info == 0 else { throw LinearAlgebraError.lapackFailure(routine: "dgesdd", info: Int(info), rows: m, cols: n) }
        U = u
        S = s
        Vh = vh
        rows = m
        cols = n
    }
}

extension DoubleSVD {
    /// The singular triplets `indices` (0-based, in descending order of S) of an m×n row-major
    /// matrix, by LAPACK `dgesvdx` (bidiagonalisation, then only those triplets): U m×r, S, Vh r×n.
    public static func selected(_ a: [Double], rows m: Int, cols n: Int, indices: Range<Int>) throws -> (U: [Double], S: [Double], Vh: [Double]) {
        let k = min(m, n), r = indices.count
        guard r >= 1, indices.lowerBound >= 0, indices.upperBound <= k else { throw LinearAlgebraError.invalidRank(rank: r, rows: m, cols: n) }
        guard a.allSatisfy({ $0.isFinite }) else { throw LinearAlgebraError.nonFinite(operation: "dgesvdx") }
        var work = a, found: Int32 = 0
        var s = [Double](repeating: 0, count: k), superb = [Int32](repeating: 0, count: 12 * k)
        var vh = [Double](repeating: 0, count: r * n), u = [Double](repeating: 0, count: m * r)
        let v = Int8(UInt8(ascii: "V"))
        // Row-major A is column-major Aᵀ = V·S·Uᵀ: LAPACK's U is our Vhᵀ, its Vᵀ our Uᵀ (see SVD.top).
        let info = LAPACKE_dgesvdx(LAPACK_COL_MAJOR, v, v, Int8(UInt8(ascii: "I")), Int32(n), Int32(m), &work, Int32(n), 0, 0,
                                   Int32(indices.lowerBound + 1), Int32(indices.upperBound), &found, &s, &vh, Int32(n), &u, Int32(r), &superb)
        guard info == 0, found == r else {
            throw LinearAlgebraError.lapackFailure(routine: "dgesvdx", info: Int(info == 0 ? -99 : info), rows: m, cols: n)
        }
        return (u, Array(s.prefix(r)), vh)
    }
}

/// The Cholesky factorisation of a symmetric positive definite matrix in double precision.
public struct DoubleCholesky: Sendable {
    private var factor: [Double]
    public let size: Int

    /// Factors the n×n symmetric matrix `a` (row-major); throws when it is not positive definite.
    public init(_ a: [Double], size n: Int) throws {
        precondition(a.count == n * n)
        factor = a
        let info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "L")), Int32(n), &factor, Int32(n))
        guard info == 0 else { throw LinearAlgebraError.lapackFailure(routine: "dpotrf", info: Int(info), rows: n, cols: n) }
        size = n
    }

    /// X·A⁻¹ for the rows of X (rows × n): the solution of A·Y = Xᵀ, transposed (A is symmetric).
    public func rightSolve(_ x: [Double], rows: Int) throws -> [Double] {
        var columns = [Double](repeating: 0, count: rows * size)          // Xᵀ, n × rows, row-major
        for i in 0..<rows { for j in 0..<size { columns[j * rows + i] = x[i * size + j] } }
        let info = LAPACKE_dpotrs(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "L")), Int32(size), Int32(rows), factor, Int32(size),
                                  &columns, Int32(rows))
        guard info == 0 else { throw LinearAlgebraError.lapackFailure(routine: "dpotrs", info: Int(info), rows: size, cols: rows) }
        var out = [Double](repeating: 0, count: rows * size)
        for i in 0..<rows { for j in 0..<size { out[i * size + j] = columns[j * rows + i] } }
        return out
    }
}

extension SVD {
    /// The singular values of a matrix, descending (LAPACK `sgesdd` without vectors: a fraction of
    /// the full decomposition's time).
    public static func singularValues(of a: Matrix) throws -> [Float] {
        let m = a.rows, n = a.cols, k = min(m, n)
        guard a.storage.allSatisfy({ $0.isFinite }) else { throw LinearAlgebraError.nonFinite(operation: "sgesdd") }
        var work = a.storage, s = [Float](repeating: 0, count: k)
        var u: Float = 0, vt: Float = 0
        let info = LAPACKE_sgesdd(LAPACK_COL_MAJOR, Int8(UInt8(ascii: "N")), Int32(n), Int32(m), &work, Int32(n), &s, &u, 1, &vt, 1)
        guard info == 0 else { throw LinearAlgebraError.lapackFailure(routine: "sgesdd", info: Int(info), rows: m, cols: n) }
        return s
    }
}
