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
///
/// A data-parallel step gives each lane a view of its own rows of these buffers
/// (`init(viewing:…)`), so splitting the batch over the lanes costs no memory but the extra
/// lanes' adapter gradients (`laneGradients`).
public final class TrainingScratch: @unchecked Sendable {
    public let capacityRows: Int
    let tapes: [LayerTape]
    let work: Workspace
    let grad: BackwardWorkspace
    /// (L, capacityRows, C) layer inputs when checkpointing, else nil.
    let layerInputs: UnsafeMutablePointer<Float>?
    /// Floats from one layer's input to the next in `layerInputs` (the owning scratch's rows · C).
    let layerInputStride: Int
    /// (capacityRows, C) the residual stream of a recomputed layer, when checkpointing.
    let recomputed: UnsafeMutablePointer<Float>?
    /// The output head's per-lane logits chunks.
    let head: LaneScratch
    /// Adapter gradients of the lanes after the first in a data-parallel step.
    let laneGradients: LaneGradients
    /// The scratch whose buffers a view uses (kept alive by it); nil when this one owns them.
    private let parent: TrainingScratch?

    public let maxRank: Int
    public var checkpointing: Bool { layerInputs != nil }

    public init(model: DecoderModel, capacityRows: Int, maxRank: Int, checkpointing: Bool = false) {
        self.capacityRows = capacityRows
        self.maxRank = maxRank
        let c = model.config
        let tapeCount = checkpointing ? 1 : c.numHiddenLayers
        tapes = (0..<tapeCount).map { _ in LayerTape(rows: capacityRows, config: c, maxRank: maxRank) }
        work = Workspace(rows: capacityRows, config: c)
        grad = BackwardWorkspace(rows: capacityRows, config: c)
        layerInputs = checkpointing ? .allocate(capacity: max(1, c.numHiddenLayers * capacityRows * c.hiddenSize)) : nil
        layerInputStride = capacityRows * c.hiddenSize
        recomputed = checkpointing ? .allocate(capacity: max(1, capacityRows * c.hiddenSize)) : nil
        head = model.headScratch()
        laneGradients = LaneGradients()
        parent = nil
    }

    /// Rows `rows` of `parent`'s buffers and its head scratch of `headLanes` (a new one if the
    /// parent has fewer), for one lane of a data-parallel step; nothing is copied, and the parent
    /// outlives the view.
    init(viewing parent: TrainingScratch, rows: Range<Int>, headLanes: Range<Int>, config c: ModelConfig) {
        precondition(rows.upperBound <= parent.capacityRows, "rows \(rows) of a scratch for \(parent.capacityRows)")
        let (row, C) = (rows.lowerBound, c.hiddenSize)
        capacityRows = rows.count
        maxRank = parent.maxRank
        tapes = parent.tapes.map { LayerTape(viewing: $0, fromRow: row, config: c) }
        work = Workspace(viewing: parent.work, fromRow: row)
        grad = BackwardWorkspace(viewing: parent.grad, fromRow: row)
        layerInputs = parent.layerInputs.map { $0 + row * C }
        layerInputStride = parent.layerInputStride
        recomputed = parent.recomputed.map { $0 + row * C }
        head = headLanes.upperBound <= parent.head.lanes ? LaneScratch(viewing: parent.head, lanes: headLanes)
                                                         : LaneScratch(lanes: headLanes.count, count: parent.head.count)
        laneGradients = parent.laneGradients
        self.parent = parent
    }

    deinit {
        guard parent == nil else { return }
        layerInputs?.deallocate()
        recomputed?.deallocate()
    }

    /// Bytes `init(model:capacityRows:maxRank:checkpointing:)` allocates for a model of `c` on
    /// `lanes` lanes (the workspaces, the tapes, the head's per-lane chunks; full logits rows when
    /// the head is trained), computed in Double so that absurd settings cannot overflow: callers
    /// check it before allocating.
    public static func estimatedBytes(config c: ModelConfig, capacityRows rows: Int, maxRank: Int,
                                      checkpointing: Bool, lanes: Int, trainedHead: Bool = false) -> Double {
        let (C, L) = (Double(c.hiddenSize), Double(c.numHiddenLayers))
        func total(_ widths: [Int]) -> Double { widths.reduce(0.0) { $0 + Double($1) } }
        let workspace = total(Workspace.widths(c)), tape = total(LayerTape.widths(c, maxRank: maxRank))
        let backward = total(BackwardWorkspace.widths(c))
        let perRow = workspace + tape * (checkpointing ? 1 : L) + backward + (checkpointing ? (L + 1) * C : 0)
        let head = Double(max(1, lanes)) * Double(DecoderModel.headScratchFloats(rows: DecoderModel.headChunkRows, config: c,
                                                                                 trainedHead: trainedHead))
        return 4 * (Double(max(1, rows)) * perRow + head)
    }
}

extension DecoderModel {
    /// One forward and backward pass of sequences of `lengths` tokens packed back to back (each
    /// attends to itself only, so no row is padding; a B × T batch is B lengths of T).
    ///
    /// `targets[n]` is the token row n must predict, or −1 where no loss is taken (prompt, a
    /// sequence's last token). Returns Σ NLL over the targets; adds d(Σ NLL / normalizer) into the
    /// adapters' gradient buffers, and into the weights' when the model reads them from `buffers`
    /// with gradients (full fine-tuning; pass `ModelAdapters(config:)` without adapters). Pass
    /// the number of supervised tokens of the whole (accumulated) batch as `normalizer` to get the
    /// mean loss's gradient.
    ///
    /// `parallelism` says how the lanes share the step (`StepParallelism`). The choice depends on
    /// the batch only, so results are reproducible; the two ways differ by float rounding.
    public func lossAndGradients(tokens: [Int32], targets: [Int32], lengths: [Int], adapters: ModelAdapters,
                                 normalizer: Float, scratch: TrainingScratch,
                                 parallelism: StepParallelism = .automatic) -> Double {
        let N = tokens.count
        precondition(lengths.reduce(0, +) == N && lengths.allSatisfy { $0 >= 0 } && targets.count == N,
                     "lengths must sum to the tokens, one target per token")
        precondition(N <= scratch.capacityRows, "batch of \(N) rows exceeds the scratch capacity \(scratch.capacityRows)")
        precondition((lengths.max() ?? 0) <= maxPositions, "sequence of \(lengths.max() ?? 0) positions exceeds \(maxPositions)")
        precondition(adapters.maxRank <= scratch.maxRank, "adapter rank \(adapters.maxRank) exceeds the scratch's \(scratch.maxRank)")
        BLAS.threadCount = 1
        if buffers == nil, parallelism != .products,
           let groups = dataParallelGroups(targets: targets, lengths: lengths, evenOnly: parallelism == .automatic) {
            return dataParallelLossAndGradients(groups: groups, tokens: tokens, targets: targets, lengths: lengths,
                                                adapters: adapters, normalizer: normalizer, scratch: scratch)
        }
        return rowSplitLossAndGradients(tokens: tokens, targets: targets, lengths: lengths, adapters: adapters,
                                        normalizer: normalizer, scratch: scratch)
    }

    /// `lossAndGradients` with every product and kernel split across the lanes.
    func rowSplitLossAndGradients(tokens: [Int32], targets: [Int32], lengths: [Int], adapters: ModelAdapters,
                                  normalizer: Float, scratch: TrainingScratch) -> Double {
        let c = config
        let N = tokens.count, C = c.hiddenSize
        let positions = Self.positions(lengths: lengths)
        var x = embed(tokens)
        let finalRstd = UnsafeMutablePointer<Float>.allocate(capacity: N)
        defer { finalRstd.deallocate() }
        return positions.withUnsafeBufferPointer { pos -> Double in
            x.withUnsafeMutableBufferPointer { xb in
                for i in 0..<c.numHiddenLayers {
                    let input = scratch.layerInputs.map { $0 + i * scratch.layerInputStride }
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
                dx.withUnsafeMutableBufferPointer { d in
                    normBackward(finalNormWeight, dy: d.baseAddress!, x: xp.baseAddress!, rstd: finalRstd, dx: scratch.grad.dh,
                                 rows: N, cols: C, accumulate: false)
                    d.baseAddress!.update(from: scratch.grad.dh, count: N * C)
                }
            }
            dx.withUnsafeMutableBufferPointer { d in
                for i in stride(from: c.numHiddenLayers - 1, through: 0, by: -1) {
                    var tape = scratch.tapes[0]
                    if let inputs = scratch.layerInputs, let xr = scratch.recomputed {
                        xr.update(from: inputs + i * scratch.layerInputStride, count: N * C)
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
