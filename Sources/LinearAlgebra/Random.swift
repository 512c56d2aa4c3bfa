/// A small, fast, seeded generator (xoshiro256**, seeded through SplitMix64) so that every
/// random start in the project is reproducible from one integer seed, on any platform.
public struct SeededGenerator: RandomNumberGenerator, Sendable, Codable, Equatable {
    public private(set) var state: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var sm = seed
        func splitMix() -> UInt64 {
            sm &+= 0x9E37_79B9_7F4A_7C15
            var z = sm
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (splitMix(), splitMix(), splitMix(), splitMix())
    }

    /// A generator for stream `index` of `seed`: independent streams for, e.g., each layer,
    /// so results do not depend on the order in which parallel workers take layers.
    public init(seed: UInt64, stream index: UInt64) {
        self.init(seed: seed ^ (index &* 0xD1B5_4A32_D192_ED03) &+ index)
    }

    public mutating func next() -> UInt64 {
        let result = rotl(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotl(state.3, 45)
        return result
    }

    @inline(__always) private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// Uniform in [0, 1) with 24 bits of precision.
    public mutating func nextUniform() -> Float { Float(next() >> 40) * 0x1p-24 }

    /// Standard normal (Box–Muller, computed in Double).
    public mutating func nextGaussian() -> Float {
        let u1 = (Double(next() >> 11) + 1) * 0x1p-53   // (0, 1]
        let u2 = Double(next() >> 11) * 0x1p-53
        return Float((-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2))
    }

    // Codable for checkpoints: the four state words.
    private enum CodingKeys: String, CodingKey { case state }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let s = try c.decode([UInt64].self, forKey: .state)
        guard s.count == 4 else {
            throw DecodingError.dataCorruptedError(forKey: .state, in: c, debugDescription: "expected 4 state words")
        }
        state = (s[0], s[1], s[2], s[3])
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode([state.0, state.1, state.2, state.3], forKey: .state)
    }
    public static func == (a: Self, b: Self) -> Bool { a.state == b.state }
}

extension Matrix {
    /// Entries drawn i.i.d. from N(0, std²): Box–Muller in float32, both outputs of each pair used.
    public static func gaussian(rows: Int, cols: Int, std: Float = 1, using rng: inout SeededGenerator) -> Matrix {
        var m = Matrix(rows: rows, cols: cols)
        let count = m.count
        m.storage.withUnsafeMutableBufferPointer { p in
            var i = 0
            while i < count {
                let bits = rng.next()
                let u1 = (Float(bits >> 40) + 1) * 0x1p-24                  // (0, 1]
                let u2 = Float((bits >> 16) & 0xFF_FFFF) * 0x1p-24           // [0, 1)
                let radius = std * (-2 * logf(u1)).squareRoot()
                let angle = 2 * Float.pi * u2
                p[i] = radius * cosf(angle)
                if i + 1 < count { p[i + 1] = radius * sinf(angle) }
                i += 2
            }
        }
        return m
    }

    /// Entries drawn i.i.d. from U(−bound, bound).
    public static func uniform(rows: Int, cols: Int, bound: Float, using rng: inout SeededGenerator) -> Matrix {
        var m = Matrix(rows: rows, cols: cols)
        for i in 0..<m.count { m.storage[i] = (2 * rng.nextUniform() - 1) * bound }
        return m
    }
}

import Foundation
@inline(__always) private func _log(_ x: Double) -> Double { Foundation.log(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { Foundation.cos(x) }
