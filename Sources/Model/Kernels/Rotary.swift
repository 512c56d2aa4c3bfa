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
    /// x: (rows, heads, D) with row stride `heads · D`. Rows are split across `lanes`; each lane's
    /// rows are a C kernel of the CPU's level (`CPUKernels.rotary`).
    func apply(_ x: UnsafeMutablePointer<Float>, rows: Int, heads: Int, positions: UnsafePointer<Int32>, inverse: Bool = false,
               lanes: Int = 1) {
        cos.withUnsafeBufferPointer { cosTable in
            sin.withUnsafeBufferPointer { sinTable in
                Parallel.disjointChunks(rows, lanes: lanes, minimumChunk: elementwiseRowsPerLane) { part in
                    CPUKernels.rotary(x + part.lowerBound * heads * headDim, rows: part.count, heads: heads, headDim: headDim,
                                      positions: positions + part.lowerBound, cos: cosTable.baseAddress!, sin: sinTable.baseAddress!,
                                      inverse: inverse)
                }
            }
        }
    }
}
