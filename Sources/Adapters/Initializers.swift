import LinearAlgebra

/// One adapted layer's trainable factors: `A` is r×in, `B` is out×r; the layer computes
/// `y = x·W_resᵀ + scale · x·Aᵀ·Bᵀ`.
public struct LoRAFactors: Sendable, Equatable {
    public var A: Matrix
    public var B: Matrix
    /// DoRA's magnitude vector (out), PEFT's `lora_magnitude_vector`; nil for plain LoRA. The
    /// layer then computes `y = (m / ‖W + scale·B·A‖_row) ⊙ (x·Wᵀ + scale·x·Aᵀ·Bᵀ)`.
    public var magnitude: [Float]?

    public init(A: Matrix, B: Matrix, magnitude: [Float]? = nil) {
        self.A = A
        self.B = B
        self.magnitude = magnitude
    }

    /// DoRA's magnitude at a start: ‖W + scale·B·A‖ of every row of the frozen weight `w`
    /// (PEFT's `DoraLinearLayer.update_layer`), so that the DoRA layer starts as the LoRA one.
    public static func doraMagnitude(frozen w: Matrix, A: Matrix, B: Matrix, scale: Float) -> [Float] {
        var adapted = w
        BLAS.gemm(B, A, into: &adapted, alpha: scale, beta: 1)
        return (0..<adapted.rows).map { i in
            var sum = 0.0
            for j in 0..<adapted.cols { let v = Double(adapted[i, j]); sum += v * v }
            return Float(sum.squareRoot())
        }
    }

    public var rank: Int { A.rows }

    /// `scale · B · A` (out×in).
    public func delta(scale: Float) -> Matrix {
        var d = Matrix(rows: B.rows, cols: A.cols)
        BLAS.gemm(B, A, into: &d, alpha: scale)
        return d
    }
}

/// What a data-driven start knows about one layer from the calibration data.
public enum ModuleCalibration: Sendable {
    /// CorDA: the covariance C (in, in) of the layer's inputs.
    case covariance(Matrix)
    /// LoRA-GA: the gradient of the loss with respect to the weight (out, in), averaged over batches.
    case gradient(Matrix)
    /// EVA: the layer's A (rank, in), its rank from the redistribution (≥ 1).
    case components(Matrix)
}

/// Adapter initialisers (docs/METHOD.md §1), all in float32.
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
    /// - Parameter calibration: what the data-driven starts need for this layer (CorDA: the
    ///   covariance of its inputs; LoRA-GA: its weight's gradient; EVA: its components).
    public static func initialize(
        _ w: inout Matrix, settings: AdapterSettings, calibration: ModuleCalibration? = nil, using rng: inout SeededGenerator
    ) throws -> LoRAFactors {
        let r = settings.rank, out = w.rows, inFeatures = w.cols
        if settings.initMethod == .eva {   // EVA's rank is the layer's own, from the redistribution
            guard case .components(let a)? = calibration else { throw AdapterError.needsCalibration(method: settings.initMethod.peftName) }
            return LoRAFactors(A: a, B: Matrix(rows: out, cols: a.rows))
        }
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
        case .olora:
            return try olora(&w, settings: settings)
        case .milora:
            let svd = try SVD(exact: w)
            return try pissa(&w, svd: svd, components: (svd.S.count - r)..<svd.S.count, settings: settings)
        case .corda:
            guard case .covariance(let c)? = calibration else { throw AdapterError.needsCalibration(method: settings.initMethod.peftName) }
            return try CorDA.initialize(&w, covariance: c, settings: settings)
        case .loraGA:
            guard case .gradient(let g)? = calibration else { throw AdapterError.needsCalibration(method: settings.initMethod.peftName) }
            return try LoRAGA.initialize(&w, gradient: g, settings: settings, using: &rng)
        case .eva:
            preconditionFailure("handled above")
        }
    }

    /// PiSSA's split of the singular triplets `components` (the top r by default):
    /// `A = diag(√(S/scale))·Vh`, `B = U·diag(√(S/scale))`, and `w` becomes `W − scale·B·A`.
    static func pissa(_ w: inout Matrix, svd: SVD, components: Range<Int>? = nil, settings: AdapterSettings) throws -> LoRAFactors {
        let scale = settings.scale, picked = components ?? 0..<settings.rank
        let roots = picked.map { (max(0, svd.S[$0]) / scale).squareRoot() }
        var a = Matrix(rows: picked.count, cols: svd.Vh.cols), b = Matrix(rows: svd.U.rows, cols: picked.count)
        for (i, c) in picked.enumerated() {
            for j in 0..<a.cols { a[i, j] = svd.Vh[c, j] * roots[i] }
            for j in 0..<b.rows { b[j, i] = svd.U[j, c] * roots[i] }
        }
        subtract(b, a, scale: scale, from: &w)
        return LoRAFactors(A: a, B: b)
    }

    /// OLoRA (PEFT's `olora_init`): W = Q·R (thin Householder QR, float32), B = Q[:, :r],
    /// A = R[:r, :], and `w` becomes `W − scale·B·A`. The factors are not divided by the scale.
    static func olora(_ w: inout Matrix, settings: AdapterSettings) throws -> LoRAFactors {
        let (q, rFactor) = try QR.thin(w)
        let factors = LoRAFactors(A: rFactor.topRows(settings.rank), B: q.leftColumns(settings.rank))
        subtract(factors.B, factors.A, scale: settings.scale, from: &w)
        return factors
    }

    /// W ← W − scale·B·A, in place (float32, as PEFT computes every residual).
    static func subtract(_ b: Matrix, _ a: Matrix, scale: Float, from w: inout Matrix) {
        BLAS.gemm(b, a, into: &w, alpha: -scale, beta: 1)
    }
}
