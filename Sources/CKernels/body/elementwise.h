// Element-wise kernels of the transformer layers: RMSNorm, SwiGLU, rotary embedding, softmax
// rows. Whole vectors first, then the tail one element at a time through the same vector code
// (a one-lane load), so that every element rounds alike whatever its position.

/// Loads n < PK_W floats (the rest 0) / stores the first n lanes.
PK_INLINE vf ld_part(const float *p, int n) {
    vf v = {0};
    for (int i = 0; i < n; i++) v[i] = p[i];
    return v;
}
PK_INLINE void st_part(float *p, vf v, int n) {
    for (int i = 0; i < n; i++) p[i] = v[i];
}

PK_INLINE vf vmax(vf a, vf b) { return __builtin_elementwise_max(a, b); }

PK_INLINE float hmax(vf v) {
    float m = v[0];
    for (int i = 1; i < PK_W; i++) m = m > v[i] ? m : v[i];
    return m;
}

/// e^x per lane: x = n·ln2 + r with |r| ≤ ln2/2, a degree-6 polynomial for e^r, 2^n through the
/// exponent bits. Max relative error ≈ 2e-7 on [−87, 88]; below −87 gives 0, above 88 is clamped.
/// n is rounded by adding 1.5·2²³ (it lands in the low mantissa bits): no float→int conversion.
PK_INLINE vf exp_v(vf x) {
    vf v = __builtin_elementwise_min(x, splat(88.0f));
    const vi underflow = v < -87.0f;
    v = vmax(v, splat(-87.0f));
    const vf magic = splat(12582912.0f);
    const vf shifted = v * 1.44269504f + magic;
    const vf n = shifted - magic;
    const vf r = v - n * 0.69314575f - n * 1.4286068e-6f;
    vf p = splat(1.0f / 720);
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1;
    p = p * r + 1;
    const vu bits = ((vu)shifted - 0x4B3FFF81u) << 23;   // bits(shifted) = 0x4B400000 + n: (n + 127) << 23 = 2ⁿ
    return (vf)((vi)(p * (vf)bits) & ~underflow);
}

// MARK: RMSNorm

static void PK_FN(rmsnorm_forward)(const float *x, const float *w, float *y, float *rstd, int rows, int cols, float eps) {
    for (int n = 0; n < rows; n++) {
        const float *xr = x + (size_t)n * cols;
        float *yr = y + (size_t)n * cols;
        vf acc = {0};
        int i = 0;
        for (; i + PK_W <= cols; i += PK_W) { const vf v = ld(xr + i); acc = fmav(v, v, acc); }
        if (i < cols) { const vf v = ld_part(xr + i, cols - i); acc = fmav(v, v, acc); }
        const float r = 1 / __builtin_sqrtf(hsum(acc) / cols + eps);
        if (rstd) rstd[n] = r;
        for (i = 0; i + PK_W <= cols; i += PK_W) st(yr + i, ld(xr + i) * r * ld(w + i));
        if (i < cols) st_part(yr + i, ld_part(xr + i, cols - i) * r * ld_part(w + i, cols - i), cols - i);
    }
}

/// dx (+)= r·(w⊙dy) − x·(r³/C)·Σ(x⊙w⊙dy) per row, r the saved rstd.
static void PK_FN(rmsnorm_backward)(const float *dy, const float *x, const float *w, const float *rstd, float *dx,
                                    int rows, int cols, int accumulate) {
    for (int n = 0; n < rows; n++) {
        const float *xr = x + (size_t)n * cols, *dyr = dy + (size_t)n * cols;
        float *dxr = dx + (size_t)n * cols;
        const float r = rstd[n];
        vf acc = {0};
        int i = 0, tail = cols % PK_W, full = cols - tail;
        for (; i < full; i += PK_W) acc = fmav(ld(xr + i) * ld(w + i), ld(dyr + i), acc);
        if (tail) acc = fmav(ld_part(xr + i, tail) * ld_part(w + i, tail), ld_part(dyr + i, tail), acc);
        const float c = r * r * r * hsum(acc) / cols;
        for (i = 0; i < full; i += PK_W) {
            const vf g = r * ld(w + i) * ld(dyr + i) - c * ld(xr + i);
            st(dxr + i, accumulate ? ld(dxr + i) + g : g);
        }
        if (tail) {
            const vf g = r * ld_part(w + i, tail) * ld_part(dyr + i, tail) - c * ld_part(xr + i, tail);
            st_part(dxr + i, accumulate ? ld_part(dxr + i, tail) + g : g, tail);
        }
    }
}

/// dw[i] += Σ_n dy[n, i]·x[n, i]·r[n].
static void PK_FN(rmsnorm_backward_weight)(const float *dy, const float *x, const float *rstd, float *dw, int rows, int cols) {
    for (int n = 0; n < rows; n++) {
        const float *xr = x + (size_t)n * cols, *dyr = dy + (size_t)n * cols;
        const vf r = splat(rstd[n]);
        int i = 0, tail = cols % PK_W;
        for (; i + PK_W <= cols; i += PK_W) st(dw + i, fmav(ld(dyr + i) * ld(xr + i), r, ld(dw + i)));
        if (tail) st_part(dw + i, fmav(ld_part(dyr + i, tail) * ld_part(xr + i, tail), r, ld_part(dw + i, tail)), tail);
    }
}

// MARK: SwiGLU: h = silu(g)·u, silu(g) = g·σ(g)

PK_INLINE vf swiglu_v(vf g, vf u) { return g * (1 / (1 + exp_v(-g))) * u; }

static void PK_FN(swiglu_forward)(const float *g, const float *u, float *h, size_t count) {
    size_t i = 0;
    for (; i + PK_W <= count; i += PK_W) st(h + i, swiglu_v(ld(g + i), ld(u + i)));
    const int tail = (int)(count - i);
    if (tail) st_part(h + i, swiglu_v(ld_part(g + i, tail), ld_part(u + i, tail)), tail);
}

/// dg = dh·u·σ(g)·(1 + g·(1 − σ(g))), du = dh·silu(g).
PK_INLINE void swiglu_backward_v(vf dh, vf g, vf u, vf *dg, vf *du) {
    const vf sig = 1 / (1 + exp_v(-g));
    *dg = dh * u * sig * (1 + g * (1 - sig));
    *du = dh * (g * sig);
}

static void PK_FN(swiglu_backward)(const float *dh, const float *g, const float *u, float *dg, float *du, size_t count) {
    size_t i = 0;
    vf a, b;
    for (; i + PK_W <= count; i += PK_W) {
        swiglu_backward_v(ld(dh + i), ld(g + i), ld(u + i), &a, &b);
        st(dg + i, a);
        st(du + i, b);
    }
    const int tail = (int)(count - i);
    if (tail) {
        swiglu_backward_v(ld_part(dh + i, tail), ld_part(g + i, tail), ld_part(u + i, tail), &a, &b);
        st_part(dg + i, a, tail);
        st_part(du + i, b, tail);
    }
}

// MARK: GeGLU (Gemma): h = gelu_tanh(g)·u = g·σ(z)·u, z = 2√(2/π)·(g + 0.044715·g³)
// (½(1 + tanh(t)) = σ(2t), so PyTorch's tanh form needs one exponential).

#define PK_GELU_C0 1.59576912f   /* 2·√(2/π) */
#define PK_GELU_C1 0.044715f

PK_INLINE vf geglu_v(vf g, vf u) {
    const vf z = PK_GELU_C0 * (g + PK_GELU_C1 * g * g * g);
    return g * (1 / (1 + exp_v(-z))) * u;
}

static void PK_FN(geglu_forward)(const float *g, const float *u, float *h, size_t count) {
    size_t i = 0;
    for (; i + PK_W <= count; i += PK_W) st(h + i, geglu_v(ld(g + i), ld(u + i)));
    const int tail = (int)(count - i);
    if (tail) st_part(h + i, geglu_v(ld_part(g + i, tail), ld_part(u + i, tail)), tail);
}

/// With σ = σ(z): dg = dh·u·(σ + g·σ·(1 − σ)·z′), z′ = 2√(2/π)·(1 + 3·0.044715·g²); du = dh·g·σ.
PK_INLINE void geglu_backward_v(vf dh, vf g, vf u, vf *dg, vf *du) {
    const vf z = PK_GELU_C0 * (g + PK_GELU_C1 * g * g * g), dz = PK_GELU_C0 * (1 + 3 * PK_GELU_C1 * g * g);
    const vf sig = 1 / (1 + exp_v(-z));
    *dg = dh * u * (sig + g * sig * (1 - sig) * dz);
    *du = dh * (g * sig);
}

static void PK_FN(geglu_backward)(const float *dh, const float *g, const float *u, float *dg, float *du, size_t count) {
    size_t i = 0;
    vf a, b;
    for (; i + PK_W <= count; i += PK_W) {
        geglu_backward_v(ld(dh + i), ld(g + i), ld(u + i), &a, &b);
        st(dg + i, a);
        st(du + i, b);
    }
    const int tail = (int)(count - i);
    if (tail) {
        geglu_backward_v(ld_part(dh + i, tail), ld_part(g + i, tail), ld_part(u + i, tail), &a, &b);
        st_part(dg + i, a, tail);
        st_part(du + i, b, tail);
    }
}

// MARK: Rotary embedding, half-split layout (element i pairs with i + D/2)

static void PK_FN(rotary)(float *x, int rows, int heads, int head_dim, const int32_t *positions,
                          const float *cos_table, const float *sin_table, int inverse) {
    const int half = head_dim / 2, tail = half % PK_W, full = half - tail;
    for (int n = 0; n < rows; n++) {
        const float *cp = cos_table + (size_t)positions[n] * half, *sp = sin_table + (size_t)positions[n] * half;
        for (int h = 0; h < heads; h++) {
            float *a = x + ((size_t)n * heads + h) * head_dim, *b = a + half;
            int i = 0;
            for (; i < full; i += PK_W) {
                const vf c = ld(cp + i), s = inverse ? -ld(sp + i) : ld(sp + i), x1 = ld(a + i), x2 = ld(b + i);
                st(a + i, x1 * c - x2 * s);
                st(b + i, x2 * c + x1 * s);
            }
            if (tail) {
                const vf c = ld_part(cp + i, tail), s0 = ld_part(sp + i, tail), s = inverse ? -s0 : s0;
                const vf x1 = ld_part(a + i, tail), x2 = ld_part(b + i, tail);
                st_part(a + i, x1 * c - x2 * s, tail);
                st_part(b + i, x2 * c + x1 * s, tail);
            }
        }
    }
}

// MARK: Softmax rows

/// The largest of n values (−∞ for none).
PK_INLINE float row_max(const float *x, int n) {
    const int tail = n % PK_W, full = n - tail;
    vf m = splat(-__builtin_inff());
    for (int i = 0; i < full; i += PK_W) m = vmax(m, ld(x + i));
    float mx = hmax(m);
    for (int j = full; j < n; j++) mx = mx > x[j] ? mx : x[j];
    return mx;
}

/// x ← e^(x − shift) over n values, in place; returns their sum.
PK_INLINE float exp_shifted_sum(float *x, int n, float shift) {
    const int tail = n % PK_W, full = n - tail;
    const vf sv = splat(shift);
    vf s = {0};
    for (int i = 0; i < full; i += PK_W) { const vf e = exp_v(ld(x + i) - sv); st(x + i, e); s += e; }
    float sum = hsum(s);
    if (tail) {
        const vf e = exp_v(ld_part(x + full, tail) - sv);
        for (int j = 0; j < tail; j++) sum += e[j];
        st_part(x + full, e, tail);
    }
    return sum;
}

/// x ← scale·softmax(x) over n values, in place; returns the row's max and Σ e^(x − max)
/// (logsumexp = max + log Σ).
static void PK_FN(softmax_row)(float *x, int n, float scale, float *max_out, float *sum_out) {
    if (n <= 0) { *max_out = -__builtin_inff(); *sum_out = 0; return; }
    const int tail = n % PK_W, full = n - tail;
    const float mx = row_max(x, n), sum = exp_shifted_sum(x, n, mx);
    const vf k = splat(scale / sum);
    for (int i = 0; i < full; i += PK_W) st(x + i, ld(x + i) * k);
    if (tail) st_part(x + full, ld_part(x + full, tail) * k, tail);
    *max_out = mx;
    *sum_out = sum;
}

/// One tile of an online log-sum-exp over a longer row: with *m the max and *s = Σ e^(v − *m) of
/// the row's values before this tile, x ← e^(x − m′) over the tile's n values, m′ = max(*m, max x),
/// *s ← *s·e^(*m − m′) + Σ e^(x − m′), *m ← m′. Returns e^(m − m′), the factor that anything
/// summed against the earlier tiles' e^(v − m) must be rescaled by (1 when the max did not grow).
static float PK_FN(online_softmax_tile)(float *x, int n, float *m, float *s) {
    const float mx = row_max(x, n), old = *m, next = old > mx ? old : mx;
    const float sum = exp_shifted_sum(x, n, next);
    const float rescale = old == next ? 1.0f : __builtin_expf(old - next);
    *s = *s * rescale + sum;
    *m = next;
    return rescale;
}

/// Attention's softmax backward on one row of n probabilities p: dp ← scale·p⊙(dp − Σ p⊙dp).
static void PK_FN(softmax_backward_row)(const float *p, float *dp, int n, float scale) {
    const int tail = n % PK_W, full = n - tail;
    vf acc = {0};
    int i = 0;
    for (; i < full; i += PK_W) acc = fmav(ld(p + i), ld(dp + i), acc);
    if (tail) acc = fmav(ld_part(p + i, tail), ld_part(dp + i, tail), acc);
    const vf d = splat(hsum(acc));
    for (i = 0; i < full; i += PK_W) st(dp + i, ld(p + i) * (ld(dp + i) - d) * scale);
    if (tail) st_part(dp + i, ld_part(p + i, tail) * (ld_part(dp + i, tail) - d) * scale, tail);
}
