/// Truncated SVD by randomized subspace iteration (Halko, Martinsson & Tropp 2009, Alg. 4.4 / 5.1).
///
/// For an m×n matrix A and target rank r, with k = min(r + oversample, m, n) sketch columns:
/// ```
/// Ω ~ N(0, 1)^{n×k};  Q = orth(A·Ω)
/// repeat niter times:  Q = orth(A·orth(Aᵀ·Q))      (re-orthonormalised every half step)
/// B = Qᵀ·A (k×n);  B = Û·Σ·Vh;  U = Q·Û;  keep the first r
/// ```
/// PEFT's `pissa_niter_K` is this with `oversample = 0` (`torch.svd_lowrank(W, q=r, niter=K)`).
/// Orthonormalisation is CholeskyQR (`QR.orthonormalizeFast`): one pass between iterations, two for the final basis. Deterministic for a given generator state. Cost: (2 + 2·niter) products of A with a k-column
/// matrix, plus QR of m×k / n×k and an SVD of k×n.
public enum RandomizedSVD {
    public static func compute(
        _ a: Matrix, rank r: Int, niter: Int, oversample: Int, using rng: inout SeededGenerator
    ) throws -> SVD {
        let m = a.rows, n = a.cols
        guard r >= 1, r <= min(m, n) else { throw LinearAlgebraError.invalidRank(rank: r, rows: m, cols: n) }
        let k = min(r + max(0, oversample), min(m, n))

        let omega = Matrix.gaussian(rows: n, cols: k, using: &rng)
        var q = Matrix(rows: m, cols: k)                // basis of the range of A
        BLAS.gemm(a, omega, into: &q)
        // Intermediate bases only need to stay well conditioned (one CholeskyQR pass); the last
        // one, which B = Qᵀ·A is projected on, must be orthonormal (two passes).
        try QR.orthonormalizeFast(&q, passes: niter > 0 ? 1 : 2)
        var z = Matrix(rows: n, cols: k)                // basis of the range of Aᵀ
        for iteration in 0..<max(0, niter) {
            BLAS.gemm(a, transposeA: true, q, into: &z)
            BLAS.gemm(a, z, into: &q)
            try QR.orthonormalizeFast(&q, passes: iteration == niter - 1 ? 2 : 1)
        }

        var bt = Matrix(rows: n, cols: k)               // Bᵀ = Aᵀ·Q (n×k), B = Qᵀ·A small
        BLAS.gemm(a, transposeA: true, q, into: &bt)
        // SVD of the wide k×n B through Bᵀ = Q_b·R_b (CholeskyQR2) and the SVD of the k×k R_bᵀ:
        // B = R_bᵀ·Q_bᵀ = Û·Σ·(Q_b·W)ᵀ. Far cheaper than sgesdd on k×n for k ≪ n.
        var rbt = try QR.orthonormalizeReturningFactor(&bt)   // bt ← Q_b, returns R_bᵀ
        let small = try SVD(exact: rbt)                 // R_bᵀ = Û Σ Wᵀ, all k×k
        rbt = small.Vh                                  // Wᵀ
        var vh = Matrix(rows: k, cols: n)
        BLAS.gemm(rbt, bt, transposeB: true, into: &vh) // Vh = Wᵀ·Q_bᵀ
        var u = Matrix(rows: m, cols: k)
        BLAS.gemm(q, small.U, into: &u)
        return SVD(U: u.leftColumns(r), S: Array(small.S[0..<r]), Vh: vh.topRows(r))
    }
}
