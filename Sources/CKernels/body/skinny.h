// Products with a narrow right-hand side, one 16-column panel of C at a time:
// C (m×16, ldc) ← alpha·op(A)·B + beta·C with B k×16 (ldb). A is streamed in place (OpenBLAS
// would pack all of it for a 16-wide B): a block of PK_SR rows of op(A) × 16 columns of C lives
// in registers (12 of them: 6 rows × 2 ymm, or 12 rows × 1 zmm), each A element is broadcast
// once and each 16-wide row of B loaded once per block.

#define PK_SV (16 / PK_W)         /* vectors per 16-wide row */
#define PK_SR (PK_W == 8 ? 6 : 12) /* rows per register block */

/// C[0..<16] ← alpha·acc + beta·C (C not read when beta = 0, as BLAS).
PK_INLINE void skinny_store(float *c, const vf *acc, float alpha, float beta) {
    for (int v = 0; v < PK_SV; v++) {
        vf r = acc[v];
        if (alpha != 1) r *= alpha;
        if (beta != 0) r = fmav(splat(beta), ld(c + v * PK_W), r);
        st(c + v * PK_W, r);
    }
}

/// op(A) = A (m×k, lda): R rows of A side by side over the whole depth.
PK_INLINE void skinny_nn_rows(int R, int k, const float *a, size_t lda, const float *b, size_t ldb, vf acc[PK_SR][PK_SV]) {
    for (int r = 0; r < R; r++)
        for (int v = 0; v < PK_SV; v++) acc[r][v] = (vf){0};
    for (int p = 0; p < k; p++) {
        vf bv[PK_SV];
        for (int v = 0; v < PK_SV; v++) bv[v] = ld(b + (size_t)p * ldb + v * PK_W);
        for (int r = 0; r < R; r++) {
            const vf s = splat(a[r * lda + p]);
            for (int v = 0; v < PK_SV; v++) acc[r][v] = fmav(s, bv[v], acc[r][v]);
        }
    }
}

static void PK_FN(skinny_panel_nn)(int m, int k, float alpha, const float *a, size_t lda, const float *b, size_t ldb,
                                   float beta, float *c, size_t ldc) {
    vf acc[PK_SR][PK_SV];
    int i = 0;
    for (; i + PK_SR <= m; i += PK_SR) {
        skinny_nn_rows(PK_SR, k, a + (size_t)i * lda, lda, b, ldb, acc);
        for (int r = 0; r < PK_SR; r++) skinny_store(c + (size_t)(i + r) * ldc, acc[r], alpha, beta);
    }
    for (; i < m; i++) {
        skinny_nn_rows(1, k, a + (size_t)i * lda, lda, b, ldb, acc);
        skinny_store(c + (size_t)i * ldc, acc[0], alpha, beta);
    }
}

/// Rows of A per depth block of the transposed kernel: each step down the depth moves a row of A
/// (often more than a 4 KB page); 32 rows keep a block's pages in the L1 TLB and its cache lines
/// in L1 while the next columns reuse them.
#define PK_DEPTH_BLOCK 32

/// op(A) = Aᵀ (A is k×m, lda): R adjacent columns of A per block of C, the depth in blocks of
/// PK_DEPTH_BLOCK rows, partial sums kept in `partial` (m×16), then one pass into C.
PK_INLINE void skinny_tn_rows(int R, int depth, int first, const float *a, size_t lda, const float *b, size_t ldb, float *cp) {
    vf acc[PK_SR][PK_SV];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < PK_SV; v++) acc[r][v] = first ? (vf){0} : ld(cp + r * 16 + v * PK_W);
    for (int p = 0; p < depth; p++) {
        vf bv[PK_SV];
        for (int v = 0; v < PK_SV; v++) bv[v] = ld(b + (size_t)p * ldb + v * PK_W);
        for (int r = 0; r < R; r++) {
            const vf s = splat(a[(size_t)p * lda + r]);
            for (int v = 0; v < PK_SV; v++) acc[r][v] = fmav(s, bv[v], acc[r][v]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int v = 0; v < PK_SV; v++) st(cp + r * 16 + v * PK_W, acc[r][v]);
}

static void PK_FN(skinny_panel_tn)(int m, int k, float alpha, const float *a, size_t lda, const float *b, size_t ldb,
                                   float beta, float *c, size_t ldc, float *partial) {
    for (int p0 = 0; p0 < k; p0 += PK_DEPTH_BLOCK) {
        const int depth = k - p0 < PK_DEPTH_BLOCK ? k - p0 : PK_DEPTH_BLOCK, first = p0 == 0;
        const float *ap = a + (size_t)p0 * lda, *bp = b + (size_t)p0 * ldb;
        int i = 0;
        for (; i + PK_SR <= m; i += PK_SR) skinny_tn_rows(PK_SR, depth, first, ap + i, lda, bp, ldb, partial + i * 16);
        for (; i < m; i++) skinny_tn_rows(1, depth, first, ap + i, lda, bp, ldb, partial + i * 16);
    }
    for (int i = 0; i < m; i++) {
        vf acc[PK_SV];
        for (int v = 0; v < PK_SV; v++) acc[v] = ld(partial + i * 16 + v * PK_W);
        skinny_store(c + (size_t)i * ldc, acc, alpha, beta);
    }
}
