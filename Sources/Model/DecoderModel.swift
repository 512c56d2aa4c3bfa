import Foundation
import Formats
import LinearAlgebra

/// A decoder-only causal language model on CPU, float32: the families of `ArchitectureRegistry`,
/// whose differences the config's `BlockSpec` and per-layer `LayerAttention` carry.
///
/// Shape letters: B batch, T time (new positions), N = B·T rows, C hidden, H query heads,
/// KV key/value heads, D head dim, F MLP width, V vocabulary. Activations are row-major (N, ·).
///
/// Threading: OpenBLAS runs single-threaded and the model splits work across `lanes` itself
/// (products by rows, attention by heads), so that both cores never fight OpenBLAS's spinning
/// worker threads (docs/PLATFORM.md). An adapter training step on several sequences gives each lane
/// whole sequences instead (DecoderModel+DataParallel.swift).
public final class DecoderModel: @unchecked Sendable {
    public let weights: ModelWeights
    /// Where the weights are read from instead of `weights`' tensors (full fine-tuning: the
    /// trainer's store, with gradient buffers); nil: the model's own `weights`.
    public let buffers: ModelWeightBuffers?
    public var config: ModelConfig { weights.config }
    public let lanes: Int
    /// One table per distinct rotary embedding of the layers (`ropeIndex[layer]` picks it).
    let rotaries: [RotaryTable]
    let ropeIndex: [Int]

    /// With `buffers`, every weight is read from them (the caller keeps them alive and may have
    /// emptied the tensors of `weights`, whose `config` is still used).
    public init(weights: ModelWeights, lanes: Int = 2, maxPositions: Int? = nil, buffers: ModelWeightBuffers? = nil) {
        self.weights = weights
        self.buffers = buffers
        self.lanes = max(1, lanes)
        let c = weights.config
        let specs = c.layers.map(\.rope).reduce(into: [RopeSpec]()) { if !$0.contains($1) { $0.append($1) } }
        // Dynamic (NTK) scaling changes nothing within its max_position_embeddings: stay within them.
        let dynamicLimit = specs.compactMap { spec -> Int? in
            if case let .dynamic(_, limit) = spec.scaling { return limit }
            return nil
        }.min()
        let positions = min(maxPositions ?? min(c.maxPositionEmbeddings, 8192), dynamicLimit ?? .max)
        rotaries = specs.map { RotaryTable(headDim: c.headDim, maxPositions: positions, rope: $0) }
        ropeIndex = c.layers.map { layer in specs.firstIndex(of: layer.rope)! }
    }

    /// `model` (its weights, buffers and rotary tables, shared) on `lanes` lanes.
    init(sharing model: DecoderModel, lanes: Int) {
        weights = model.weights
        buffers = model.buffers
        self.lanes = max(1, lanes)
        rotaries = model.rotaries
        ropeIndex = model.ropeIndex
    }

    public var maxPositions: Int { rotaries.first?.maxPositions ?? 0 }

    /// Layer `index`'s rotary table.
    func rotary(layer index: Int) -> RotaryTable { rotaries[ropeIndex[index]] }

    // MARK: - Forward

    /// Runs the decoder over `tokens` and returns the final-normed hidden states (N, C). The
    /// tokens are sequences of `lengths` packed back to back (each attends to itself only; a B × T
    /// batch is B lengths of T); nil is one sequence. With a `cache` (one sequence, its first slot)
    /// the tokens continue the cached sequence and their keys/values are appended. `adapters` add
    /// LoRA terms to the projections. (`observeInputs` shows the projections' inputs to an observer.)
    public func hiddenStates(tokens: [Int32], lengths: [Int]? = nil, cache: KVCache? = nil, adapters: ModelAdapters? = nil) -> [Float] {
        let lengths = lengths ?? [tokens.count]
        if let cache {
            precondition(lengths.count == 1, "a cache without slots serves one sequence")
            return hiddenStates(tokens: tokens, lengths: lengths, cache: cache, slots: [0], adapters: adapters)
        }
        precondition(lengths.reduce(0, +) == tokens.count && lengths.allSatisfy { $0 >= 0 }, "lengths must sum to the tokens")
        precondition((lengths.max() ?? 0) <= maxPositions, "sequence of \(lengths.max() ?? 0) positions exceeds \(maxPositions)")
        return decode(tokens, lengths: lengths, positions: Self.positions(lengths: lengths), cache: nil, adapters: adapters)
    }

    /// Continues several cached sequences in one pass: `tokens` holds `lengths[i]` new tokens of
    /// the sequence in slot `slots[i]` of `cache`, packed back to back (a prompt to prefill, or
    /// the one token just chosen); each attends to its own slot's keys only. Returns the
    /// final-normed hidden states (N, C) of the new rows and advances each slot's length.
    public func hiddenStates(tokens: [Int32], lengths: [Int], cache: KVCache, slots: [Int], adapters: ModelAdapters? = nil) -> [Float] {
        precondition(lengths.count == slots.count && Set(slots).count == slots.count
                     && slots.allSatisfy { $0 >= 0 && $0 < cache.sequences }, "slots \(slots) of a \(cache.sequences)-slot cache")
        precondition(lengths.reduce(0, +) == tokens.count && lengths.allSatisfy { $0 >= 0 }, "lengths must sum to the tokens")
        let starts = slots.map { cache.lengths[$0] }
        for (start, n) in zip(starts, lengths) {
            precondition(start + n <= min(cache.capacity, maxPositions),
                         "sequence of \(start + n) positions exceeds the cache's \(cache.capacity) or the model's \(maxPositions)")
        }
        let hidden = decode(tokens, lengths: lengths, positions: Self.positions(lengths: lengths, starts: starts),
                            cache: (cache, CachedRows.Placement(keyRows: slots.map { $0 * cache.capacity }, starts: starts)),
                            adapters: adapters)
        for (slot, n) in zip(slots, lengths) { cache.lengths[slot] += n }
        return hidden
    }

    /// Runs the first `layers` layers over packed sequences of `lengths` tokens, only to show each
    /// projection group's inputs to `observer` (calibration): the layers after the last one whose
    /// inputs it still needs are not run.
    public func observeInputs(tokens: [Int32], lengths: [Int], layers: Int, observer: ProjectionInputObserver) {
        precondition(lengths.reduce(0, +) == tokens.count && lengths.allSatisfy { $0 >= 0 }, "lengths must sum to the tokens")
        precondition((lengths.max() ?? 0) <= maxPositions, "sequence of \(lengths.max() ?? 0) positions exceeds \(maxPositions)")
        _ = decode(tokens, lengths: lengths, positions: Self.positions(lengths: lengths), cache: nil, adapters: nil,
                   observer: observer, layers: max(0, min(layers, config.numHiddenLayers)))
    }

    /// The decoder over packed sequences whose rows sit at `positions`, each continuing its place
    /// in `cache` when there is one; with `layers`, only the first ones and no final norm.
    private func decode(_ tokens: [Int32], lengths: [Int], positions: [Int32], cache: (KVCache, CachedRows.Placement)?,
                        adapters: ModelAdapters?, observer: ProjectionInputObserver? = nil, layers: Int? = nil) -> [Float] {
        let c = config, N = tokens.count
        BLAS.threadCount = 1
        var x = embed(tokens)
        let work = Workspace(rows: N, config: c)
        x.withUnsafeMutableBufferPointer { xp in
            positions.withUnsafeBufferPointer { pos in
                for i in 0..<(layers ?? c.numHiddenLayers) {
                    forwardLayer(i, x: xp.baseAddress!, work: work, lengths: lengths, positions: pos.baseAddress!, rows: N,
                                 cache: cache.map { CachedRows(layer: $0.0.layers[i], placement: $0.1) },
                                 adapters: adapters?.layers[i], tape: nil, observer: observer)
                }
            }
        }
        return layers == nil ? finalNorm(x, rows: N, rstd: nil) : x
    }

    /// Each row's position: `starts[i] + t` for the t-th token of sequence i (starts 0 when nil).
    static func positions(lengths: [Int], starts: [Int]? = nil) -> [Int32] {
        lengths.indices.flatMap { i in (0..<lengths[i]).map { Int32((starts?[i] ?? 0) + $0) } }
    }

    /// Rows of the embedding table (N, C), times the block's embedding scale if it has one.
    func embed(_ tokens: [Int32]) -> [Float] {
        let C = config.hiddenSize
        var x = [Float](repeating: 0, count: tokens.count * C)
        let embedding = embeddingWeight
        x.withUnsafeMutableBufferPointer { xp in
            for (n, t) in tokens.enumerated() { embedding.copyRow(Int(t), into: xp.baseAddress! + n * C) }
            if let scale = config.block.embeddingScale {
                for i in xp.indices { xp[i] *= scale }
            }
        }
        return x
    }

    /// `body` with a norm's effective scale: the weight itself, or weight + 1 for Gemma's
    /// `(1 + w)` norms (computed into a temporary of the weight's size).
    func withNormScale<R>(_ weight: any DenseWeight, _ body: (UnsafePointer<Float>) -> R) -> R {
        let offset = config.block.normWeightOffset
        return weight.withValues { w in
            guard offset != 0 else { return body(w) }
            let n = weight.rows * weight.cols
            return withUnsafeTemporaryAllocation(of: Float.self, capacity: n) { t in
                for i in 0..<n { t[i] = w[i] + offset }
                return body(t.baseAddress!)
            }
        }
    }

    /// The final RMSNorm of the residual stream (N, C).
    func finalNorm(_ x: [Float], rows N: Int, rstd: UnsafeMutablePointer<Float>?) -> [Float] {
        let C = config.hiddenSize
        var out = [Float](repeating: 0, count: N * C)
        x.withUnsafeBufferPointer { xp in
            withNormScale(finalNormWeight) { w in
                out.withUnsafeMutableBufferPointer { o in
                    RMSNorm.forward(x: xp.baseAddress!, weight: w, y: o.baseAddress!, rstd: rstd,
                                    rows: N, cols: C, eps: Float(config.rmsNormEps), lanes: lanes)
                }
            }
        }
        return out
    }

    /// Logits (rows, V) of `rows` hidden rows (each C wide).
    public func logits(hidden: UnsafePointer<Float>, rows: Int) -> [Float] {
        // β = 0 overwrites every value: no zero-filling pass over the rows × V floats first.
        [Float](unsafeUninitializedCapacity: rows * config.vocabSize) { o, count in
            logits(hidden: hidden, rows: rows, into: o.baseAddress!)
            count = rows * config.vocabSize
        }
    }

    /// Logits (rows, V) of `rows` hidden rows into `out` (rows × V floats, overwritten). A caller
    /// that scores many blocks keeps one buffer: a fresh rows × V array costs the kernel's page
    /// faults on every call (537 MB for 512 rows of Gemma 3's vocabulary).
    public func logits(hidden: UnsafePointer<Float>, rows: Int, into out: UnsafeMutablePointer<Float>) {
        outputHeadWeight.forward(hidden, rows: rows, into: out, beta: 0, lanes: lanes)
    }
}
