import LinearAlgebra

/// CorDA (Yang et al., arXiv 2406.05223; PEFT's `corda_init` and `collect_eigens_for_layer`),
/// one layer. With C the covariance of the layer's inputs
/// (`ActivationStatistics`):
///
///     damp = 0.01; repeat: C′ = C + damp·mean(diag C)·I, C′⁻¹ by LU,
///                          stop when ‖C′·C′⁻¹ − I‖_F < 0.05, else damp ×= 2
///     U, S, Vh = svd(W·C′);  V = (Vh·C′⁻¹)ᵀ
///     IPM: the first r columns of U, V and values of S;  KPM: the last r
///     A = diag(√(S/scale))·Vᵀ,  B = U·diag(√(S/scale)),  W_res = W − scale·B·A
///
/// Since V·diag(S)·Uᵀ … reconstructs W·C′·C′⁻¹ = W, the r triplets carry exactly the part of W
/// that the (damped) input covariance weighs most (IPM) or least (KPM).
public enum CorDA {
    /// The starting damping, its growth and the inverse's tolerance, as in PEFT.
    static let initialDamp: Float = 0.01, inverseTolerance = 0.05

    public static func initialize(_ w: inout Matrix, covariance c: Matrix, settings: AdapterSettings) throws -> LoRAFactors {
        let n = c.rows
        precondition(c.cols == n && n == w.cols, "CorDA: covariance \(c.shape) for a weight \(w.shape)")
        let r = settings.rank, k = min(w.rows, w.cols), out = w.rows
        // The damping is decided exactly as PEFT decides it, by its float32 inverse's error; the
        // decomposition itself runs in double precision: KPM's bottom triplets and the product
        // with C′⁻¹ lose several digits in float32 on an ill-conditioned covariance.
        let damped = try dampedInverse(c).damped.storage.map(Double.init)
        let wc = BLAS.dgemm(w.storage.map(Double.init), damped, m: out, n: n, k: n)
        let picked = settings.corda.method == .ipm ? 0..<r : (k - r)..<k
        let svd = try DoubleSVD.selected(wc, rows: out, cols: n, indices: picked)
        let vh = try DoubleCholesky(damped, size: n).rightSolve(svd.Vh, rows: r)   // Vhᵣ·C′⁻¹, rows of Vᵀ
        let scale = Double(settings.scale)
        var a = Matrix(rows: r, cols: n), b = Matrix(rows: out, cols: r)
        for i in 0..<r {
            let root = (max(0, svd.S[i]) / scale).squareRoot()
            for j in 0..<n { a[i, j] = Float(vh[i * n + j] * root) }
            for j in 0..<out { b[j, i] = Float(svd.U[j * r + i] * root) }
        }
        AdapterInitializer.subtract(b, a, scale: settings.scale, from: &w)
        return LoRAFactors(A: a, B: b)
    }

    /// C′ = C + damp·mean(diag C)·I and its inverse, damp doubled until ‖C′·C′⁻¹ − I‖_F < 0.05.
    static func dampedInverse(_ c: Matrix) throws -> (damped: Matrix, inverse: Matrix) {
        let n = c.rows
        let meanDiagonal = (0..<n).reduce(Float(0)) { $0 + c[$1, $1] } / Float(n)
        var damp = initialDamp
        for _ in 0..<64 {
            var damped = c
            for i in 0..<n { damped[i, i] += meanDiagonal * damp }
            if let inverse = try? damped.inverse() {
                var product = BLAS.matmul(damped, inverse)
                for i in 0..<n { product[i, i] -= 1 }
                if Double(product.frobeniusNorm) < inverseTolerance { return (damped, inverse) }
            }
            damp *= 2
        }
        throw AdapterError.calibration("the input covariance could not be inverted even with damping (are the inputs all zero?)")
    }
}
