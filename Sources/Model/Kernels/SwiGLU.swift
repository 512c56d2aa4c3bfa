/// The Llama MLP's gate: `h = silu(g) · u` with `silu(g) = g · σ(g)`.
enum SwiGLU {
    /// g, u, h: (count) each; h may alias g or u.
    static func forward(gate g: UnsafePointer<Float>, up u: UnsafePointer<Float>, out h: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + 8 <= count {
            let x = load8(g + i)
            let sig = 1 / (1 + exp8(-x))
            store8(x * sig * load8(u + i), h + i)
            i += 8
        }
        while i < count {
            let x = g[i]
            h[i] = x / (1 + exp1(-x)) * u[i]
            i += 1
        }
    }
}
