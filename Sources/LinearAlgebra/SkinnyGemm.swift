/// Products with a narrow right-hand side, `C (m×n) ← alpha · op(A) · op(B) + beta · C` with n = 16
/// or 32 (the rank of an adapter or a randomized-SVD sketch), on the calling thread.
///
/// OpenBLAS packs the whole of `A` for every such call, which for n = 16 costs about as much as
/// the product. These kernels stream `A` once in place: a block of 6 rows of op(A) × 16 columns of
/// C lives in 12 AVX registers, each A element is broadcast once and each 16-wide row of op(B)
/// loaded once per 6 rows. `pissa bench narrow` (BENCHMARKS.md) on SmolLM2's shapes, one core:
/// ≈ 104 GFLOP/s for op(A) = A and 90–97 for Aᵀ, against OpenBLAS's 57–70. `BLAS.gemm` sends suitable
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
        if transA {
            panelTN(m: m, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        } else {
            panelNN(m: m, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        }
    }

    /// op(A) = A: six rows of A streamed side by side, the whole depth at once.
    private static func panelNN(
        m: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        var i = 0
        while i + 6 <= m {
            var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V()
            var c30 = V(), c31 = V(), c40 = V(), c41 = V(), c50 = V(), c51 = V()
            let a0 = a + i * lda, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda, a4 = a3 + lda, a5 = a4 + lda
            var bp = b
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
            let cp = c + i * ldc
            store(cp, c00, c01, alpha: alpha, beta: beta)
            store(cp + ldc, c10, c11, alpha: alpha, beta: beta)
            store(cp + 2 * ldc, c20, c21, alpha: alpha, beta: beta)
            store(cp + 3 * ldc, c30, c31, alpha: alpha, beta: beta)
            store(cp + 4 * ldc, c40, c41, alpha: alpha, beta: beta)
            store(cp + 5 * ldc, c50, c51, alpha: alpha, beta: beta)
            i += 6
        }
        for row in i..<m {
            var c00 = V(), c01 = V()
            var ap = a + row * lda, bp = b
            for _ in 0..<k {
                let s = V(repeating: ap.pointee)
                c00.addProduct(s, load(bp)); c01.addProduct(s, load(bp + 8))
                ap += 1; bp += ldb
            }
            store(c + row * ldc, c00, c01, alpha: alpha, beta: beta)
        }
    }

    /// Rows of A per depth block of the transposed kernel. Each step down the depth moves a row
    /// of A (often more than a 4 KB page); 32 rows keep a block's pages in the L1 TLB and its
    /// cache lines in L1 while the next six columns reuse them (≈ 60 → 90 GFLOP/s on 576×1536).
    static let depthBlock = 32

    /// op(A) = Aᵀ (A is k×m): six adjacent columns of A per block of C, the depth in blocks of
    /// `depthBlock` rows with the partial sums kept in a m×16 buffer, then one epilogue into C.
    private static func panelTN(
        m: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        let partial = UnsafeMutablePointer<Float>.allocate(capacity: m * 16)
        defer { partial.deallocate() }
        for p0 in stride(from: 0, to: k, by: depthBlock) {
            let depth = min(depthBlock, k - p0), first = p0 == 0
            var i = 0
            while i + 6 <= m {
                let cp = partial + i * 16
                var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V()
                var c30 = V(), c31 = V(), c40 = V(), c41 = V(), c50 = V(), c51 = V()
                if !first {
                    c00 = load(cp); c01 = load(cp + 8); c10 = load(cp + 16); c11 = load(cp + 24)
                    c20 = load(cp + 32); c21 = load(cp + 40); c30 = load(cp + 48); c31 = load(cp + 56)
                    c40 = load(cp + 64); c41 = load(cp + 72); c50 = load(cp + 80); c51 = load(cp + 88)
                }
                var ap = a + p0 * lda + i, bp = b + p0 * ldb
                for _ in 0..<depth {
                    let b0 = load(bp), b1 = load(bp + 8)
                    var s = V(repeating: ap[0]); c00.addProduct(s, b0); c01.addProduct(s, b1)
                    s = V(repeating: ap[1]); c10.addProduct(s, b0); c11.addProduct(s, b1)
                    s = V(repeating: ap[2]); c20.addProduct(s, b0); c21.addProduct(s, b1)
                    s = V(repeating: ap[3]); c30.addProduct(s, b0); c31.addProduct(s, b1)
                    s = V(repeating: ap[4]); c40.addProduct(s, b0); c41.addProduct(s, b1)
                    s = V(repeating: ap[5]); c50.addProduct(s, b0); c51.addProduct(s, b1)
                    ap += lda; bp += ldb
                }
                store(cp, c00, c01); store(cp + 16, c10, c11); store(cp + 32, c20, c21)
                store(cp + 48, c30, c31); store(cp + 64, c40, c41); store(cp + 80, c50, c51)
                i += 6
            }
            for row in i..<m {
                let cp = partial + row * 16
                var c00 = first ? V() : load(cp), c01 = first ? V() : load(cp + 8)
                var ap = a + p0 * lda + row, bp = b + p0 * ldb
                for _ in 0..<depth {
                    let s = V(repeating: ap.pointee)
                    c00.addProduct(s, load(bp)); c01.addProduct(s, load(bp + 8))
                    ap += lda; bp += ldb
                }
                store(cp, c00, c01)
            }
        }
        for row in 0..<m {
            store(c + row * ldc, load(partial + row * 16), load(partial + row * 16 + 8), alpha: alpha, beta: beta)
        }
    }

    @inline(__always)
    private static func load(_ p: UnsafePointer<Float>) -> V {
        UnsafeRawPointer(p).loadUnaligned(as: V.self)
    }

    @inline(__always)
    private static func store(_ p: UnsafeMutablePointer<Float>, _ lo: V, _ hi: V) {
        UnsafeMutableRawPointer(p).storeBytes(of: lo, as: V.self)
        UnsafeMutableRawPointer(p + 8).storeBytes(of: hi, as: V.self)
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
