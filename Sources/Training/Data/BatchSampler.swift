import LinearAlgebra

/// Where a `BatchSampler` is: the epoch, and how many examples of that epoch's order have been
/// handed out. Saved in checkpoints so that a resumed run sees exactly the batches it would have.
public struct SamplerState: Codable, Sendable, Equatable, CustomStringConvertible {
    public var epoch: Int
    public var position: Int

    public init(epoch: Int = 0, position: Int = 0) {
        self.epoch = epoch
        self.position = position
    }

    public var description: String { "epoch \(epoch), example \(position)" }
}

/// Deterministic batches over `count` examples: each epoch visits every example once, in an order
/// that depends only on (seed, epoch) (a Fisher–Yates shuffle driven by
/// `SeededGenerator(seed: seed, stream: epoch)`; the identity order when `shuffle` is false).
/// An epoch's last batch holds the remainder and may be smaller than `batchSize`; no example is
/// dropped. Batches run on across epochs.
///
/// The state is two integers; setting it (from a checkpoint) recomputes that epoch's order, so
/// `next()` continues exactly as the run that saved it would have.
public struct BatchSampler: Sendable {
    public let count: Int
    public let batchSize: Int
    public let seed: UInt64
    public let shuffle: Bool

    private var current: SamplerState
    /// The current epoch's order.
    private var order: [Int]

    /// - Precondition: `count ≥ 1`, `batchSize ≥ 1`.
    public init(count: Int, batchSize: Int, seed: UInt64, shuffle: Bool = true, state: SamplerState = SamplerState()) {
        precondition(count >= 1 && batchSize >= 1, "BatchSampler needs examples (\(count)) and a batch size (\(batchSize))")
        self.count = count
        self.batchSize = batchSize
        self.seed = seed
        self.shuffle = shuffle
        self.current = state
        self.order = []
        self.state = state
    }

    /// The position of the next batch. Setting it moves the sampler there.
    /// - Precondition: `epoch ≥ 0`, `0 ≤ position ≤ count`.
    public var state: SamplerState {
        get { current }
        set {
            precondition(newValue.epoch >= 0 && (0...count).contains(newValue.position),
                         "SamplerState \(newValue) is outside \(count) examples")
            current = newValue
            if current.position == count { current = SamplerState(epoch: current.epoch + 1, position: 0) }
            order = epochOrder(current.epoch)
        }
    }

    /// Batches per epoch (the last may be smaller).
    public var batchesPerEpoch: Int { (count + batchSize - 1) / batchSize }

    /// The order in which `epoch` visits the examples.
    public func epochOrder(_ epoch: Int) -> [Int] {
        var order = Array(0..<count)
        guard shuffle, count > 1 else { return order }
        var rng = SeededGenerator(seed: seed, stream: UInt64(epoch))
        for i in stride(from: count - 1, to: 0, by: -1) {
            order.swapAt(i, Self.uniform(below: i + 1, using: &rng))
        }
        return order
    }

    /// The indices of the next batch; advances the state.
    public mutating func next() -> [Int] {
        let end = min(current.position + batchSize, count)
        let indices = Array(order[current.position..<end])
        state = SamplerState(epoch: current.epoch, position: end)
        return indices
    }

    /// The next batch of `examples` (the sampler's `count` of them).
    public mutating func next(from examples: [Example]) -> Batch {
        precondition(examples.count == count, "BatchSampler over \(count) examples given \(examples.count)")
        return Batch(examples: next().map { examples[$0] })
    }

    /// Uniform in 0..<n without modulo bias (Lemire's multiply-and-reject), the same on every
    /// platform and Swift version (unlike `Int.random(in:using:)`, whose algorithm is unspecified).
    package static func uniform(below n: Int, using rng: inout SeededGenerator) -> Int {
        let bound = UInt64(n)
        var m = rng.next().multipliedFullWidth(by: bound)
        if m.low < bound {
            let threshold = (0 &- bound) % bound
            while m.low < threshold { m = rng.next().multipliedFullWidth(by: bound) }
        }
        return Int(m.high)
    }
}
