/// The floating-point operations a training step needs, counted from the shapes: the products on
/// the batch's real tokens (padding excluded) with causal attention, and the output head on the
/// supervised rows only. Work an engine adds is not counted (padding, attention probabilities
/// recomputed in backward, layers recomputed by gradient checkpointing), nor is element-wise work
/// (norms, activations, softmax, the optimizer), so FLOPs / step time is the useful rate.
public enum StepFLOPs {
    /// One step over sequences of `lengths` tokens with `supervised` loss rows. Each frozen
    /// projection W (out, in) costs 2·n·out·in forward and as much for its input gradient; a
    /// rank-r adapter adds 6·n·r·(in + out) (two products forward, four backward); training the
    /// weights (`trainsWeights`, full fine-tuning) adds 2·n·out·in for dW and 2·S·V·C for the
    /// head. Attention on a sequence of t tokens: six products of H·D·t(t+1)/2 multiply-adds. A
    /// mixture's experts each see K/E of the rows on average (K of E experts per token).
    public static func count(weights: ModelWeights, adapters: ModelAdapters, lengths: [Int], supervised: Int,
                             trainsWeights: Bool) -> Double {
        let c = weights.config
        let n = Double(lengths.reduce(0, +))
        var flops = 0.0
        let (E, K) = c.block.layout.expertShape
        for (l, layer) in weights.layers.enumerated() {
            for (slot, w) in layer.projections.enumerated() {
                let (out, inF) = (Double(w.rows), Double(w.cols))
                let n = c.projections[slot].isDense ? n : n * Double(K) / Double(E)
                flops += (trainsWeights ? 6 : 4) * n * out * inF
                if let a = adapters.layers[l][slot] { flops += 6 * n * Double(a.rank) * (inF + out) }
            }
        }
        flops += Double(c.numHiddenLayers) * 6 * Attention.causalProductFLOPs(lengths: lengths, heads: c.numAttentionHeads, headDim: c.headDim)
        flops += (trainsWeights ? 6 : 4) * Double(supervised) * Double(c.vocabSize * c.hiddenSize)
        return flops
    }
}
