import Formats

/// Keys and values of the positions already processed, per layer, for one sequence (B = 1).
/// Each layer holds (capacity, KV·D) for keys and for values, keys already rotated.
public final class KVCache: @unchecked Sendable {
    public final class Layer: @unchecked Sendable {
        let k: UnsafeMutablePointer<Float>
        let v: UnsafeMutablePointer<Float>
        let width: Int

        init(capacity: Int, width: Int) {
            self.width = width
            k = .allocate(capacity: capacity * width)
            v = .allocate(capacity: capacity * width)
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

    public let capacity: Int
    public internal(set) var length = 0
    let layers: [Layer]

    public init(config: ModelConfig, capacity: Int) {
        self.capacity = capacity
        let width = config.numKeyValueHeads * config.headDim
        layers = (0..<config.numHiddenLayers).map { _ in Layer(capacity: capacity, width: width) }
    }

    /// Forgets everything (the buffers are kept).
    public func reset() { length = 0 }
}
