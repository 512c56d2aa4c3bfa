import Formats
import LinearAlgebra

/// Gradient buffers of one backward pass, reused by every layer.
final class BackwardWorkspace {
    let dAct, dGate, dUp: UnsafeMutablePointer<Float>   // (N, F)
    let dh: UnsafeMutablePointer<Float>                 // (N, C)
    let dAttn, dq: UnsafeMutablePointer<Float>          // (N, H·D)
    let dk, dv: UnsafeMutablePointer<Float>             // (N, KV·D)
    private let all: [UnsafeMutablePointer<Float>]

    init(rows N: Int, config c: ModelConfig) {
        let qw = c.numAttentionHeads * c.headDim, kvw = c.numKeyValueHeads * c.headDim, F = c.intermediateSize
        func buffer(_ n: Int) -> UnsafeMutablePointer<Float> { .allocate(capacity: max(1, n)) }
        dAct = buffer(N * F); dGate = buffer(N * F); dUp = buffer(N * F)
        dh = buffer(N * c.hiddenSize)
        dAttn = buffer(N * qw); dq = buffer(N * qw)
        dk = buffer(N * kvw); dv = buffer(N * kvw)
        all = [dAct, dGate, dUp, dh, dAttn, dq, dk, dv]
    }

    /// Rows from `row` on of `parent`'s buffers, neither copied nor freed (one lane's share of a
    /// data-parallel step); the parent must outlive the view.
    init(viewing parent: BackwardWorkspace, fromRow row: Int, config c: ModelConfig) {
        let qw = c.numAttentionHeads * c.headDim, kvw = c.numKeyValueHeads * c.headDim, F = c.intermediateSize
        dAct = parent.dAct + row * F; dGate = parent.dGate + row * F; dUp = parent.dUp + row * F
        dh = parent.dh + row * c.hiddenSize
        dAttn = parent.dAttn + row * qw; dq = parent.dq + row * qw
        dk = parent.dk + row * kvw; dv = parent.dv + row * kvw
        all = []
    }

    deinit { for b in all { b.deallocate() } }
}

extension DecoderModel {
    /// Backward of `forwardLayer`, read backwards: on entry dx (N, C) is the gradient of the
    /// layer's output, on exit of its input. Adapter gradients are added to their buffers, and
    /// so are the weights' when the model reads them from `buffers` with gradients (full
    /// fine-tuning); frozen weights get none.
    func backwardLayer(_ index: Int, dx: UnsafeMutablePointer<Float>, tape: LayerTape, work: Workspace,
                       grad: BackwardWorkspace, lengths: [Int], positions: UnsafePointer<Int32>, rows N: Int,
                       adapters: [LoRAAdapter?]?) {
        let c = config, layer = layerWeights(index)
        let C = c.hiddenSize, F = c.intermediateSize
        let (H, KV, D) = (c.numAttentionHeads, c.numKeyValueHeads, c.headDim)
        let eps = Float(c.rmsNormEps)
        func gradient(_ p: Projection, _ dy: UnsafePointer<Float>) -> ProjectionGradient {
            ProjectionGradient(weight: layer[p], adapter: adapters?[p.rawValue], dy: dy, xa: tape.xa[p.rawValue].map { UnsafePointer($0) })
        }

        // MLP: x_out = x_mid + down(silu(gate(h₂))·up(h₂)), h₂ = norm₂(x_mid)
        layer.postAttentionNorm.withValues { w in
            RMSNorm.forward(x: tape.xMid, weight: w, y: work.h, rstd: nil, rows: N, cols: C, eps: eps, lanes: lanes)
        }
        SwiGLU.forward(gate: tape.gate, up: tape.up, out: work.act, rows: N, width: F, lanes: lanes)
        projectBackward([gradient(.down, dx)], x: work.act, dx: grad.dAct, rows: N, accumulate: false)
        SwiGLU.backward(dh: grad.dAct, gate: tape.gate, up: tape.up, dGate: grad.dGate, dUp: grad.dUp, rows: N, width: F, lanes: lanes)
        projectBackward([gradient(.gate, grad.dGate), gradient(.up, grad.dUp)], x: work.h, dx: grad.dh, rows: N, accumulate: false)
        layer.postAttentionNorm.withValues { w in
            RMSNorm.backward(dy: grad.dh, x: tape.xMid, weight: w, rstd: tape.rstd2, dx: dx, rows: N, cols: C, accumulate: true, lanes: lanes)
        }
        if let dw = layer.postAttentionNorm.gradient {
            RMSNorm.backwardWeight(dy: grad.dh, x: tape.xMid, rstd: tape.rstd2, dWeight: dw, rows: N, cols: C)
        }

        // Attention: x_mid = x_in + o(attention(rope(q(h₁)), rope(k(h₁)), v(h₁))), h₁ = norm₁(x_in)
        projectBackward([gradient(.o, dx)], x: tape.attn, dx: grad.dAttn, rows: N, accumulate: false)
        Attention.backward(dOut: grad.dAttn, q: tape.q, k: tape.k, v: tape.v, dq: grad.dq, dk: grad.dk, dv: grad.dv,
                           shape: .packed(lengths: lengths, heads: H, kvHeads: KV, headDim: D), lanes: lanes)
        rotary.apply(grad.dq, rows: N, heads: H, positions: positions, inverse: true, lanes: lanes)
        rotary.apply(grad.dk, rows: N, heads: KV, positions: positions, inverse: true, lanes: lanes)
        layer.inputNorm.withValues { w in
            RMSNorm.forward(x: tape.xIn, weight: w, y: work.h, rstd: nil, rows: N, cols: C, eps: eps, lanes: lanes)
        }
        projectBackward([gradient(.q, grad.dq), gradient(.k, grad.dk), gradient(.v, grad.dv)], x: work.h, dx: grad.dh, rows: N, accumulate: false)
        layer.inputNorm.withValues { w in
            RMSNorm.backward(dy: grad.dh, x: tape.xIn, weight: w, rstd: tape.rstd1, dx: dx, rows: N, cols: C, accumulate: true, lanes: lanes)
        }
        if let dw = layer.inputNorm.gradient {
            RMSNorm.backwardWeight(dy: grad.dh, x: tape.xIn, rstd: tape.rstd1, dWeight: dw, rows: N, cols: C)
        }
    }
}
