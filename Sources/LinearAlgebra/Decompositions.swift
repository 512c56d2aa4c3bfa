import COpenBLAS

/// A thin singular value decomposition `A = U · diag(S) · Vh` of an m×n matrix, k = min(m, n):
/// `U` is m×k, `S` has k values in descending order, `Vh` is k×n.
public struct SVD: Sendable {
    public var U: Matrix
    public var S: [Float]
    public var Vh: Matrix

    public init(U: Matrix, S: [Float], Vh: Matrix) {
        self.U = U
        self.S = S
        self.Vh = Vh
    }

    /// The exact thin SVD through LAPACK `sgesdd` (divide and conquer; `sgesvd` is ≈ 40× slower here).
    ///
    /// A row-major m×n matrix is the column-major n×m matrix Aᵀ, so LAPACK factors Aᵀ = Uₓ Σ Vₓᵀ and
    /// the factors of A = Vₓ Σ Uₓᵀ come out already laid out row-major: no transposing copies.
    public init(exact a: Matrix) throws {
        let m = a.rows, n = a.cols, k = min(m, n)
        guard a.storage.allSatisfy({ $0.isFinite }) else { throw LinearAlgebraError.nonFinite(operation: "sgesdd") }
        var work = a.storage                          // sgesdd destroys its input
        var s = [Float](repeating: 0, count: k)
        var uOfA = [Float](repeating: 0, count: m * k)  // = Vₓᵀ, column-major k×m
        var vhOfA = [Float](repeating: 0, count: k * n) // = Uₓ, column-major n×k
        let info = LAPACKE_sgesdd(LAPACK_COL_MAJOR, Int8(UInt8(ascii: "S")), Int32(n), Int32(m),
                                  &work, Int32(n), &s, &vhOfA, Int32(n), &uOfA, Int32(k))
        guard info == 0 else {
            throw LinearAlgebraError.lapackFailure(routine: "sgesdd", info: Int(info), rows: m, cols: n)
        }
        self.init(U: Matrix(rows: m, cols: k, storage: uOfA), S: s, Vh: Matrix(rows: k, cols: n, storage: vhOfA))
    }

    /// `U[:, :r] · diag(S[:r]) · Vh[:r, :]`, the best rank-r approximation.
    public func reconstruct(rank r: Int) -> Matrix {
        var us = U.leftColumns(r)
        us.scaleColumns(by: Array(S[0..<r]))
        return BLAS.matmul(us, Vh.topRows(r))
    }
}

public enum QR {
    /// The thin orthonormal factor Q (m×k) of an m×k matrix with m ≥ k, replacing `y` in place.
    ///
    /// Row-major Y is column-major Yᵀ (k×m); its LQ factorisation Yᵀ = L·Q₁ gives Y = Q₁ᵀ·Lᵀ, and
    /// Q₁ (column-major k×m, from `sgelqf` + `sorglq`) is Q₁ᵀ row-major: the thin Q of Y, in place.
    public static func orthonormalize(_ y: inout Matrix) throws {
        let m = y.rows, k = y.cols
        precondition(m >= k, "QR.orthonormalize needs rows ≥ cols, got \(m)×\(k)")
        var tau = [Float](repeating: 0, count: k)
        try y.storage.withUnsafeMutableBufferPointer { p in
            var info = LAPACKE_sgelqf(LAPACK_COL_MAJOR, Int32(k), Int32(m), p.baseAddress, Int32(k), &tau)
            guard info == 0 else { throw LinearAlgebraError.lapackFailure(routine: "sgelqf", info: Int(info), rows: m, cols: k) }
            info = LAPACKE_sorglq(LAPACK_COL_MAJOR, Int32(k), Int32(m), Int32(k), p.baseAddress, Int32(k), &tau)
            guard info == 0 else { throw LinearAlgebraError.lapackFailure(routine: "sorglq", info: Int(info), rows: m, cols: k) }
        }
    }
}
