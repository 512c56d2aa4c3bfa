import Formats

/// Keys and values of the positions already processed, per layer, for `sequences` independent
/// sequences (slots) of up to `capacity` positions each. Each layer holds (sequences·capacity,
/// KV·D) for keys and for values, keys already rotated; slot s owns rows s·capacity ..< (s + 1)·capacity.
/// One slot is ordinary decoding; several let batched generation decode their sequences in one
/// pass per step (`DecoderModel.hiddenStates(tokens:lengths:cache:slots:adapters:)`).
public final class KVCache: @unchecked Sendable {
    public final class Layer: @unchecked Sendable {
        let k: UnsafeMutablePointer<Float>
        let v: UnsafeMutablePointer<Float>
        let width: Int

        init(rows: Int, width: Int) {
            self.width = width
            k = .allocate(capacity: rows * width)
            v = .allocate(capacity: rows * width)
        }

        deinit {
            k.deallocate()
            v.deallocate()
        }

        func append(k newK: UnsafePointer<Float>, v newV: UnsafePointer<Float>, rows: Int, at start: Int) {
            (k + start * width).update(from: newK, count: rows * width)
            (v + start * width).update(from: newV, count: rows * width)
        }
    }

    /// Positions per sequence.
    public let capacity: Int
    /// Positions cached in each slot.
    public internal(set) var lengths: [Int]
    let layers: [Layer]

    public init(config: ModelConfig, capacity: Int, sequences: Int = 1) {
        precondition(capacity >= 1 && sequences >= 1, "a cache of \(sequences) sequences of \(capacity) positions")
        self.capacity = capacity
        lengths = [Int](repeating: 0, count: sequences)
        let width = config.numKeyValueHeads * config.headDim
        layers = (0..<config.numHiddenLayers).map { _ in Layer(rows: sequences * capacity, width: width) }
    }

    public var sequences: Int { lengths.count }

    /// Positions cached in the first slot (the only one of a single-sequence cache).
    public var length: Int { lengths[0] }

    /// Forgets everything (the buffers are kept).
    public func reset() { lengths = [Int](repeating: 0, count: lengths.count) }

    /// Forgets one slot's sequence, so that a new one can start there.
    public func reset(slot: Int) { lengths[slot] = 0 }
}
