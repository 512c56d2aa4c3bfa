import Formats
import LinearAlgebra

/// Buffers of a training step for up to `capacityRows` rows and adapters of rank ≤ `maxRank`,
/// allocated once and reused by every step (shorter batches use a prefix).
///
/// With `checkpointing` (gradient checkpointing), only each layer's input is kept,
/// `layerInputs` (L, capacityRows, C), and one tape is shared: backward recomputes a layer's
/// forward from its input just before that layer's backward. The recomputation runs the same
/// kernels on the same values, so the gradients are bit-identical to the taped path; the
/// memory of L tapes (≈ 6 k floats per row per layer for SmolLM2) becomes L·C floats per row.
public final class TrainingScratch {
    public let capacityRows: Int
    let tapes: [LayerTape]
    let work: Workspace
    let grad: BackwardWorkspace
    /// (L, capacityRows, C) layer inputs when checkpointing, else nil.
    let layerInputs: UnsafeMutablePointer<Float>?
    /// (capacityRows, C) the residual stream of a recomputed layer, when checkpointing.
    let recomputed: UnsafeMutablePointer<Float>?
    /// The output head's per-lane logits chunks.
    let head: LaneScratch

    public let maxRank: Int
    public var checkpointing: Bool { layerInputs != nil }

    public init(model: LlamaModel, capacityRows: Int, maxRank: Int, checkpointing: Bool = false) {
        self.capacityRows = capacityRows
        self.maxRank = maxRank
        let c = model.config
        let tapeCount = checkpointing ? 1 : c.numHiddenLayers
        tapes = (0..<tapeCount).map { _ in LayerTape(rows: capacityRows, config: c, maxRank: maxRank) }
        work = Workspace(rows: capacityRows, config: c)
        grad = BackwardWorkspace(rows: capacityRows, config: c)
        layerInputs = checkpointing ? .allocate(capacity: max(1, c.numHiddenLayers * capacityRows * c.hiddenSize)) : nil
        recomputed = checkpointing ? .allocate(capacity: max(1, capacityRows * c.hiddenSize)) : nil
        head = model.headScratch()
    }

    deinit {
        layerInputs?.deallocate()
        recomputed?.deallocate()
    }
}

extension LlamaModel {
    /// One forward and backward pass of sequences of `lengths` tokens packed back to back (each
    /// attends to itself only, so no row is padding; a B × T batch is B lengths of T).
    ///
    /// `targets[n]` is the token row n must predict, or −1 where no loss is taken (prompt, a
    /// sequence's last token). Returns Σ NLL over the targets; adds d(Σ NLL / normalizer) into the
    /// adapters' gradient buffers, and into the weights' when the model reads them from `buffers`
    /// with gradients (full fine-tuning; pass `LlamaAdapters(layerCount:)` without adapters). Pass
    /// the number of supervised tokens of the whole (accumulated) batch as `normalizer` to get the
    /// mean loss's gradient.
    public func lossAndGradients(tokens: [Int32], targets: [Int32], lengths: [Int], adapters: LlamaAdapters,
                                 normalizer: Float, scratch: TrainingScratch) -> Double {
        let c = config
        let N = tokens.count, C = c.hiddenSize
        precondition(lengths.reduce(0, +) == N && lengths.allSatisfy { $0 >= 0 } && targets.count == N,
                     "lengths must sum to the tokens, one target per token")
        precondition(N <= scratch.capacityRows, "batch of \(N) rows exceeds the scratch capacity \(scratch.capacityRows)")
        precondition((lengths.max() ?? 0) <= maxPositions, "sequence of \(lengths.max() ?? 0) positions exceeds \(maxPositions)")
        precondition(adapters.maxRank <= scratch.maxRank, "adapter rank \(adapters.maxRank) exceeds the scratch's \(scratch.maxRank)")
        BLAS.threadCount = 1
        let positions = Self.positions(lengths: lengths)
        var x = embed(tokens)
        let finalRstd = UnsafeMutablePointer<Float>.allocate(capacity: N)
        defer { finalRstd.deallocate() }
        return positions.withUnsafeBufferPointer { pos -> Double in
            x.withUnsafeMutableBufferPointer { xb in
                for i in 0..<c.numHiddenLayers {
                    let input = scratch.layerInputs.map { $0 + i * scratch.capacityRows * C }
                    input?.update(from: xb.baseAddress!, count: N * C)
                    forwardLayer(i, x: xb.baseAddress!, work: scratch.work, lengths: lengths, positions: pos.baseAddress!, rows: N,
                                 cache: nil, adapters: adapters.layers[i], tape: input == nil ? scratch.tapes[i] : nil)
                }
            }
            let z = finalNorm(x, rows: N, rstd: finalRstd)
            var dx = [Float](repeating: 0, count: N * C)
            let loss = z.withUnsafeBufferPointer { zp in
                dx.withUnsafeMutableBufferPointer { dz in
                    headLossAndBackward(z: zp.baseAddress!, targets: targets, normalizer: normalizer, dz: dz.baseAddress!,
                                        dHead: outputHeadWeight.gradient, reusable: scratch.head)
                }
            }
            // Final norm backward: dz → d x_L (written into the workspace, then copied back).
            x.withUnsafeBufferPointer { xp in
                finalNormWeight.withValues { w in
                    dx.withUnsafeMutableBufferPointer { d in
                        RMSNorm.backward(dy: d.baseAddress!, x: xp.baseAddress!, weight: w, rstd: finalRstd,
                                         dx: scratch.grad.dh, rows: N, cols: C, accumulate: false, lanes: lanes)
                        if let dw = finalNormWeight.gradient {
                            RMSNorm.backwardWeight(dy: d.baseAddress!, x: xp.baseAddress!, rstd: finalRstd, dWeight: dw, rows: N, cols: C)
                        }
                        d.baseAddress!.update(from: scratch.grad.dh, count: N * C)
                    }
                }
            }
            dx.withUnsafeMutableBufferPointer { d in
                for i in stride(from: c.numHiddenLayers - 1, through: 0, by: -1) {
                    var tape = scratch.tapes[0]
                    if let inputs = scratch.layerInputs, let xr = scratch.recomputed {
                        xr.update(from: inputs + i * scratch.capacityRows * C, count: N * C)
                        forwardLayer(i, x: xr, work: scratch.work, lengths: lengths, positions: pos.baseAddress!, rows: N,
                                     cache: nil, adapters: adapters.layers[i], tape: tape)
                    } else {
                        tape = scratch.tapes[i]
                    }
                    backwardLayer(i, dx: d.baseAddress!, tape: tape, work: scratch.work, grad: scratch.grad,
                                  lengths: lengths, positions: pos.baseAddress!, rows: N, adapters: adapters.layers[i])
                }
                if let dE = embeddingWeight.gradient { embedBackward(tokens: tokens, dx: d.baseAddress!, dEmbedding: dE) }
            }
            return loss
        }
    }
}
