import COpenBLAS

/// The project's one general matrix product: `C ← alpha · op(A) · op(B) + beta · C`, row-major,
/// float32, through OpenBLAS `cblas_sgemm` (single-threaded products with a narrow op(B) through
/// `SkinnyGemm`). Every matrix product in the library goes through here.
public enum BLAS {
    /// Raw form. `op(A)` is m×k, `op(B)` is k×n, C is m×n; leading dimensions are row strides.
    /// A one-row product goes to `sgemv`.
    @inline(__always)
    public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        if m == 1 && !transA {
            // A single row (decoding): a matrix-vector product reads op(B) once, with no packing.
            cblas_sgemv(CblasRowMajor, transB ? CblasNoTrans : CblasTrans,
                        Int32(transB ? n : k), Int32(transB ? k : n), alpha, b, Int32(ldb), a, 1, beta, c, 1)
            return
        }
        if SkinnyGemm.applies(n: n, m: m, k: k) && openblas_get_num_threads() == 1 {
            // A narrow op(B) on one thread: our kernel streams A instead of packing it.
            SkinnyGemm.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                            b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            return
        }
        cblas_sgemm(
            CblasRowMajor,
            transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// `C ← alpha · op(A) · op(B) + beta · C` on matrices; shapes are checked.
    public static func gemm(
        _ a: Matrix, transposeA: Bool = false, _ b: Matrix, transposeB: Bool = false,
        into c: inout Matrix, alpha: Float = 1, beta: Float = 0
    ) {
        let m = transposeA ? a.cols : a.rows
        let k = transposeA ? a.rows : a.cols
        let kb = transposeB ? b.cols : b.rows
        let n = transposeB ? b.rows : b.cols
        precondition(k == kb && c.rows == m && c.cols == n,
                     "gemm shape mismatch: op(A) \(m)×\(k), op(B) \(kb)×\(n), C \(c.rows)×\(c.cols)")
        a.storage.withUnsafeBufferPointer { pa in
            b.storage.withUnsafeBufferPointer { pb in
                c.storage.withUnsafeMutableBufferPointer { pc in
                    gemm(transA: transposeA, transB: transposeB, m: m, n: n, k: k, alpha: alpha,
                         a: pa.baseAddress!, lda: a.cols, b: pb.baseAddress!, ldb: b.cols,
                         beta: beta, c: pc.baseAddress!, ldc: n)
                }
            }
        }
    }

    /// `op(A) · op(B)` as a new matrix.
    public static func matmul(_ a: Matrix, transposeA: Bool = false, _ b: Matrix, transposeB: Bool = false) -> Matrix {
        var c = Matrix(rows: transposeA ? a.cols : a.rows, cols: transposeB ? b.rows : b.cols)
        gemm(a, transposeA: transposeA, b, transposeB: transposeB, into: &c)
        return c
    }

    /// `C ← A · B` in double precision, row-major, A m×k, B k×n (`cblas_dgemm`): for the few
    /// decompositions that need more than float32 (CorDA's products with a covariance).
    public static func dgemm(_ a: [Double], _ b: [Double], m: Int, n: Int, k: Int, transposeA: Bool = false) -> [Double] {
        precondition(a.count == m * k && b.count == k * n, "dgemm: \(a.count) and \(b.count) values for \(m)×\(k) · \(k)×\(n)")
        var c = [Double](repeating: 0, count: m * n)
        guard m > 0, n > 0, k > 0 else { return c }
        cblas_dgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1,
                    a, Int32(transposeA ? m : k), b, Int32(n), 0, &c, Int32(n))
        return c
    }

    /// OpenBLAS's own worker-thread count (1 when the caller runs its own parallel lanes).
    public static var threadCount: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(max(1, newValue))) }
    }
}
