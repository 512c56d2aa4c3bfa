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
/// worker threads (PLATFORM.md). An adapter training step on several sequences gives each lane
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
        let positions = maxPositions ?? min(c.maxPositionEmbeddings, 8192)
        rotaries = specs.map { RotaryTable(headDim: c.headDim, maxPositions: positions, theta: $0.theta) }
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
    /// batch is B lengths of T); nil is one sequence. With a `cache` (one sequence) the tokens
    /// continue the cached sequence and their keys/values are appended. `adapters` add LoRA terms
    /// to the projections; `observer` sees every projection group's input.
    public func hiddenStates(tokens: [Int32], lengths: [Int]? = nil, cache: KVCache? = nil, adapters: ModelAdapters? = nil,
                             observer: ProjectionInputObserver? = nil) -> [Float] {
        let c = config
        let N = tokens.count
        let lengths = lengths ?? [N]
        precondition(lengths.reduce(0, +) == N && lengths.allSatisfy { $0 >= 0 }, "lengths must sum to the tokens")
        precondition(cache == nil || lengths.count == 1, "a cache serves one sequence")
        let start = cache?.length ?? 0
        precondition(start + (lengths.max() ?? 0) <= maxPositions, "sequence of \(start + (lengths.max() ?? 0)) positions exceeds \(maxPositions)")
        BLAS.threadCount = 1
        let positions = Self.positions(lengths: lengths, start: start)
        var x = embed(tokens)
        let work = Workspace(rows: N, config: c)
        x.withUnsafeMutableBufferPointer { xp in
            positions.withUnsafeBufferPointer { pos in
                for i in 0..<c.numHiddenLayers {
                    forwardLayer(i, x: xp.baseAddress!, work: work, lengths: lengths, positions: pos.baseAddress!, rows: N,
                                 cache: cache?.layers[i], adapters: adapters?.layers[i], tape: nil, observer: observer)
                }
            }
        }
        cache?.length = start + N
        return finalNorm(x, rows: N, rstd: nil)
    }

    /// Each row's position: `start + t` for the t-th token of its sequence.
    static func positions(lengths: [Int], start: Int = 0) -> [Int32] {
        lengths.flatMap { n in (0..<n).map { Int32(start + $0) } }
    }

    /// Rows of the embedding table (N, C), times the block's embedding scale if it has one.
    func embed(_ tokens: [Int32]) -> [Float] {
        let C = config.hiddenSize
        var x = [Float](repeating: 0, count: tokens.count * C)
        embeddingWeight.withValues { e in
            x.withUnsafeMutableBufferPointer { xp in
                for (n, t) in tokens.enumerated() {
                    (xp.baseAddress! + n * C).update(from: e + Int(t) * C, count: C)
                }
                if let scale = config.block.embeddingScale {
                    for i in xp.indices { xp[i] *= scale }
                }
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
        let V = config.vocabSize
        var out = [Float](repeating: 0, count: rows * V)
        let head = outputHeadWeight
        out.withUnsafeMutableBufferPointer { o in
            head.withValues { w in
                DenseLinear.forward(w, outF: head.rows, inF: head.cols, x: hidden, rows: rows, into: o.baseAddress!, beta: 0, lanes: lanes)
            }
        }
        return out
    }
}
