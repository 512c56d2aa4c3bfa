#pragma once
// pissa's own hot kernels, compiled twice from one source (Sources/CKernels/body/): once for
// x86-64-v3 (AVX2 + FMA, 8 floats per vector; target CKernelsAVX2) and once for x86-64-v4
// (AVX-512 F/BW/DQ/VL, 16 floats per vector; target CKernelsAVX512). `pk_kernels_for` hands out
// the table of a level this CPU supports (cpuid and the OS's saved register state), so one
// binary runs the AVX-512 code where it can and the AVX2 code elsewhere.
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Kernel levels, lowest first.
typedef enum pk_level { PK_LEVEL_AVX2 = 0, PK_LEVEL_AVX512 = 1, PK_LEVEL_COUNT = 2 } pk_level;

/// ggml block formats the quantised products read (values per block, bytes per block):
/// Q4_0 (32, 18), Q4_1 (32, 20), Q5_0 (32, 22), Q8_0 (32, 34), Q4_K (256, 144), Q6_K (256, 210).
typedef enum pk_block_format {
    PK_Q4_0 = 0, PK_Q4_1 = 1, PK_Q5_0 = 2, PK_Q8_0 = 3, PK_Q4_K = 4, PK_Q6_K = 5, PK_BLOCK_FORMAT_COUNT = 6
} pk_block_format;

typedef struct pk_kernels {
    /// "avx2" or "avx512".
    const char *name;

    /// y[r·ldy + o] = beta·y[r·ldy + o] + Σ_i W[o, i]·x[r·ldx + i] for weight rows o < rows and
    /// x rows r < n. W is `rows` rows of `row_bytes` bytes of `format` blocks, `cols` values
    /// each (a multiple of the block size).
    void (*block_dot)(int format, const uint8_t *w, size_t row_bytes, int rows, int cols,
                      const float *x, int n, size_t ldx, float *y, size_t ldy, float beta);

    /// RMSNorm over rows (x, y: rows × cols; y may alias x): y = x·r ⊙ w, r = 1/√(mean(x²) + eps),
    /// r saved in rstd[row] unless rstd is NULL.
    void (*rmsnorm_forward)(const float *x, const float *w, float *y, float *rstd, int rows, int cols, float eps);
    /// dx (+)= r·(w⊙dy) − x·(r³/C)·Σ(x⊙w⊙dy) per row (accumulate: add to dx, else overwrite).
    void (*rmsnorm_backward)(const float *dy, const float *x, const float *w, const float *rstd, float *dx,
                             int rows, int cols, int accumulate);
    /// dw[i] += Σ_row dy[row, i]·x[row, i]·rstd[row].
    void (*rmsnorm_backward_weight)(const float *dy, const float *x, const float *rstd, float *dw, int rows, int cols);

    /// h = silu(g)·u over count values (h may alias g or u).
    void (*swiglu_forward)(const float *g, const float *u, float *h, size_t count);
    /// dg = dh·u·σ(g)·(1 + g·(1 − σ(g))), du = dh·silu(g).
    void (*swiglu_backward)(const float *dh, const float *g, const float *u, float *dg, float *du, size_t count);
    /// h = gelu_tanh(g)·u over count values (h may alias g or u): PyTorch's tanh approximation.
    void (*geglu_forward)(const float *g, const float *u, float *h, size_t count);
    /// dg = dh·u·gelu_tanh′(g), du = dh·gelu_tanh(g).
    void (*geglu_backward)(const float *dh, const float *g, const float *u, float *dg, float *du, size_t count);

    /// Rotates `heads` heads of head_dim of each row in place (half-split pairs i, i + head_dim/2)
    /// by the angles of row n's position: tables (positions, head_dim/2); inverse rotates back.
    void (*rotary)(float *x, int rows, int heads, int head_dim, const int32_t *positions,
                   const float *cos_table, const float *sin_table, int inverse);

    /// x ← scale·softmax(x) over n values; *max_out, *sum_out = the max and Σ e^(x − max).
    void (*softmax_row)(float *x, int n, float scale, float *max_out, float *sum_out);
    /// dp ← scale·p⊙(dp − Σ p⊙dp) over n values (attention's softmax backward).
    void (*softmax_backward_row)(const float *p, float *dp, int n, float scale);
    /// One tile of an online log-sum-exp: with *m the max and *s = Σ e^(v − *m) of the earlier
    /// tiles, x ← e^(x − m′), m′ = max(*m, max x), *s ← *s·e^(*m − m′) + Σ e^(x − m′), *m ← m′;
    /// returns e^(old *m − m′) (1 when the max did not grow).
    float (*online_softmax_tile)(float *x, int n, float *m, float *s);

    /// One 16-column panel: C (m×16, ldc) ← alpha·A·B + beta·C, A m×k (lda), B k×16 (ldb).
    void (*skinny_panel_nn)(int m, int k, float alpha, const float *a, size_t lda, const float *b, size_t ldb,
                            float beta, float *c, size_t ldc);
    /// One 16-column panel: C (m×16) ← alpha·Aᵀ·B + beta·C, A k×m (lda); partial: m×16 scratch.
    void (*skinny_panel_tn)(int m, int k, float alpha, const float *a, size_t lda, const float *b, size_t ldb,
                            float beta, float *c, size_t ldc, float *partial);

    /// NF4: `blocks` whole blocks of block_size values (a multiple of 16) from packed bytes (first
    /// value in the high nibble) and one absmax each, code points `codebook` (16 floats), into out.
    void (*nf4_dequantize)(const uint8_t *packed, const float *absmax, int blocks, int block_size,
                           const float *codebook, float *out);
} pk_kernels;

/// Bit `level` is set for every level this CPU and OS support.
unsigned pk_supported_levels(void);

/// The kernels of `level`, or NULL when this CPU cannot run them. The AVX-512 level keeps the
/// AVX2 copy of the kernels measured no faster in their AVX-512 copy (dispatch.c).
const pk_kernels *pk_kernels_for(pk_level level);

/// Every kernel of `level` as compiled for it (for `pissa bench kernels`), or NULL.
const pk_kernels *pk_kernels_compiled(pk_level level);

/// "avx2" and "avx512" tables, defined by the two compiled copies of the kernels.
extern const pk_kernels pk_kernels_avx2;
extern const pk_kernels pk_kernels_avx512;

#ifdef __cplusplus
}
#endif

/// A spin-wait hint (x86 `pause`), for threads polling a flag.
static inline void pk_pause(void) { __builtin_ia32_pause(); }
