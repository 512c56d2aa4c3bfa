import Foundation
import LinearAlgebra

/// Rotary position embedding in the half-split layout transformers uses for Llama
/// (`rotate_half`): within each head of size D, element i pairs with i + D/2 and both rotate by
/// the angle `position · θ^(−2i/D)`.
struct RotaryTable: Sendable {
    let headDim: Int
    let maxPositions: Int
    /// (maxPositions, D/2) each.
    private(set) var cos: [Float]
    private(set) var sin: [Float]

    init(headDim: Int, maxPositions: Int, theta: Double) {
        self.headDim = headDim
        self.maxPositions = maxPositions
        let half = headDim / 2
        var c = [Float](repeating: 0, count: maxPositions * half), s = c
        for i in 0..<half {
            // transformers computes inv_freq in float32, then position × inv_freq in float32.
            let invFreq = Float(1.0 / Foundation.pow(theta, Double(2 * i) / Double(headDim)))
            for p in 0..<maxPositions {
                let angle = Float(p) * invFreq
                c[p * half + i] = Foundation.cos(angle)
                s[p * half + i] = Foundation.sin(angle)
            }
        }
        cos = c
        sin = s
    }

    /// Rotates `heads` heads of each of `rows` rows in place; row n has position `positions[n]`.
    /// x: (rows, heads, D) with row stride `heads · D`. Rows are split across `lanes`.
    func apply(_ x: UnsafeMutablePointer<Float>, rows: Int, heads: Int, positions: UnsafePointer<Int32>, inverse: Bool = false,
               lanes: Int = 1) {
        let half = headDim / 2
        cos.withUnsafeBufferPointer { cosTable in
            sin.withUnsafeBufferPointer { sinTable in
                Parallel.disjointChunks(rows, lanes: lanes, minimumChunk: elementwiseRowsPerLane) { part in
                    for n in part {
                        let p = Int(positions[n])
                        let cp = cosTable.baseAddress! + p * half, sp = sinTable.baseAddress! + p * half
                        for h in 0..<heads {
                            let a = x + (n * heads + h) * headDim, b = a + half
                            var i = 0
                            while i + 8 <= half {
                                let c = load8(cp + i), s = inverse ? -load8(sp + i) : load8(sp + i)
                                let x1 = load8(a + i), x2 = load8(b + i)
                                store8(x1 * c - x2 * s, a + i)
                                store8(x2 * c + x1 * s, b + i)
                                i += 8
                            }
                            while i < half {
                                let c = cp[i], s = inverse ? -sp[i] : sp[i]
                                let x1 = a[i], x2 = b[i]
                                a[i] = x1 * c - x2 * s
                                b[i] = x2 * c + x1 * s
                                i += 1
                            }
                        }
                    }
                }
            }
        }
    }
}
