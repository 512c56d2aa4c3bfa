// Vector types and helpers over PK_W floats (8: AVX2, 16: AVX-512), with clang's vector
// extensions: the same source compiles to ymm or zmm code depending on PK_W and the target's -march.
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define PK_CAT2(a, b) a##_##b
#define PK_CAT(a, b) PK_CAT2(a, b)
/// The name of a kernel in this copy: `PK_FN(rmsnorm)` is `rmsnorm_avx2` or `rmsnorm_avx512`.
#define PK_FN(name) PK_CAT(name, PK_SUFFIX)
#define PK_STR2(x) #x
#define PK_STR(x) PK_STR2(x)
#define PK_INLINE static inline __attribute__((always_inline))

typedef float vf __attribute__((vector_size(PK_W * 4), aligned(4)));
typedef int32_t vi __attribute__((vector_size(PK_W * 4), aligned(4)));
typedef uint32_t vu __attribute__((vector_size(PK_W * 4), aligned(4)));
typedef uint8_t vb __attribute__((vector_size(PK_W), aligned(1)));
typedef int8_t vsb __attribute__((vector_size(PK_W), aligned(1)));

#if PK_W == 8
static const vu pk_lane = {0, 1, 2, 3, 4, 5, 6, 7};
#else
static const vu pk_lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
#endif

PK_INLINE vf ld(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
PK_INLINE void st(float *p, vf v) { memcpy(p, &v, sizeof v); }
PK_INLINE vb ldb(const uint8_t *p) { vb v; memcpy(&v, p, sizeof v); return v; }
PK_INLINE vsb ldsb(const uint8_t *p) { vsb v; memcpy(&v, p, sizeof v); return v; }
PK_INLINE vf splat(float s) { return (vf){0} + s; }
PK_INLINE vf fmav(vf a, vf b, vf c) { return __builtin_elementwise_fma(a, b, c); }
PK_INLINE vf u8f(vb q) { return __builtin_convertvector(__builtin_convertvector(q, vi), vf); }
PK_INLINE vf s8f(vsb q) { return __builtin_convertvector(__builtin_convertvector(q, vi), vf); }

PK_INLINE float hsum(vf v) {
#if PK_W == 16
    typedef float v8 __attribute__((vector_size(32)));
    v8 h = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) + __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
#else
    vf h = v;
#endif
    typedef float v4 __attribute__((vector_size(16)));
    v4 q = __builtin_shufflevector(h, h, 0, 1, 2, 3) + __builtin_shufflevector(h, h, 4, 5, 6, 7);
    return (q[0] + q[2]) + (q[1] + q[3]);
}

/// IEEE half (little-endian at p) to float (F16C).
PK_INLINE float half_at(const uint8_t *p) { uint16_t h; memcpy(&h, p, 2); return _cvtsh_ss(h); }
