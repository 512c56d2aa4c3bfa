import LinearAlgebra

/// The Llama MLP's gate: `h = silu(g) · u` with `silu(g) = g · σ(g)`. The element-wise work is a
/// C kernel of the CPU's level (`CPUKernels`); rows are split across `lanes` here.
enum SwiGLU {
    /// g, u, h: (rows · width) each; h may alias g or u.
    static func forward(gate g: UnsafePointer<Float>, up u: UnsafePointer<Float>, out h: UnsafeMutablePointer<Float>,
                        rows: Int, width: Int, lanes: Int = 1) {
        Parallel.disjointChunks(rows, lanes: lanes, minimumChunk: elementwiseRowsPerLane) { part in
            let i = part.lowerBound * width
            CPUKernels.swiGLUForward(gate: g + i, up: u + i, out: h + i, count: part.count * width)
        }
    }

    /// Backward of h = silu(g)·u: dg = dh·u·σ(g)·(1 + g·(1 − σ(g))), du = dh·silu(g).
    /// dg and du may alias neither input.
    static func backward(dh: UnsafePointer<Float>, gate g: UnsafePointer<Float>, up u: UnsafePointer<Float>,
                         dGate dg: UnsafeMutablePointer<Float>, dUp du: UnsafeMutablePointer<Float>,
                         rows: Int, width: Int, lanes: Int = 1) {
        Parallel.disjointChunks(rows, lanes: lanes, minimumChunk: elementwiseRowsPerLane) { part in
            let i = part.lowerBound * width
            CPUKernels.swiGLUBackward(dh: dh + i, gate: g + i, up: u + i, dGate: dg + i, dUp: du + i, count: part.count * width)
        }
    }
}
