import LinearAlgebra

/// RMSNorm over rows: `y = x / √(mean(x²) + ε) · weight`, computed in float32 like transformers'
/// LlamaRMSNorm (which upcasts to float32 before the mean). The per-row work is a C kernel of the
/// CPU's level (`CPUKernels`); rows are split across `lanes` here.
enum RMSNorm {
    /// - x: (N, C) rows; weight: (C); y: (N, C) (may alias x); rstd: (N) saved for backward, or nil.
    static func forward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                        rstd: UnsafeMutablePointer<Float>?, rows: Int, cols: Int, eps: Float, lanes: Int = 1) {
        Parallel.disjointChunks(rows, lanes: lanes, minimumChunk: elementwiseRowsPerLane) { part in
            let offset = part.lowerBound * cols
            CPUKernels.rmsNormForward(x: x + offset, weight: weight, y: y + offset, rstd: rstd.map { $0 + part.lowerBound },
                                      rows: part.count, cols: cols, eps: eps)
        }
    }

    /// Backward with frozen weight: dx (+)= r·(w⊙dy) − x·(r³/C)·Σ(x⊙w⊙dy), per row, where r is the
    /// saved rstd. dy (N, C), x (N, C), dx (N, C). Rows are split across `lanes`.
    static func backward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                         rstd: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, rows: Int, cols: Int, accumulate: Bool,
                         lanes: Int = 1) {
        Parallel.disjointChunks(rows, lanes: lanes, minimumChunk: elementwiseRowsPerLane) { part in
            let offset = part.lowerBound * cols
            CPUKernels.rmsNormBackward(dy: dy + offset, x: x + offset, weight: weight, rstd: rstd + part.lowerBound,
                                       dx: dx + offset, rows: part.count, cols: cols, accumulate: accumulate)
        }
    }

    /// The weight's gradient: dWeight[i] += Σ_n dy[n, i] · x[n, i] · r[n], r the saved rstd
    /// (y = x·r ⊙ weight). dy (N, C), x (N, C), dWeight (C).
    static func backwardWeight(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                               dWeight: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
        CPUKernels.rmsNormBackwardWeight(dy: dy, x: x, rstd: rstd, dWeight: dWeight, rows: rows, cols: cols)
    }
}
