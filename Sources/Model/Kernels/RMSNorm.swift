/// RMSNorm over rows: `y = x / √(mean(x²) + ε) · weight`, computed in float32 like transformers'
/// LlamaRMSNorm (which upcasts to float32 before the mean).
enum RMSNorm {
    /// - x: (N, C) rows; weight: (C); y: (N, C) (may alias x); rstd: (N) saved for backward, or nil.
    static func forward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                        rstd: UnsafeMutablePointer<Float>?, rows: Int, cols: Int, eps: Float) {
        for n in 0..<rows {
            let xr = x + n * cols, yr = y + n * cols
            var acc = Vec8(), i = 0
            while i + 8 <= cols { let v = load8(xr + i); acc.addProduct(v, v); i += 8 }
            var sum = acc.sum()
            while i < cols { sum += xr[i] * xr[i]; i += 1 }
            let r = 1 / (sum / Float(cols) + eps).squareRoot()
            rstd?[n] = r
            i = 0
            while i + 8 <= cols { store8(load8(xr + i) * r * load8(weight + i), yr + i); i += 8 }
            while i < cols { yr[i] = xr[i] * r * weight[i]; i += 1 }
        }
    }
}
