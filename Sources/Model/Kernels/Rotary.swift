import Foundation
import LinearAlgebra

/// Rotary position embedding in the half-split layout transformers uses for Llama
/// (`rotate_half`): within each head of size D, element i pairs with i + D/2 and both rotate by
/// the angle `position · f_i`, with f_i = θ^(−2i/D) rescaled as the `RopeSpec` says.
struct RotaryTable: Sendable {
    let headDim: Int
    let maxPositions: Int
    /// (maxPositions, D/2) each.
    private(set) var cos: [Float]
    private(set) var sin: [Float]

    init(headDim: Int, maxPositions: Int, rope: RopeSpec) {
        self.headDim = headDim
        self.maxPositions = maxPositions
        let half = headDim / 2
        let frequencies = Self.inverseFrequencies(headDim: headDim, rope: rope)
        var c = [Float](repeating: 0, count: maxPositions * half), s = c
        for i in 0..<half {
            // transformers computes inv_freq in float32, then position × inv_freq in float32.
            let invFreq = frequencies[i]
            for p in 0..<maxPositions {
                let angle = Float(p) * invFreq
                c[p * half + i] = Foundation.cos(angle)
                s[p * half + i] = Foundation.sin(angle)
            }
        }
        cos = c
        sin = s
    }

    /// The D/2 frequencies f_i in float32, as transformers' `ROPE_INIT_FUNCTIONS` compute them
    /// (llama.cpp's `rope_freqs.weight` divides them likewise). `dynamic` equals the unscaled
    /// frequencies within `max_position_embeddings`, which bounds every table (`DecoderModel`).
    static func inverseFrequencies(headDim: Int, rope: RopeSpec) -> [Float] {
        let base = (0..<(headDim / 2)).map { i in Float(1.0 / Foundation.pow(rope.theta, Double(2 * i) / Double(headDim))) }
        switch rope.scaling {
        case nil, .dynamic: return base
        case let .linear(factor): return base.map { $0 / Float(factor) }
        case let .divisors(divisors): return zip(base, divisors).map { $0 / $1 }
        case let .llama3(factor, low, high, original):
            // transformers' _compute_llama3_parameters, in float32 as its tensors are.
            let (f, lo, hi, old) = (Float(factor), Float(low), Float(high), Float(original))
            let lowWavelength = old / lo, highWavelength = old / hi
            return base.map { inv in
                let wavelength = 2 * Float.pi / inv
                let scaled = wavelength > lowWavelength ? inv / f : inv
                guard !(wavelength < highWavelength), !(wavelength > lowWavelength) else { return scaled }
                let smooth = (old / wavelength - lo) / (hi - lo)
                return (1 - smooth) * scaled / f + smooth * scaled
            }
        }
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
