import LinearAlgebra

/// How the next token is chosen from logits.
public struct SamplingSettings: Sendable, Codable, Equatable {
    /// 0 means greedy (argmax).
    public var temperature: Float
    /// Nucleus sampling: keep the smallest set of tokens whose probability reaches `topP` (1 = all).
    public var topP: Float
    public var seed: UInt64

    public init(temperature: Float = 0, topP: Float = 1, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topP = topP
        self.seed = seed
    }

    public static let greedy = SamplingSettings()
}

/// Picks tokens from logits; holds the random state so that a run is reproducible from its seed.
public struct Sampler: Sendable {
    public let settings: SamplingSettings
    private var rng: SeededGenerator

    public init(_ settings: SamplingSettings) {
        self.settings = settings
        rng = SeededGenerator(seed: settings.seed)
    }

    public mutating func next(logits: UnsafeBufferPointer<Float>) -> Int {
        if settings.temperature <= 0 { return Self.argmax(logits) }
        // Softmax at the temperature, in Double for the cumulative sums.
        let inv = Double(1 / settings.temperature)
        let m = Double(logits.max() ?? 0)
        var probs = logits.map { ((Double($0) - m) * inv).exp() }
        let total = probs.reduce(0, +)
        for i in probs.indices { probs[i] /= total }
        var order = Array(probs.indices)
        var cutoff = order.count
        if settings.topP < 1 {
            order.sort { probs[$0] > probs[$1] }
            var acc = 0.0
            for (rank, i) in order.enumerated() {
                acc += probs[i]
                if acc >= Double(settings.topP) { cutoff = rank + 1; break }
            }
        }
        let kept = order.prefix(cutoff)
        let mass = kept.reduce(0.0) { $0 + probs[$1] }
        var u = Double(rng.next() >> 11) * 0x1p-53 * mass
        for i in kept {
            u -= probs[i]
            if u < 0 { return i }
        }
        return kept.last!
    }

    /// The index of the largest logit (the first one on ties, as torch.argmax).
    public static func argmax(_ x: UnsafeBufferPointer<Float>) -> Int {
        var best = 0
        for i in 1..<x.count where x[i] > x[best] { best = i }
        return best
    }
}

extension Double {
    fileprivate func exp() -> Double { Foundation.exp(self) }
}

import Foundation
