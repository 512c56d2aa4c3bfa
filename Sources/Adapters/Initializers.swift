import LinearAlgebra

/// One adapted layer's trainable factors: `A` is r×in, `B` is out×r; the layer computes
/// `y = x·W_resᵀ + scale · x·Aᵀ·Bᵀ`.
public struct LoRAFactors: Sendable, Equatable {
    public var A: Matrix
    public var B: Matrix

    public init(A: Matrix, B: Matrix) {
        self.A = A
        self.B = B
    }

    public var rank: Int { A.rows }

    /// `scale · B · A` (out×in).
    public func delta(scale: Float) -> Matrix {
        var d = Matrix(rows: B.rows, cols: A.cols)
        BLAS.gemm(B, A, into: &d, alpha: scale)
        return d
    }
}

/// Adapter initialisers (PISSA.md §1), all in float32.
public enum AdapterInitializer {
    /// Initialises one layer's adapter from its weight `w` (out×in, float32).
    ///
    /// PiSSA: with `U, S, Vh` the (exact or randomized) top-r SVD of W and `S_r = S[:r] / scale`,
    /// `A = diag(√S_r)·Vh_r`, `B = U_r·diag(√S_r)`, and `w` becomes the residual `W − scale·B·A`.
    /// The residual is a subtraction, so `W_res + scale·B·A = W` holds even when the SVD is inexact.
    /// LoRA / Gaussian: B = 0 and `w` is left unchanged.
    ///
    /// - Parameter rng: used by the randomized SVD and the LoRA starts; pass a generator for this
    ///   layer's own stream so that results do not depend on the order layers are processed in.
    public static func initialize(
        _ w: inout Matrix, settings: AdapterSettings, using rng: inout SeededGenerator
    ) throws -> LoRAFactors {
        let r = settings.rank, out = w.rows, inFeatures = w.cols
        guard r >= 1, r <= min(out, inFeatures) else {
            throw LinearAlgebraError.invalidRank(rank: r, rows: out, cols: inFeatures)
        }
        switch settings.initMethod {
        case .lora:
            let bound = 1 / Float(inFeatures).squareRoot()   // kaiming_uniform_(a=√5): gain·√(3/fan_in)
            return LoRAFactors(A: .uniform(rows: r, cols: inFeatures, bound: bound, using: &rng),
                               B: Matrix(rows: out, cols: r))
        case .gaussian:
            return LoRAFactors(A: .gaussian(rows: r, cols: inFeatures, std: 1 / Float(r), using: &rng),
                               B: Matrix(rows: out, cols: r))
        case .pissa:
            return try pissa(&w, svd: SVD.top(r, of: w), settings: settings)
        case .pissaNiter(let niter):
            let svd = try RandomizedSVD.compute(w, rank: r, niter: niter, oversample: settings.oversample, using: &rng)
            return try pissa(&w, svd: svd, settings: settings)
        case .loftq:
            throw AdapterError.needsQuantization(method: settings.initMethod.peftName)
        }
    }

    static func pissa(_ w: inout Matrix, svd: SVD, settings: AdapterSettings) throws -> LoRAFactors {
        let r = settings.rank, scale = settings.scale
        let roots = (0..<r).map { (svd.S[$0] / scale).squareRoot() }
        var a = svd.Vh.topRows(r)
        a.scaleRows(by: roots)
        var b = svd.U.leftColumns(r)
        b.scaleColumns(by: roots)
        BLAS.gemm(b, a, into: &w, alpha: -scale, beta: 1)   // W_res = W − scale·B·A, in place
        return LoRAFactors(A: a, B: b)
    }
}
