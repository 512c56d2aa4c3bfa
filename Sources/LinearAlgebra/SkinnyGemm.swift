import CKernels

/// Products with a narrow right-hand side, `C (m×n) ← alpha · op(A) · op(B) + beta · C` with n = 16
/// or 32 (the rank of an adapter or a randomized-SVD sketch), on the calling thread.
///
/// OpenBLAS packs the whole of `A` for every such call, which for n = 16 costs about as much as
/// the product. These kernels stream `A` once in place, one 16-column panel of C at a time: a
/// block of rows of op(A) × 16 columns of C lives in 12 registers (6 rows × 2 AVX2 registers, or
/// 12 rows × 1 AVX-512 register), each A element is broadcast once and each 16-wide row of op(B)
/// loaded once per block (C kernels, `CPUKernels`). op(A) = Aᵀ walks the depth in blocks of 32
/// rows so that a block's pages stay in the L1 TLB (≈ 60 → 90 GFLOP/s on 576×1536 with AVX2).
/// `pissa bench narrow` (BENCHMARKS.md) on SmolLM2's shapes, one core, AVX2: ≈ 104 GFLOP/s for
/// op(A) = A and 90–97 for Aᵀ, against OpenBLAS's 57–70. `BLAS.gemm` sends suitable
/// single-threaded calls here; nothing else calls it.
package enum SkinnyGemm {
    /// Whether `BLAS.gemm` should use these kernels for this call. From n = 64 on (attention's
    /// P·V with 64-wide heads) OpenBLAS's packing pays for itself and it is faster again.
    @inline(__always)
    static func applies(n: Int, m: Int, k: Int) -> Bool {
        n % 16 == 0 && n <= 32 && m >= 6 && k >= 16
    }

    package static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if transB {
            // op(B) = Bᵀ with B n×k: the k×n copy is small next to A.
            let packed = UnsafeMutablePointer<Float>.allocate(capacity: k * n)
            defer { packed.deallocate() }
            for col in 0..<n {
                let row = b + col * ldb
                for p in 0..<k { packed[p * n + col] = row[p] }
            }
            gemm(transA: transA, transB: false, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                 b: packed, ldb: n, beta: beta, c: c, ldc: ldc)
            return
        }
        let kernels = CPUKernels.table
        let partial = transA ? UnsafeMutablePointer<Float>.allocate(capacity: m * 16) : nil   // the TN kernel's m×16 sums
        defer { partial?.deallocate() }
        for panel in stride(from: 0, to: n, by: 16) {
            if let partial {
                kernels.skinny_panel_tn(Int32(m), Int32(k), alpha, a, lda, b + panel, ldb, beta, c + panel, ldc, partial)
            } else {
                kernels.skinny_panel_nn(Int32(m), Int32(k), alpha, a, lda, b + panel, ldb, beta, c + panel, ldc)
            }
        }
    }
}
