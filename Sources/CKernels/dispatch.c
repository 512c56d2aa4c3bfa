#include "pissa_kernels.h"
#include <cpuid.h>
#include <pthread.h>

// XCR0 through xgetbv: which register states the OS saves on a context switch.
static uint64_t xcr0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

unsigned pk_supported_levels(void) {
    unsigned a, b, c, d, levels = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    const int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, f16c = (c >> 29) & 1;
    if (!osxsave) return 0;
    const uint64_t xcr = xcr0();
    if ((xcr & 0x6) != 0x6) return 0;   // SSE and AVX (YMM) state
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    const int avx2 = (b >> 5) & 1, bmi2 = (b >> 8) & 1;
    const int avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1, avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1;
    if (avx2 && fma && f16c && bmi2) levels |= 1u << PK_LEVEL_AVX2;
    // x86-64-v4: AVX-512 F/BW/DQ/VL with opmask, ZMM_Hi256 and Hi16_ZMM state.
    if ((levels & 1u) && avx512f && avx512dq && avx512bw && avx512vl && (xcr & 0xE0) == 0xE0)
        levels |= 1u << PK_LEVEL_AVX512;
    return levels;
}

/// The AVX-512 level's table: the x86-64-v4 kernels, except those that `pissa bench kernels`
/// measured no faster than their AVX2 copy (BENCHMARKS.md, AVX-512 Zen 4): those stay AVX2.
/// Zen 4 runs 512-bit FMAs as two 256-bit halves, so a kernel bound by its multiply-adds (the
/// narrow product A·B) gains nothing, and the rotary's 32-wide halves fill only two vectors.
static pk_kernels avx512_table;
static pthread_once_t avx512_once = PTHREAD_ONCE_INIT;

static void make_avx512_table(void) {
    avx512_table = pk_kernels_avx512;
    avx512_table.skinny_panel_nn = pk_kernels_avx2.skinny_panel_nn;
    avx512_table.rotary = pk_kernels_avx2.rotary;
}

const pk_kernels *pk_kernels_for(pk_level level) {
    if (level < 0 || level >= PK_LEVEL_COUNT || !(pk_supported_levels() & (1u << level))) return NULL;
    if (level == PK_LEVEL_AVX2) return &pk_kernels_avx2;
    pthread_once(&avx512_once, make_avx512_table);
    return &avx512_table;
}

const pk_kernels *pk_kernels_compiled(pk_level level) {
    if (level < 0 || level >= PK_LEVEL_COUNT || !(pk_supported_levels() & (1u << level))) return NULL;
    return level == PK_LEVEL_AVX512 ? &pk_kernels_avx512 : &pk_kernels_avx2;
}
