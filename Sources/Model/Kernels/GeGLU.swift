import LinearAlgebra

/// Gemma's MLP gate: `h = gelu_tanh(g) · u`, with PyTorch's tanh approximation
/// `gelu_tanh(g) = ½·g·(1 + tanh(√(2/π)·(g + 0.044715·g³)))`, computed as `g·σ(z)` with
/// `z = 2√(2/π)·(g + 0.044715·g³)` (since ½(1 + tanh(u)) = σ(2u)).
enum GeGLU {
    static let c0: Float = 2 * 0.797_884_56   // 2·√(2/π)
    static let c1: Float = 0.044_715

    /// g, u, h: (rows · width) each; h may alias g or u. Rows are split across `lanes`.
    static func forward(gate g: UnsafePointer<Float>, up u: UnsafePointer<Float>, out h: UnsafeMutablePointer<Float>,
                        rows: Int, width: Int, lanes: Int = 1) {
        Parallel.disjointChunks(rows, lanes: lanes, minimumChunk: elementwiseRowsPerLane) { part in
            var i = part.lowerBound * width
            let count = part.upperBound * width
            while i + 8 <= count {
                let x = load8(g + i)
                let z = c0 * (x + c1 * x * x * x)
                store8(x / (1 + exp8(-z)) * load8(u + i), h + i)
                i += 8
            }
            while i < count {
                let x = g[i], z = c0 * (x + c1 * x * x * x)   // the SIMD lanes' arithmetic, so tails round alike
                h[i] = x / (1 + exp1(-z)) * u[i]
                i += 1
            }
        }
    }

    /// Backward of h = gelu_tanh(g)·u: with σ = σ(z), dg = dh·u·(σ + g·σ·(1 − σ)·z′),
    /// z′ = 2√(2/π)·(1 + 3·0.044715·g²), and du = dh·g·σ. dg and du may alias neither input.
    static func backward(dh: UnsafePointer<Float>, gate g: UnsafePointer<Float>, up u: UnsafePointer<Float>,
                         dGate dg: UnsafeMutablePointer<Float>, dUp du: UnsafeMutablePointer<Float>,
                         rows: Int, width: Int, lanes: Int = 1) {
        Parallel.disjointChunks(rows, lanes: lanes, minimumChunk: elementwiseRowsPerLane) { part in
            var i = part.lowerBound * width
            let count = part.upperBound * width
            while i + 8 <= count {
                let x = load8(g + i), d = load8(dh + i)
                let z = c0 * (x + c1 * x * x * x), dz = c0 * (1 + 3 * c1 * x * x)
                let sig = 1 / (1 + exp8(-z))
                store8(d * load8(u + i) * (sig + x * sig * (1 - sig) * dz), dg + i)
                store8(d * x * sig, du + i)
                i += 8
            }
            while i < count {
                let x = g[i], z = c0 * (x + c1 * x * x * x), dz = c0 * (1 + 3 * c1 * x * x)
                let sig = 1 / (1 + exp1(-z))
                dg[i] = dh[i] * u[i] * (sig + x * sig * (1 - sig) * dz)
                du[i] = dh[i] * (x * sig)
                i += 1
            }
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
