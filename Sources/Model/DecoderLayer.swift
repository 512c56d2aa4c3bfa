import Formats
import LinearAlgebra

/// Activation buffers of one forward pass, reused by every layer.
struct Workspace {
    var h: [Float]      // (N, C) normed input
    var q: [Float]      // (N, H·D)
    var k: [Float]      // (N, KV·D)
    var v: [Float]      // (N, KV·D)
    var attn: [Float]   // (N, H·D)
    var gate: [Float]   // (N, F)
    var up: [Float]     // (N, F)

    init(rows N: Int, config c: HFLlamaConfig) {
        let qw = c.numAttentionHeads * c.headDim, kvw = c.numKeyValueHeads * c.headDim
        h = [Float](repeating: 0, count: N * c.hiddenSize)
        q = [Float](repeating: 0, count: N * qw)
        k = [Float](repeating: 0, count: N * kvw)
        v = k
        attn = q
        gate = [Float](repeating: 0, count: N * c.intermediateSize)
        up = gate
    }
}

extension LlamaModel {
    /// One decoder layer, in place on the residual stream x (N, C):
    /// `x += o(attention(rope(q(norm(x))), rope(k(norm(x))), v(norm(x))))`, then
    /// `x += down(silu(gate(norm(x))) · up(norm(x)))`.
    func forwardLayer(_ layer: LlamaLayerWeights, x: inout [Float], work: inout Workspace, batch: Int,
                      positions: [Int32], cache: KVCache.Layer?) {
        let c = config
        let N = positions.count, T = N / batch, C = c.hiddenSize
        let (H, KV, D) = (c.numAttentionHeads, c.numKeyValueHeads, c.headDim)
        let eps = Float(c.rmsNormEps)
        x.withUnsafeMutableBufferPointer { xb in
            let xp = xb.baseAddress!
            work.h.withUnsafeMutableBufferPointer { hb in
                let hp = hb.baseAddress!
                layer.inputNorm.withUnsafeBufferPointer { w in
                    RMSNorm.forward(x: xp, weight: w.baseAddress!, y: hp, rstd: nil, rows: N, cols: C, eps: eps)
                }
                work.q.withUnsafeMutableBufferPointer { qb in
                work.k.withUnsafeMutableBufferPointer { kb in
                work.v.withUnsafeMutableBufferPointer { vb in
                work.attn.withUnsafeMutableBufferPointer { ab in
                    linear(hp, layer.q, qb.baseAddress!, rows: N)
                    linear(hp, layer.k, kb.baseAddress!, rows: N)
                    linear(hp, layer.v, vb.baseAddress!, rows: N)
                    positions.withUnsafeBufferPointer { pos in
                        rotary.apply(qb.baseAddress!, rows: N, heads: H, positions: pos.baseAddress!)
                        rotary.apply(kb.baseAddress!, rows: N, heads: KV, positions: pos.baseAddress!)
                    }
                    if let cache {
                        let start = Int(positions[0])
                        cache.append(k: kb.baseAddress!, v: vb.baseAddress!, rows: N, at: start)
                        Attention.forward(q: qb.baseAddress!, k: cache.k, v: cache.v, out: ab.baseAddress!, probabilities: nil,
                                          shape: .init(batch: 1, queries: N, keys: start + N, heads: H, kvHeads: KV, headDim: D),
                                          lanes: lanes)
                    } else {
                        Attention.forward(q: qb.baseAddress!, k: kb.baseAddress!, v: vb.baseAddress!, out: ab.baseAddress!,
                                          probabilities: nil,
                                          shape: .init(batch: batch, queries: T, keys: T, heads: H, kvHeads: KV, headDim: D),
                                          lanes: lanes)
                    }
                    linear(ab.baseAddress!, layer.o, xp, rows: N, accumulate: true)
                }}}}
                layer.postAttentionNorm.withUnsafeBufferPointer { w in
                    RMSNorm.forward(x: xp, weight: w.baseAddress!, y: hp, rstd: nil, rows: N, cols: C, eps: eps)
                }
                work.gate.withUnsafeMutableBufferPointer { gb in
                work.up.withUnsafeMutableBufferPointer { ub in
                    linear(hp, layer.gate, gb.baseAddress!, rows: N)
                    linear(hp, layer.up, ub.baseAddress!, rows: N)
                    SwiGLU.forward(gate: gb.baseAddress!, up: ub.baseAddress!, out: gb.baseAddress!, count: gb.count)
                    linear(gb.baseAddress!, layer.down, xp, rows: N, accumulate: true)
                }}
            }
        }
    }
}
