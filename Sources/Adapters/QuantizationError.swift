import COpenBLAS
import LinearAlgebra

/// The error a quantised start leaves in a weight, E = W − (deq(Q) + s·B·A) (docs/METHOD.md §3):
/// its nuclear norm ‖E‖_* = Σ σ_i(E) (the paper's measure, Tables 4/8) and Frobenius norm.
public struct QuantizationError: Codable, Sendable, Equatable {
    public var nuclear: Double
    public var frobenius: Double

    public init(nuclear: Double, frobenius: Double) {
        self.nuclear = nuclear
        self.frobenius = frobenius
    }

    /// The error of `residual` + scale·B·A (or of `residual` alone when `factors` is nil) against `w`.
    /// `nuclear: false` skips the SVD (the nuclear norm is then NaN).
    public static func measure(_ w: Matrix, residual: NF4Matrix, factors: LoRAFactors?, scale: Float,
                               nuclear: Bool = true) throws -> QuantizationError {
        var e = QuantizedInitializer.subtracting(residual, from: w)
        if let factors { BLAS.gemm(factors.B, factors.A, into: &e, alpha: -scale, beta: 1) }
        let sum = nuclear ? try singularValues(e).reduce(0.0) { $0 + Double($1) } : .nan
        return QuantizationError(nuclear: sum, frobenius: Double(e.frobeniusNorm))
    }

    /// The singular values of `a` (LAPACK `sgesdd`, jobz 'N': no vectors).
    public static func singularValues(_ a: Matrix) throws -> [Float] {
        let m = a.rows, n = a.cols, k = min(m, n)
        guard a.storage.allSatisfy({ $0.isFinite }) else { throw LinearAlgebraError.nonFinite(operation: "sgesdd") }
        var work = a.storage
        var s = [Float](repeating: 0, count: k)
        var dummyU: Float = 0, dummyV: Float = 0
        let info = LAPACKE_sgesdd(LAPACK_COL_MAJOR, Int8(UInt8(ascii: "N")), Int32(n), Int32(m),
                                  &work, Int32(n), &s, &dummyU, 1, &dummyV, 1)
        guard info == 0 else { throw LinearAlgebraError.lapackFailure(routine: "sgesdd", info: Int(info), rows: m, cols: n) }
        return s
    }
}
