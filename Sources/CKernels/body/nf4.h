// NF4 dequantisation of whole blocks: code[index]·absmax, two 4-bit indices a byte, the first
// (even position) in the high nibble. The 16 code points are looked up with a permute: one
// 16-entry permute per 16 values with AVX-512, two 8-entry permutes and a blend per 8 with AVX2.

/// `blocks` blocks of `block_size` values (a multiple of PK_W) from `packed` (block_size / 2 bytes
/// each) and one absmax per block, into out.
static void PK_FN(nf4_dequantize)(const uint8_t *packed, const float *absmax, int blocks, int block_size,
                                  const float *codebook, float *out) {
#if PK_W == 16
    __m512 table;
    memcpy(&table, codebook, 64);
    for (int blk = 0; blk < blocks; blk++) {
        const __m512 a = _mm512_set1_ps(absmax[blk]);
        for (int g = 0; g < block_size; g += 16) {
            __m128i bytes = _mm_loadl_epi64((const __m128i *)(packed + (g >> 1)));
            // [b0 >> 4, b0 & 15, b1 >> 4, …]: interleave the high and low nibbles of 8 bytes
            const __m128i hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), _mm_set1_epi8(15)), lo = _mm_and_si128(bytes, _mm_set1_epi8(15));
            const __m512i idx = _mm512_cvtepu8_epi32(_mm_unpacklo_epi8(hi, lo));
            _mm512_storeu_ps(out + g, _mm512_mul_ps(_mm512_permutexvar_ps(idx, table), a));
        }
        packed += block_size / 2;
        out += block_size;
    }
#else
    __m256 low, high;   // code points 0–7 and 8–15
    memcpy(&low, codebook, 32);
    memcpy(&high, codebook + 8, 32);
    for (int blk = 0; blk < blocks; blk++) {
        const __m256 a = _mm256_set1_ps(absmax[blk]);
        for (int g = 0; g < block_size; g += 8) {
            uint32_t four;
            memcpy(&four, packed + (g >> 1), 4);
            const __m128i bytes = _mm_cvtsi32_si128((int)four);
            const __m128i hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), _mm_set1_epi8(15)), lo = _mm_and_si128(bytes, _mm_set1_epi8(15));
            const __m256i idx = _mm256_cvtepu8_epi32(_mm_unpacklo_epi8(hi, lo));
            // vpermps reads the low 3 bits; bit 3 (moved to the sign bit) picks the upper table.
            const __m256 v = _mm256_blendv_ps(_mm256_permutevar8x32_ps(low, idx), _mm256_permutevar8x32_ps(high, idx),
                                              _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
            _mm256_storeu_ps(out + g, _mm256_mul_ps(v, a));
        }
        packed += block_size / 2;
        out += block_size;
    }
#endif
}
