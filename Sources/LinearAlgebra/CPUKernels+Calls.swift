import CKernels

/// Swift entry points of the dispatched C kernels (Sources/CKernels/include/pissa_kernels.h has
/// their definitions), each on the calling thread; callers split rows across lanes.
extension CPUKernels {
    /// RMSNorm of `rows` rows: y = x·r ⊙ w, r = 1/√(mean(x²) + ε) saved in rstd unless nil.
    public static func rmsNormForward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                                      rstd: UnsafeMutablePointer<Float>?, rows: Int, cols: Int, eps: Float) {
        table.rmsnorm_forward(x, weight, y, rstd, Int32(rows), Int32(cols), eps)
    }

    /// dx (+)= r·(w⊙dy) − x·(r³/C)·Σ(x⊙w⊙dy) per row.
    public static func rmsNormBackward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                       rstd: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, rows: Int, cols: Int,
                                       accumulate: Bool) {
        table.rmsnorm_backward(dy, x, weight, rstd, dx, Int32(rows), Int32(cols), accumulate ? 1 : 0)
    }

    /// dWeight[i] += Σ_n dy[n, i]·x[n, i]·rstd[n].
    public static func rmsNormBackwardWeight(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                                             dWeight: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
        table.rmsnorm_backward_weight(dy, x, rstd, dWeight, Int32(rows), Int32(cols))
    }

    /// h = silu(g)·u over `count` values.
    public static func swiGLUForward(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, count: Int) {
        table.swiglu_forward(gate, up, out, count)
    }

    /// dg = dh·u·σ(g)·(1 + g·(1 − σ(g))), du = dh·silu(g) over `count` values.
    public static func swiGLUBackward(dh: UnsafePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
                                      dGate: UnsafeMutablePointer<Float>, dUp: UnsafeMutablePointer<Float>, count: Int) {
        table.swiglu_backward(dh, gate, up, dGate, dUp, count)
    }

    /// h = gelu_tanh(g)·u over `count` values (PyTorch's tanh approximation).
    public static func geGLUForward(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, count: Int) {
        table.geglu_forward(gate, up, out, count)
    }

    /// dg = dh·u·gelu_tanh′(g), du = dh·gelu_tanh(g) over `count` values.
    public static func geGLUBackward(dh: UnsafePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
                                     dGate: UnsafeMutablePointer<Float>, dUp: UnsafeMutablePointer<Float>, count: Int) {
        table.geglu_backward(dh, gate, up, dGate, dUp, count)
    }

    /// Rotates `heads` heads of `headDim` in each of `rows` rows by their positions' angles (cos and
    /// sin tables (positions, headDim/2)); `inverse` rotates back.
    public static func rotary(_ x: UnsafeMutablePointer<Float>, rows: Int, heads: Int, headDim: Int, positions: UnsafePointer<Int32>,
                              cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, inverse: Bool) {
        table.rotary(x, Int32(rows), Int32(heads), Int32(headDim), positions, cos, sin, inverse ? 1 : 0)
    }

    /// x ← scale·softmax(x) in place; returns the row's max and Σ e^(x − max).
    @discardableResult
    public static func softmaxRow(_ x: UnsafeMutablePointer<Float>, count: Int, scale: Float = 1) -> (max: Float, sum: Float) {
        var m: Float = 0, s: Float = 0
        table.softmax_row(x, Int32(count), scale, &m, &s)
        return (m, s)
    }

    /// One tile of an online log-sum-exp over a longer row: x ← e^(x − m′) with m′ = max(max,
    /// max x), sum ← sum·e^(max − m′) + Σ e^(x − m′), max ← m′. Returns e^(old max − m′), the
    /// factor by which anything summed against the earlier tiles must be rescaled. Start a row
    /// with max −∞ and sum 0.
    @discardableResult
    public static func onlineSoftmaxTile(_ x: UnsafeMutablePointer<Float>, count: Int, max: inout Float, sum: inout Float) -> Float {
        table.online_softmax_tile(x, Int32(count), &max, &sum)
    }

    /// dp ← scale·p⊙(dp − Σ p⊙dp) over `count` values.
    public static func softmaxBackwardRow(p: UnsafePointer<Float>, dp: UnsafeMutablePointer<Float>, count: Int, scale: Float) {
        table.softmax_backward_row(p, dp, Int32(count), scale)
    }

    /// NF4 whole blocks (`blockSize` a multiple of 16): code[index]·absmax into out.
    public static func nf4Dequantize(packed: UnsafePointer<UInt8>, absmax: UnsafePointer<Float>, blocks: Int, blockSize: Int,
                                     codebook: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        table.nf4_dequantize(packed, absmax, Int32(blocks), Int32(blockSize), codebook, out)
    }
}
