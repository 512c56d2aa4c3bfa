import LinearAlgebra

/// The Llama MLP's gate: `h = silu(g) · u` with `silu(g) = g · σ(g)`.
enum SwiGLU {
    /// g, u, h: (rows · width) each; h may alias g or u. Rows are split across `lanes`.
    static func forward(gate g: UnsafePointer<Float>, up u: UnsafePointer<Float>, out h: UnsafeMutablePointer<Float>,
                        rows: Int, width: Int, lanes: Int = 1) {
        Parallel.disjointChunks(rows, lanes: lanes, minimumChunk: elementwiseRowsPerLane) { part in
            var i = part.lowerBound * width
            let count = part.upperBound * width
            while i + 8 <= count {
                let x = load8(g + i)
                let sig = 1 / (1 + exp8(-x))
                store8(x * sig * load8(u + i), h + i)
                i += 8
            }
            while i < count {
                let x = g[i], sig = 1 / (1 + exp1(-x))   // the SIMD lanes' arithmetic, so tails round alike
                h[i] = x * sig * u[i]
                i += 1
            }
        }
    }
}

extension SwiGLU {
    /// Backward of h = silu(g)·u: dg = dh·u·σ(g)·(1 + g·(1 − σ(g))), du = dh·silu(g).
    /// dg and du may alias neither input. Rows (of `width` values) are split across `lanes`.
    static func backward(dh: UnsafePointer<Float>, gate g: UnsafePointer<Float>, up u: UnsafePointer<Float>,
                         dGate dg: UnsafeMutablePointer<Float>, dUp du: UnsafeMutablePointer<Float>,
                         rows: Int, width: Int, lanes: Int = 1) {
        Parallel.disjointChunks(rows, lanes: lanes, minimumChunk: elementwiseRowsPerLane) { part in
            var i = part.lowerBound * width
            let count = part.upperBound * width
            while i + 8 <= count {
                let x = load8(g + i), d = load8(dh + i)
                let sig = 1 / (1 + exp8(-x))
                let silu = x * sig
                store8(d * load8(u + i) * sig * (1 + x * (1 - sig)), dg + i)
                store8(d * silu, du + i)
                i += 8
            }
            while i < count {
                let x = g[i], sig = 1 / (1 + exp1(-x))   // the SIMD lanes' arithmetic, so tails round alike
                dg[i] = dh[i] * u[i] * sig * (1 + x * (1 - sig))
                du[i] = dh[i] * (x * sig)
                i += 1
            }
        }
    }
}
