import LinearAlgebra

/// Gemma's MLP gate: `h = gelu_tanh(g) · u`, with PyTorch's tanh approximation
/// `gelu_tanh(g) = ½·g·(1 + tanh(√(2/π)·(g + 0.044715·g³)))`. The element-wise work is a C kernel
/// of the CPU's level (`CPUKernels`, computed as g·σ(2√(2/π)·(g + 0.044715·g³))); rows are split
/// across `lanes` here.
enum GeGLU {
    /// g, u, h: (rows · width) each; h may alias g or u.
    static func forward(gate g: UnsafePointer<Float>, up u: UnsafePointer<Float>, out h: UnsafeMutablePointer<Float>,
                        rows: Int, width: Int, lanes: Int = 1) {
        Parallel.disjointChunks(rows, lanes: lanes, minimumChunk: elementwiseRowsPerLane) { part in
            let i = part.lowerBound * width
            CPUKernels.geGLUForward(gate: g + i, up: u + i, out: h + i, count: part.count * width)
        }
    }

    /// Backward of h = gelu_tanh(g)·u: dg = dh·u·gelu_tanh′(g), du = dh·gelu_tanh(g).
    /// dg and du may alias neither input.
    static func backward(dh: UnsafePointer<Float>, gate g: UnsafePointer<Float>, up u: UnsafePointer<Float>,
                         dGate dg: UnsafeMutablePointer<Float>, dUp du: UnsafeMutablePointer<Float>,
                         rows: Int, width: Int, lanes: Int = 1) {
        Parallel.disjointChunks(rows, lanes: lanes, minimumChunk: elementwiseRowsPerLane) { part in
            let i = part.lowerBound * width
            CPUKernels.geGLUBackward(dh: dh + i, gate: g + i, up: u + i, dGate: dg + i, dUp: du + i, count: part.count * width)
        }
    }
}

/// The gated MLP's element-wise step for either activation.
enum GatedMLP {
    static func forward(_ activation: GatedActivation, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
                        out: UnsafeMutablePointer<Float>, rows: Int, width: Int, lanes: Int) {
        switch activation {
        case .silu: SwiGLU.forward(gate: gate, up: up, out: out, rows: rows, width: width, lanes: lanes)
        case .geluTanh: GeGLU.forward(gate: gate, up: up, out: out, rows: rows, width: width, lanes: lanes)
        }
    }

    static func backward(_ activation: GatedActivation, dh: UnsafePointer<Float>, gate: UnsafePointer<Float>,
                         up: UnsafePointer<Float>, dGate: UnsafeMutablePointer<Float>, dUp: UnsafeMutablePointer<Float>,
                         rows: Int, width: Int, lanes: Int) {
        switch activation {
        case .silu: SwiGLU.backward(dh: dh, gate: gate, up: up, dGate: dGate, dUp: dUp, rows: rows, width: width, lanes: lanes)
        case .geluTanh: GeGLU.backward(dh: dh, gate: gate, up: up, dGate: dGate, dUp: dUp, rows: rows, width: width, lanes: lanes)
        }
    }
}
