/// Numerically stable softmax of one row in place: `p_i = e^(x_i − max) / Σ_j e^(x_j − max)`.
enum Softmax {
    static func forwardRow(_ x: UnsafeMutablePointer<Float>, count: Int) {
        guard count > 0 else { return }
        var m8 = Vec8(repeating: -.infinity), i = 0
        while i + 8 <= count { m8 = max8(m8, load8(x + i)); i += 8 }
        var m = m8.max()
        while i < count { m = Swift.max(m, x[i]); i += 1 }
        var s8 = Vec8(), s: Float = 0
        let mv = Vec8(repeating: m)
        i = 0
        while i + 8 <= count { let e = exp8(load8(x + i) - mv); store8(e, x + i); s8 += e; i += 8 }
        s = s8.sum()
        while i < count { let e = exp1(x[i] - m); x[i] = e; s += e; i += 1 }
        let inv = 1 / s
        i = 0
        while i + 8 <= count { store8(load8(x + i) * inv, x + i); i += 8 }
        while i < count { x[i] *= inv; i += 1 }
    }
}
