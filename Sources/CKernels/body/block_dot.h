// Products with ggml-quantised weights, read block by block without a float32 copy of W
// (decoding: a few rows of x against every weight row). Each 32 values of a weight row are
// decoded into registers (`decode32`, the values GGMLDequantizer.swift computes) and multiplied
// into up to four rows of x at once, so each block is read and decoded once per four x rows.

#define PK_NV (32 / PK_W)   /* vectors per 32 values */

/// ggml's get_scale_min_k4: the 6-bit scale and min of sub-block j (0..<8) of a Q4_K block.
PK_INLINE void scale_min_k4(int j, const uint8_t *s, int *scale, int *min) {
    if (j < 4) {
        *scale = s[j] & 63;
        *min = s[j + 4] & 63;
    } else {
        *scale = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
        *min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

#if PK_W == 16
static const vf pk_iota = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

/// AVX-512: the 32 values of 16 bytes of 4-bit codes (value j: low nibble of byte j, j + 16: its
/// high nibble) looked up in the 16 dequantised levels `table` (vpermps reads an index's low
/// four bits, so the low nibble needs no mask): one permute per 16 values instead of a
/// conversion and a multiply-add.
PK_INLINE void nibbles_from_table(const uint8_t *q, vf table, vf *w) {
    __m128i bytes;
    memcpy(&bytes, q, 16);
    const __m512i idx = _mm512_cvtepu8_epi32(bytes);
    w[0] = (vf)_mm512_permutexvar_ps(idx, (__m512)table);
    w[1] = (vf)_mm512_permutexvar_ps(_mm512_srli_epi32(idx, 4), (__m512)table);
}
#endif

/// Values 32·g ..< 32·g + 32 of a weight row of `format` blocks, as PK_NV vectors.
PK_INLINE void decode32(int format, const uint8_t *row, int g, vf *w) {
    switch (format) {
#if PK_W == 16
    case PK_Q4_0: {
        const uint8_t *b = row + 18 * g;
        nibbles_from_table(b + 2, (pk_iota - 8) * half_at(b), w);
        break;
    }
    case PK_Q4_1: {
        const uint8_t *b = row + 20 * g;
        nibbles_from_table(b + 4, pk_iota * half_at(b) + half_at(b + 2), w);
        break;
    }
    case PK_Q4_K: {
        const uint8_t *b = row + 144 * (g / 8);
        const int s = g % 8;
        int sc, mn;
        scale_min_k4(s, b + 4, &sc, &mn);
        const vf table = pk_iota * (half_at(b) * (float)sc) - half_at(b + 2) * (float)mn;
        __m256i bytes;   // 32 bytes shared by sub-blocks 2k (low nibbles) and 2k + 1 (high nibbles)
        memcpy(&bytes, b + 16 + 32 * (s / 2), 32);
        __m512i lo = _mm512_cvtepu8_epi32(_mm256_castsi256_si128(bytes)), hi = _mm512_cvtepu8_epi32(_mm256_extracti128_si256(bytes, 1));
        if (s & 1) { lo = _mm512_srli_epi32(lo, 4); hi = _mm512_srli_epi32(hi, 4); }
        w[0] = (vf)_mm512_permutexvar_ps(lo, (__m512)table);
        w[1] = (vf)_mm512_permutexvar_ps(hi, (__m512)table);
        break;
    }
#else
    case PK_Q4_0: {   // d, 16 bytes: value j low nibble of byte j, j + 16 its high nibble; (q − 8)·d
        const uint8_t *b = row + 18 * g;
        const vf d = splat(half_at(b));
        for (int c = 0; c < 16 / PK_W; c++) {
            const vb q = ldb(b + 2 + c * PK_W);
            w[c] = (u8f(q & 15) - 8) * d;
            w[16 / PK_W + c] = (u8f(q >> 4) - 8) * d;
        }
        break;
    }
    case PK_Q4_1: {   // d, m, nibbles as Q4_0; q·d + m
        const uint8_t *b = row + 20 * g;
        const vf d = splat(half_at(b)), m = splat(half_at(b + 2));
        for (int c = 0; c < 16 / PK_W; c++) {
            const vb q = ldb(b + 4 + c * PK_W);
            w[c] = u8f(q & 15) * d + m;
            w[16 / PK_W + c] = u8f(q >> 4) * d + m;
        }
        break;
    }
    case PK_Q4_K: {   // 256 values: d, dmin, 12 bytes of scales/mins, 128 bytes; (d·sc)·q − dmin·m per 32
        const uint8_t *b = row + 144 * (g / 8);
        const int s = g % 8;
        int sc, mn;
        scale_min_k4(s, b + 4, &sc, &mn);
        const vf d = splat(half_at(b) * (float)sc), m = splat(half_at(b + 2) * (float)mn);
        const uint8_t *q = b + 16 + 32 * (s / 2);   // sub-blocks 2k and 2k + 1 share 32 bytes
        for (int c = 0; c < PK_NV; c++) {
            const vb bytes = ldb(q + c * PK_W);
            w[c] = d * u8f((s & 1) ? bytes >> 4 : bytes & 15) - m;
        }
        break;
    }
#endif
    case PK_Q5_0: {   // d, 32 high bits (bit j for value j), nibbles; (q − 16)·d
        const uint8_t *b = row + 22 * g;
        const vf d = splat(half_at(b));
        uint32_t qh;
        memcpy(&qh, b + 2, 4);
        const vu bits = (vu){0} + qh;
        for (int c = 0; c < 16 / PK_W; c++) {
            const vb q = ldb(b + 6 + c * PK_W);
            const vu lo = __builtin_convertvector(q & 15, vu) | (((bits >> (pk_lane + c * PK_W)) & 1) << 4);
            const vu hi = __builtin_convertvector(q >> 4, vu) | (((bits >> (pk_lane + (16 + c * PK_W))) & 1) << 4);
            w[c] = (__builtin_convertvector((vi)lo, vf) - 16) * d;
            w[16 / PK_W + c] = (__builtin_convertvector((vi)hi, vf) - 16) * d;
        }
        break;
    }
    case PK_Q8_0: {   // d, 32 int8; q·d
        const uint8_t *b = row + 34 * g;
        const vf d = splat(half_at(b));
        for (int c = 0; c < PK_NV; c++) w[c] = s8f(ldsb(b + 2 + c * PK_W)) * d;
        break;
    }
    case PK_Q6_K: {   // 256 values: ql 128, qh 64, 16 int8 scales, d; (d·sc)·(q − 32) per 16
        const uint8_t *b = row + 210 * (g / 8);
        const int s = g % 8, half = s / 4, k = s % 4;
        const uint8_t *ql = b + 64 * half + ((k & 1) ? 32 : 0), *qh = b + 128 + 32 * half;
        const int8_t *scales = (const int8_t *)(b + 192 + 8 * half);
        const float d = half_at(b + 208);
        for (int c = 0; c < PK_NV; c++) {
            const vb low = ldb(ql + c * PK_W), high = ldb(qh + c * PK_W);
            const vb q = (k >= 2 ? low >> 4 : low & 15) | (((high >> (2 * k)) & 3) << 4);
            w[c] = (u8f(q) - 32) * splat(d * (float)scales[(c * PK_W) / 16 + 2 * k]);
        }
        break;
    }
    }
}

/// out[r] = Σ_i W_row[i]·x[r·ldx + i] for R rows of x (R ≤ 4, a constant after inlining).
PK_INLINE void block_dot_rows(int format, int R, const uint8_t *row, int groups, const float *x, size_t ldx, float *out) {
    vf acc[4][2] = {{{0}}};
    for (int g = 0; g < groups; g++) {
        vf w[PK_NV];
        decode32(format, row, g, w);
        for (int r = 0; r < R; r++) {
            const float *xr = x + r * ldx + 32 * g;
            for (int c = 0; c < PK_NV; c++) acc[r][c & 1] = fmav(w[c], ld(xr + c * PK_W), acc[r][c & 1]);
        }
    }
    for (int r = 0; r < R; r++) out[r] = hsum(acc[r][0] + acc[r][1]);
}

PK_INLINE void block_dot_format(int format, const uint8_t *w, size_t row_bytes, int rows, int cols,
                                const float *x, int n, size_t ldx, float *y, size_t ldy, float beta) {
    const int groups = cols / 32;
    for (int o = 0; o < rows; o++) {
        const uint8_t *row = w + (size_t)o * row_bytes;
        float s[4];
        int r = 0;
        for (; r + 4 <= n; r += 4) {
            block_dot_rows(format, 4, row, groups, x + r * ldx, ldx, s);
            for (int j = 0; j < 4; j++) y[(r + j) * ldy + o] = beta == 0 ? s[j] : beta * y[(r + j) * ldy + o] + s[j];
        }
        for (; r < n; r++) {
            block_dot_rows(format, 1, row, groups, x + r * ldx, ldx, s);
            y[r * ldy + o] = beta == 0 ? s[0] : beta * y[r * ldy + o] + s[0];
        }
    }
}

static void PK_FN(block_dot)(int format, const uint8_t *w, size_t row_bytes, int rows, int cols,
                             const float *x, int n, size_t ldx, float *y, size_t ldy, float beta) {
    switch (format) {
    case PK_Q4_0: block_dot_format(PK_Q4_0, w, row_bytes, rows, cols, x, n, ldx, y, ldy, beta); break;
    case PK_Q4_1: block_dot_format(PK_Q4_1, w, row_bytes, rows, cols, x, n, ldx, y, ldy, beta); break;
    case PK_Q5_0: block_dot_format(PK_Q5_0, w, row_bytes, rows, cols, x, n, ldx, y, ldy, beta); break;
    case PK_Q8_0: block_dot_format(PK_Q8_0, w, row_bytes, rows, cols, x, n, ldx, y, ldy, beta); break;
    case PK_Q4_K: block_dot_format(PK_Q4_K, w, row_bytes, rows, cols, x, n, ldx, y, ldy, beta); break;
    case PK_Q6_K: block_dot_format(PK_Q6_K, w, row_bytes, rows, cols, x, n, ldx, y, ldy, beta); break;
    }
}
