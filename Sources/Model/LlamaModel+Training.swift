import Formats
import LinearAlgebra

/// Buffers of a training step for up to `capacityRows` rows and adapters of rank ≤ `maxRank`,
/// allocated once and reused by every step (shorter batches use a prefix).
public final class TrainingScratch {
    public let capacityRows: Int
    let tapes: [LayerTape]
    let work: Workspace
    let grad: BackwardWorkspace

    public let maxRank: Int

    public init(model: LlamaModel, capacityRows: Int, maxRank: Int) {
        self.capacityRows = capacityRows
        self.maxRank = maxRank
        let c = model.config
        tapes = (0..<c.numHiddenLayers).map { _ in LayerTape(rows: capacityRows, config: c, maxRank: maxRank) }
        work = Workspace(rows: capacityRows, config: c)
        grad = BackwardWorkspace(rows: capacityRows, config: c)
    }
}

extension LlamaModel {
    /// One forward and backward pass of a right-padded batch (B sequences of T tokens).
    ///
    /// `targets[n]` is the token row n must predict, or −1 where no loss is taken (prompt,
    /// padding). Returns Σ NLL over the targets; adds d(Σ NLL / normalizer) into the adapters'
    /// gradient buffers. Pass the number of supervised tokens of the whole (accumulated) batch as
    /// `normalizer` to get the mean loss's gradient.
    public func lossAndGradients(tokens: [Int32], targets: [Int32], batch: Int, adapters: LlamaAdapters,
                                 normalizer: Float, scratch: TrainingScratch) -> Double {
        let c = config
        let N = tokens.count, T = N / batch, C = c.hiddenSize
        precondition(N == batch * T && targets.count == N, "tokens and targets must both be B×T")
        precondition(N <= scratch.capacityRows, "batch of \(N) rows exceeds the scratch capacity \(scratch.capacityRows)")
        precondition(T <= maxPositions, "sequence of \(T) positions exceeds \(maxPositions)")
        precondition(adapters.maxRank <= scratch.maxRank, "adapter rank \(adapters.maxRank) exceeds the scratch's \(scratch.maxRank)")
        BLAS.threadCount = 1
        let positions = (0..<N).map { Int32($0 % T) }
        var x = embed(tokens)
        let finalRstd = UnsafeMutablePointer<Float>.allocate(capacity: N)
        defer { finalRstd.deallocate() }
        return positions.withUnsafeBufferPointer { pos -> Double in
            x.withUnsafeMutableBufferPointer { xb in
                for i in 0..<c.numHiddenLayers {
                    forwardLayer(i, x: xb.baseAddress!, work: scratch.work, batch: batch, positions: pos.baseAddress!, rows: N,
                                 cache: nil, adapters: adapters.layers[i], tape: scratch.tapes[i])
                }
            }
            let z = finalNorm(x, rows: N, rstd: finalRstd)
            var dx = [Float](repeating: 0, count: N * C)
            let loss = z.withUnsafeBufferPointer { zp in
                dx.withUnsafeMutableBufferPointer { dz in
                    headLossAndBackward(z: zp.baseAddress!, targets: targets, normalizer: normalizer, dz: dz.baseAddress!)
                }
            }
            // Final norm backward: dz → d x_L (written into the workspace, then copied back).
            x.withUnsafeBufferPointer { xp in
                weights.finalNorm.withUnsafeBufferPointer { w in
                    dx.withUnsafeMutableBufferPointer { d in
                        RMSNorm.backward(dy: d.baseAddress!, x: xp.baseAddress!, weight: w.baseAddress!, rstd: finalRstd,
                                         dx: scratch.grad.dh, rows: N, cols: C, accumulate: false)
                        d.baseAddress!.update(from: scratch.grad.dh, count: N * C)
                    }
                }
            }
            dx.withUnsafeMutableBufferPointer { d in
                for i in stride(from: c.numHiddenLayers - 1, through: 0, by: -1) {
                    backwardLayer(i, dx: d.baseAddress!, tape: scratch.tapes[i], work: scratch.work, grad: scratch.grad,
                                  batch: batch, positions: pos.baseAddress!, rows: N, adapters: adapters.layers[i])
                }
            }
            return loss
        }
    }
}
