import LinearAlgebra

/// Weight gradients of full fine-tuning, each the transpose-product of its forward:
/// a linear layer y = x·Wᵀ gives dW += dyᵀ·x; the embedding lookup x_n = E[t_n] gives
/// dE[t_n] += dx_n (a scatter-add). Gradients are *added* into their buffers.
extension DecoderModel {
    /// dW (out, in) += dyᵀ (out, rows) · x (rows, in), split over the output rows so that lanes
    /// write disjoint rows of dW.
    func addWeightGradient(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, dW: UnsafeMutablePointer<Float>,
                           rows: Int, outF: Int, inF: Int) {
        let dyp = ConstPointer(dy), xp = ConstPointer(x), g = MutablePointer(dW)
        Parallel.chunks(outF, lanes: lanes, minimumChunk: 64) { o in
            BLAS.gemm(transA: true, transB: false, m: o.count, n: inF, k: rows, alpha: 1,
                      a: dyp.pointer + o.lowerBound, lda: outF, b: xp.pointer, ldb: inF,
                      beta: 1, c: g.pointer + o.lowerBound * inF, ldc: inF)
        }
    }

    /// Backward of `embed`: dE[tokens[n]] += s·dx[n] for every row n (N, C), s the embedding
    /// scale (1 for most families), in row order (a repeated token sums its rows in that order, so
    /// the result does not depend on lanes).
    func embedBackward(tokens: [Int32], dx: UnsafePointer<Float>, dEmbedding: UnsafeMutablePointer<Float>) {
        let C = config.hiddenSize
        let s = config.block.embeddingScale ?? 1, s8 = Vec8(repeating: s)
        for (n, t) in tokens.enumerated() {
            let dst = dEmbedding + Int(t) * C, src = dx + n * C
            var i = 0
            while i + 8 <= C { store8(load8(dst + i).addingProduct(load8(src + i), s8), dst + i); i += 8 }
            while i < C { dst[i] += src[i] * s; i += 1 }
        }
    }
}
