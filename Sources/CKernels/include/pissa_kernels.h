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
} pk_kernels;

/// Bit `level` is set for every level this CPU and OS support.
unsigned pk_supported_levels(void);

/// The kernels of `level`, or NULL when this CPU cannot run them.
const pk_kernels *pk_kernels_for(pk_level level);

/// "avx2" and "avx512" tables, defined by the two compiled copies of the kernels.
extern const pk_kernels pk_kernels_avx2;
extern const pk_kernels pk_kernels_avx512;

#ifdef __cplusplus
}
#endif

/// A spin-wait hint (x86 `pause`), for threads polling a flag.
static inline void pk_pause(void) { __builtin_ia32_pause(); }
