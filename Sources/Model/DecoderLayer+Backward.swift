import Formats
import LinearAlgebra

/// Gradient buffers of one backward pass, reused by every layer.
final class BackwardWorkspace {
    private let buffers: RowBuffers
    var dAct: UnsafeMutablePointer<Float> { buffers[0] }    // (N, F)
    var dGate: UnsafeMutablePointer<Float> { buffers[1] }   // (N, F)
    var dUp: UnsafeMutablePointer<Float> { buffers[2] }     // (N, F)
    var dh: UnsafeMutablePointer<Float> { buffers[3] }      // (N, C)
    var dAttn: UnsafeMutablePointer<Float> { buffers[4] }   // (N, H·D)
    var dq: UnsafeMutablePointer<Float> { buffers[5] }      // (N, H·D)
    var dk: UnsafeMutablePointer<Float> { buffers[6] }      // (N, KV·D)
    var dv: UnsafeMutablePointer<Float> { buffers[7] }      // (N, KV·D)
    /// (N, C) the gradient of a sub-layer's output before its sandwich norm (Gemma).
    var dSub: UnsafeMutablePointer<Float> { buffers[8] }
    /// (N, (H + 2·KV)·D) the gradient of a fused qkv projection's output (Phi-3).
    var dQKV: UnsafeMutablePointer<Float> { buffers[9] }
    /// (N, 2F) the gradient of a fused gate_up projection's output (Phi-3).
    var dGateUp: UnsafeMutablePointer<Float> { buffers[10] }
    // A mixture of experts: dAct, dGate and dUp above hold the N·K routed rows (K·F per token).
    /// (N·K, C) the gradient of each routed row's expert output (its routing weight applied).
    var dRoutedOut: UnsafeMutablePointer<Float> { buffers[11] }
    /// (N·K, C) the gradient of each routed row's input.
    var dRoutedIn: UnsafeMutablePointer<Float> { buffers[12] }
    /// (N, E) the gradient of the router's logits.
    var dRouter: UnsafeMutablePointer<Float> { buffers[13] }

    /// Floats per row of each buffer.
    static func widths(_ c: ModelConfig) -> [Int] {
        let (C, F) = (c.hiddenSize, c.intermediateSize), layout = c.block.layout
        let (E, K) = layout.expertShape
        let f = max(1, K) * F
        return [f, f, f, C, c.queryWidth, c.queryWidth, c.keyValueWidth, c.keyValueWidth, c.block.sandwichNorms ? C : 0,
                layout.fusedAttention ? c.queryWidth + 2 * c.keyValueWidth : 0, layout.mlp == .fusedGated ? 2 * F : 0,
                K * C, K * C, E]
    }

    init(rows N: Int, config c: ModelConfig) {
        buffers = RowBuffers(rows: N, widths: Self.widths(c))
    }

    init(viewing parent: BackwardWorkspace, fromRow row: Int) {
        buffers = RowBuffers(viewing: parent.buffers, fromRow: row)
    }
}

extension DecoderModel {
    /// Backward of `forwardLayer`, read backwards: on entry dx (N, C) is the gradient of the
    /// layer's output, on exit of its input. Adapter gradients are added to their buffers, and
    /// so are the weights' when the model reads them from `buffers` with gradients (full
    /// fine-tuning); frozen weights get none.
    func backwardLayer(_ index: Int, dx: UnsafeMutablePointer<Float>, tape: LayerTape, work: Workspace,
                       grad: BackwardWorkspace, lengths: [Int], positions: UnsafePointer<Int32>, rows N: Int,
                       adapters: [LoRAAdapter?]?) {
        let c = config, spec = c.block, layout = spec.layout, layer = layerWeights(index)
        let C = c.hiddenSize, F = c.intermediateSize
        func gradient(_ p: Projection, _ dy: UnsafePointer<Float>) -> ProjectionGradient {
            let slot = layout.index(p)
            return ProjectionGradient(weight: layer.projections[slot], bias: layer.biases[slot], adapter: adapters?[slot], dy: dy,
                                      xa: tape.xa[slot].map { UnsafePointer($0) })
        }

        // MLP: x_out = x_mid + [n₄](down(act(gate(h₂))·up(h₂))), h₂ = n₂(x_mid)
        normForward(layer[.mlpInput], x: tape.xMid, y: work.h, rstd: nil, rows: N, cols: C)
        if case .experts = layout.mlp {   // x_out = x_mid + Σ_j w_j·expert_j(h₂)
            backwardExperts(index, dy: dx, dh: grad.dh, tape: tape, work: work, grad: grad, rows: N, adapters: adapters)
            normBackward(layer[.mlpInput], dy: grad.dh, x: tape.xMid, rstd: tape.rstd2, dx: dx, rows: N, cols: C, accumulate: true)
            return backwardAttention(index, dx: dx, tape: tape, work: work, grad: grad, lengths: lengths, positions: positions, rows: N,
                                     gradient: gradient)
        }
        GatedMLP.forward(spec.activation, gate: tape.gate, up: tape.up, out: work.act, rows: N, width: F, lanes: lanes)
        var dDown = UnsafePointer(dx)
        if spec.sandwichNorms {
            normBackward(layer[.mlpOutput], dy: dx, x: tape.mlpOut, rstd: tape.rstd4, dx: grad.dSub, rows: N, cols: C, accumulate: false)
            dDown = UnsafePointer(grad.dSub)
        }
        projectBackward([gradient(.down, dDown)], x: work.act, dx: grad.dAct, rows: N, accumulate: false)
        GatedMLP.backward(spec.activation, dh: grad.dAct, gate: tape.gate, up: tape.up, dGate: grad.dGate, dUp: grad.dUp,
                          rows: N, width: F, lanes: lanes)
        if layout.mlp == .fusedGated {
            Columns.join([(grad.dGate, F), (grad.dUp, F)], rows: N, into: grad.dGateUp)
            projectBackward([gradient(.gateUp, grad.dGateUp)], x: work.h, dx: grad.dh, rows: N, accumulate: false)
        } else {
            projectBackward([gradient(.gate, grad.dGate), gradient(.up, grad.dUp)], x: work.h, dx: grad.dh, rows: N, accumulate: false)
        }
        normBackward(layer[.mlpInput], dy: grad.dh, x: tape.xMid, rstd: tape.rstd2, dx: dx, rows: N, cols: C, accumulate: true)
        backwardAttention(index, dx: dx, tape: tape, work: work, grad: grad, lengths: lengths, positions: positions, rows: N,
                          gradient: gradient)
    }

    /// The attention half of `backwardLayer`: on entry dx is the gradient of x_mid, on exit of x_in.
    /// x_mid = x_in + [n₃](o(attention(rope([n_q]q(h₁)), rope([n_k]k(h₁)), v(h₁)))), h₁ = n₁(x_in).
    private func backwardAttention(_ index: Int, dx: UnsafeMutablePointer<Float>, tape: LayerTape, work: Workspace,
                                   grad: BackwardWorkspace, lengths: [Int], positions: UnsafePointer<Int32>, rows N: Int,
                                   gradient: (Projection, UnsafePointer<Float>) -> ProjectionGradient) {
        let c = config, spec = c.block, layer = layerWeights(index), rotary = rotary(layer: index)
        let C = c.hiddenSize
        let (H, KV, D) = (c.numAttentionHeads, c.numKeyValueHeads, c.headDim)
        var dO = UnsafePointer(dx)
        if spec.sandwichNorms {
            normBackward(layer[.attentionOutput], dy: dx, x: tape.attnOut, rstd: tape.rstd3, dx: grad.dSub, rows: N, cols: C,
                         accumulate: false)
            dO = UnsafePointer(grad.dSub)
        }
        projectBackward([gradient(.o, dO)], x: tape.attn, dx: grad.dAttn, rows: N, accumulate: false)
        var (q, k) = (tape.q, tape.k)
        if spec.queryKeyNorm {   // not kept: normed and rotated again from the projections' outputs, as forward did
            (q, k) = (work.q, work.k)
            normForward(layer[.query], x: tape.qRaw, y: q, rstd: nil, rows: N * H, cols: D)
            normForward(layer[.key], x: tape.kRaw, y: k, rstd: nil, rows: N * KV, cols: D)
            rotary.apply(q, rows: N, heads: H, positions: positions, lanes: lanes)
            rotary.apply(k, rows: N, heads: KV, positions: positions, lanes: lanes)
        }
        Attention.backward(dOut: grad.dAttn, q: q, k: k, v: tape.v, dq: grad.dq, dk: grad.dk, dv: grad.dv,
                           shape: .packed(lengths: lengths, heads: H, kvHeads: KV, headDim: D, scale: Float(spec.attentionScale),
                                          window: c.layers[index].slidingWindow),
                           lanes: lanes)
        rotary.apply(grad.dq, rows: N, heads: H, positions: positions, inverse: true, lanes: lanes)
        rotary.apply(grad.dk, rows: N, heads: KV, positions: positions, inverse: true, lanes: lanes)
        if spec.queryKeyNorm {
            // In place: each row's gradient is read (for its dot product) before it is written.
            normBackward(layer[.query], dy: grad.dq, x: tape.qRaw, rstd: tape.qRstd, dx: grad.dq, rows: N * H, cols: D, accumulate: false)
            normBackward(layer[.key], dy: grad.dk, x: tape.kRaw, rstd: tape.kRstd, dx: grad.dk, rows: N * KV, cols: D, accumulate: false)
        }
        normForward(layer[.attentionInput], x: tape.xIn, y: work.h, rstd: nil, rows: N, cols: C)
        if spec.layout.fusedAttention {
            Columns.join([(grad.dq, H * D), (grad.dk, KV * D), (grad.dv, KV * D)], rows: N, into: grad.dQKV)
            projectBackward([gradient(.qkv, grad.dQKV)], x: work.h, dx: grad.dh, rows: N, accumulate: false)
        } else {
            projectBackward([gradient(.q, grad.dq), gradient(.k, grad.dk), gradient(.v, grad.dv)], x: work.h, dx: grad.dh, rows: N,
                            accumulate: false)
        }
        normBackward(layer[.attentionInput], dy: grad.dh, x: tape.xIn, rstd: tape.rstd1, dx: dx, rows: N, cols: C, accumulate: true)
    }

    /// Backward of `normForward`: the weight's gradient first (when trained; it reads dy), then
    /// dx (+)= ∂/∂x. dy and dx may be the same buffer when `accumulate` is false.
    func normBackward(_ weight: any DenseWeight, dy: UnsafePointer<Float>, x: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                      dx: UnsafeMutablePointer<Float>, rows: Int, cols: Int, accumulate: Bool) {
        if let dw = weight.gradient {
            RMSNorm.backwardWeight(dy: dy, x: x, rstd: rstd, dWeight: dw, rows: rows, cols: cols)
        }
        withNormScale(weight) { w in
            RMSNorm.backward(dy: dy, x: x, weight: w, rstd: rstd, dx: dx, rows: rows, cols: cols, accumulate: accumulate, lanes: lanes)
        }
    }
}
