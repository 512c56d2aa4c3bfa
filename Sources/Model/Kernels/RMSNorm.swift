import LinearAlgebra

/// RMSNorm over rows: `y = x / √(mean(x²) + ε) · weight`, computed in float32 like transformers'
/// LlamaRMSNorm (which upcasts to float32 before the mean).
enum RMSNorm {
    /// - x: (N, C) rows; weight: (C); y: (N, C) (may alias x); rstd: (N) saved for backward, or nil.
    ///   Rows are split across `lanes`.
    static func forward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                        rstd: UnsafeMutablePointer<Float>?, rows: Int, cols: Int, eps: Float, lanes: Int = 1) {
        Parallel.disjointChunks(rows, lanes: lanes, minimumChunk: elementwiseRowsPerLane) { part in
            for n in part {
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
}

extension RMSNorm {
    /// Backward with frozen weight: dx (+)= r·(w⊙dy) − x·(r³/C)·Σ(x⊙w⊙dy), per row, where r is the
    /// saved rstd. dy (N, C), x (N, C), dx (N, C). Rows are split across `lanes`.
    static func backward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                         rstd: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, rows: Int, cols: Int, accumulate: Bool,
                         lanes: Int = 1) {
        Parallel.disjointChunks(rows, lanes: lanes, minimumChunk: elementwiseRowsPerLane) { part in
            for n in part {
                let xr = x + n * cols, dyr = dy + n * cols, dxr = dx + n * cols
                let r = rstd[n]
                var acc = Vec8(), i = 0
                while i + 8 <= cols { acc.addProduct(load8(xr + i) * load8(weight + i), load8(dyr + i)); i += 8 }
                var dot = acc.sum()
                while i < cols { dot += xr[i] * weight[i] * dyr[i]; i += 1 }
                let c = r * r * r * dot / Float(cols)
                i = 0
                while i + 8 <= cols {
                    let g = r * load8(weight + i) * load8(dyr + i) - c * load8(xr + i)
                    store8(accumulate ? load8(dxr + i) + g : g, dxr + i)
                    i += 8
                }
                while i < cols {
                    let g = r * weight[i] * dyr[i] - c * xr[i]
                    dxr[i] = accumulate ? dxr[i] + g : g
                    i += 1
                }
            }
        }
    }
}

extension RMSNorm {
    /// The weight's gradient: dWeight[i] += Σ_n dy[n, i] · x[n, i] · r[n], r the saved rstd
    /// (y = x·r ⊙ weight). dy (N, C), x (N, C), dWeight (C).
    static func backwardWeight(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                               dWeight: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
        for n in 0..<rows {
            let xr = x + n * cols, dyr = dy + n * cols
            let r = Vec8(repeating: rstd[n])
            var i = 0
            while i + 8 <= cols { store8(load8(dWeight + i).addingProduct(load8(dyr + i) * load8(xr + i), r), dWeight + i); i += 8 }
            while i < cols { dWeight[i] += dyr[i] * xr[i] * rstd[n]; i += 1 }
        }
    }
}
