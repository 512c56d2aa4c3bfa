/// Row-major buffers cut into column blocks and glued back: a fused projection's output
/// (Phi-3's qkv, gate_up) split into the buffers its parts are used from, and their gradients
/// joined again for its backward.
enum Columns {
    /// Copies each row of `source` (rows, Σ widths) into the parts, in order: part i receives
    /// columns [Σ_{j<i} w_j, Σ_{j≤i} w_j) as a (rows, w_i) buffer.
    static func split(_ source: UnsafePointer<Float>, rows: Int, into parts: [(UnsafeMutablePointer<Float>, Int)]) {
        let total = parts.reduce(0) { $0 + $1.1 }
        for r in 0..<rows {
            var column = 0
            for (destination, width) in parts {
                (destination + r * width).update(from: source + r * total + column, count: width)
                column += width
            }
        }
    }

    /// The inverse of `split`: the parts' rows side by side in `destination` (rows, Σ widths).
    static func join(_ parts: [(UnsafeMutablePointer<Float>, Int)], rows: Int, into destination: UnsafeMutablePointer<Float>) {
        let total = parts.reduce(0) { $0 + $1.1 }
        for r in 0..<rows {
            var column = 0
            for (source, width) in parts {
                (destination + r * total + column).update(from: source + r * width, count: width)
                column += width
            }
        }
    }
}
