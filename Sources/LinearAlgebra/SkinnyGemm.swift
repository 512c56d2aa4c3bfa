/// Products with a narrow right-hand side, `C (m×n) ← alpha · op(A) · op(B) + beta · C` with n = 16
/// or 32 (the rank of an adapter or a randomized-SVD sketch), on the calling thread.
///
/// OpenBLAS packs the whole of `A` for every such call, which for n = 16 costs as much as the
/// product (PLATFORM.md measures ≈ 60 GFLOP/s on one thread). These kernels stream `A` once in
/// place: a block of 6 rows of op(A) × 16 columns of C lives in 12 AVX registers, each A element
/// is broadcast once and each 16-wide row of op(B) loaded once per 6 rows (≈ 100 GFLOP/s for
/// op(A) = A, 75–90 for op(A) = Aᵀ, one core, on SmolLM2's shapes). `BLAS.gemm` sends suitable
/// single-threaded calls here; nothing else calls it.
enum SkinnyGemm {
    typealias V = SIMD8<Float>

    /// Whether `BLAS.gemm` should use these kernels for this call. From n = 64 on (attention's
    /// P·V with 64-wide heads) OpenBLAS's packing pays for itself and it is faster again.
    @inline(__always)
    static func applies(n: Int, m: Int, k: Int) -> Bool {
        n % 16 == 0 && n <= 32 && m >= 6 && k >= 16
    }

    static func gemm(
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
        for panel in stride(from: 0, to: n, by: 16) {
            panelProduct(transA: transA, m: m, k: k, alpha: alpha, a: a, lda: lda,
                         b: b + panel, ldb: ldb, beta: beta, c: c + panel, ldc: ldc)
        }
    }

    /// One 16-column panel of C.
    @inline(__always)
    private static func panelProduct(
        transA: Bool, m: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        // Element (i, p) of op(A): A[i·lda + p], or A[p·lda + i] when transposed.
        let rowStep = transA ? 1 : lda, depthStep = transA ? lda : 1
        var i = 0
        while i + 6 <= m {
            var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V()
            var c30 = V(), c31 = V(), c40 = V(), c41 = V(), c50 = V(), c51 = V()
            var bp = b
            if transA {
                var ap = a + i * rowStep
                // The 6 elements of a row of A are adjacent.
                for _ in 0..<k {
                    let b0 = load(bp), b1 = load(bp + 8)
                    var s = V(repeating: ap[0]); c00.addProduct(s, b0); c01.addProduct(s, b1)
                    s = V(repeating: ap[1]); c10.addProduct(s, b0); c11.addProduct(s, b1)
                    s = V(repeating: ap[2]); c20.addProduct(s, b0); c21.addProduct(s, b1)
                    s = V(repeating: ap[3]); c30.addProduct(s, b0); c31.addProduct(s, b1)
                    s = V(repeating: ap[4]); c40.addProduct(s, b0); c41.addProduct(s, b1)
                    s = V(repeating: ap[5]); c50.addProduct(s, b0); c51.addProduct(s, b1)
                    ap += depthStep; bp += ldb
                }
            } else {
                // Six rows of A streamed side by side.
                let a0 = a + i * lda, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda, a4 = a3 + lda, a5 = a4 + lda
                for p in 0..<k {
                    let b0 = load(bp), b1 = load(bp + 8)
                    var s = V(repeating: a0[p]); c00.addProduct(s, b0); c01.addProduct(s, b1)
                    s = V(repeating: a1[p]); c10.addProduct(s, b0); c11.addProduct(s, b1)
                    s = V(repeating: a2[p]); c20.addProduct(s, b0); c21.addProduct(s, b1)
                    s = V(repeating: a3[p]); c30.addProduct(s, b0); c31.addProduct(s, b1)
                    s = V(repeating: a4[p]); c40.addProduct(s, b0); c41.addProduct(s, b1)
                    s = V(repeating: a5[p]); c50.addProduct(s, b0); c51.addProduct(s, b1)
                    bp += ldb
                }
            }
            let cp = c + i * ldc
            store(cp, c00, c01, alpha: alpha, beta: beta)
            store(cp + ldc, c10, c11, alpha: alpha, beta: beta)
            store(cp + 2 * ldc, c20, c21, alpha: alpha, beta: beta)
            store(cp + 3 * ldc, c30, c31, alpha: alpha, beta: beta)
            store(cp + 4 * ldc, c40, c41, alpha: alpha, beta: beta)
            store(cp + 5 * ldc, c50, c51, alpha: alpha, beta: beta)
            i += 6
        }
        while i < m {
            var c00 = V(), c01 = V()
            var ap = a + i * rowStep, bp = b
            for _ in 0..<k {
                let s = V(repeating: ap[0])
                c00.addProduct(s, load(bp)); c01.addProduct(s, load(bp + 8))
                ap += depthStep; bp += ldb
            }
            store(c + i * ldc, c00, c01, alpha: alpha, beta: beta)
            i += 1
        }
    }

    @inline(__always)
    private static func load(_ p: UnsafePointer<Float>) -> V {
        UnsafeRawPointer(p).loadUnaligned(as: V.self)
    }

    /// C[0..<16] ← alpha · (lo, hi) + beta · C[0..<16]; C is not read when beta = 0 (BLAS semantics).
    @inline(__always)
    private static func store(_ p: UnsafeMutablePointer<Float>, _ lo: V, _ hi: V, alpha: Float, beta: Float) {
        var lo = lo, hi = hi
        if alpha != 1 { lo *= alpha; hi *= alpha }
        if beta != 0 {
            lo.addProduct(V(repeating: beta), load(p))
            hi.addProduct(V(repeating: beta), load(p + 8))
        }
        UnsafeMutableRawPointer(p).storeBytes(of: lo, as: V.self)
        UnsafeMutableRawPointer(p + 8).storeBytes(of: hi, as: V.self)
    }
}
