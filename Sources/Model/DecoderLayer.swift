import Formats
import LinearAlgebra

/// Scratch activations of one pass, reused by every layer. Raw buffers, freed on deinit.
final class Workspace {
    let h, q, k, v, attn, gate, up, act: UnsafeMutablePointer<Float>
    private let all: [UnsafeMutablePointer<Float>]

    init(rows N: Int, config c: HFLlamaConfig) {
        let qw = c.numAttentionHeads * c.headDim, kvw = c.numKeyValueHeads * c.headDim
        func buffer(_ n: Int) -> UnsafeMutablePointer<Float> { .allocate(capacity: max(1, n)) }
        h = buffer(N * c.hiddenSize)                 // (N, C) normed input
        q = buffer(N * qw)                           // (N, H·D)
        k = buffer(N * kvw)                          // (N, KV·D)
        v = buffer(N * kvw)                          // (N, KV·D)
        attn = buffer(N * qw)                        // (N, H·D)
        gate = buffer(N * c.intermediateSize)        // (N, F)
        up = buffer(N * c.intermediateSize)          // (N, F)
        act = buffer(N * c.intermediateSize)         // (N, F) silu(gate)·up
        all = [h, q, k, v, attn, gate, up, act]
    }

    /// Rows from `row` on of `parent`'s buffers, neither copied nor freed (one lane's share of a
    /// data-parallel step); the parent must outlive the view.
    init(viewing parent: Workspace, fromRow row: Int, config c: HFLlamaConfig) {
        let qw = c.numAttentionHeads * c.headDim, kvw = c.numKeyValueHeads * c.headDim, F = c.intermediateSize
        h = parent.h + row * c.hiddenSize
        q = parent.q + row * qw; k = parent.k + row * kvw; v = parent.v + row * kvw; attn = parent.attn + row * qw
        gate = parent.gate + row * F; up = parent.up + row * F; act = parent.act + row * F
        all = []
    }

    deinit { for b in all { b.deallocate() } }
}

/// What one layer's backward needs from its forward. Normed inputs and the MLP activation are
/// recomputed from these (cheap, element-wise); attention probabilities are recomputed per head.
final class LayerTape {
    let xIn, xMid: UnsafeMutablePointer<Float>       // (N, C) residual stream before attention / before MLP
    let rstd1, rstd2: UnsafeMutablePointer<Float>    // (N)
    let q, k, v, attn: UnsafeMutablePointer<Float>   // q, attn (N, H·D); k, v (N, KV·D); q, k rotated
    let gate, up: UnsafeMutablePointer<Float>        // (N, F) pre-activation
    /// x·Aᵀ per projection (N, r ≤ maxRank); nil when no adapters are trained.
    let xa: [UnsafeMutablePointer<Float>?]
    private var owned: [UnsafeMutablePointer<Float>]

    init(rows N: Int, config c: HFLlamaConfig, maxRank: Int) {
        let qw = c.numAttentionHeads * c.headDim, kvw = c.numKeyValueHeads * c.headDim
        var owned: [UnsafeMutablePointer<Float>] = []
        func buffer(_ n: Int) -> UnsafeMutablePointer<Float> {
            let b = UnsafeMutablePointer<Float>.allocate(capacity: max(1, n)); owned.append(b); return b
        }
        xIn = buffer(N * c.hiddenSize); xMid = buffer(N * c.hiddenSize)
        rstd1 = buffer(N); rstd2 = buffer(N)
        q = buffer(N * qw); k = buffer(N * kvw); v = buffer(N * kvw); attn = buffer(N * qw)
        gate = buffer(N * c.intermediateSize); up = buffer(N * c.intermediateSize)
        xa = Projection.allCases.map { _ in maxRank > 0 ? buffer(N * maxRank) : nil }
        self.owned = owned
    }

    /// Rows from `row` on of `parent`'s buffers, neither copied nor freed (one lane's share of a
    /// data-parallel step). Each x·Aᵀ buffer is taken from `row · maxRank` on: a lane's rows of
    /// any rank ≤ maxRank fit in its share.
    init(viewing parent: LayerTape, fromRow row: Int, config c: HFLlamaConfig, maxRank: Int) {
        let C = c.hiddenSize, qw = c.numAttentionHeads * c.headDim, kvw = c.numKeyValueHeads * c.headDim
        let F = c.intermediateSize
        xIn = parent.xIn + row * C; xMid = parent.xMid + row * C
        rstd1 = parent.rstd1 + row; rstd2 = parent.rstd2 + row
        q = parent.q + row * qw; k = parent.k + row * kvw; v = parent.v + row * kvw; attn = parent.attn + row * qw
        gate = parent.gate + row * F; up = parent.up + row * F
        xa = parent.xa.map { $0.map { $0 + row * maxRank } }
        owned = []
    }

    deinit { for b in owned { b.deallocate() } }
}

/// Where a cached pass's rows go in one layer of a `KVCache`: sequence i continues the slot whose
/// rows start at `keyRows[i]` and already hold `starts[i]` positions.
struct CachedRows {
    struct Placement {
        var keyRows: [Int]
        var starts: [Int]
    }

    var layer: KVCache.Layer
    var placement: Placement
}

extension LlamaModel {
    /// One decoder layer, in place on the residual stream x (N, C):
    /// `x += o(attention(rope(q(norm₁(x))), rope(k(norm₁(x))), v(norm₁(x))))`, then
    /// `x += down(silu(gate(norm₂(x))) · up(norm₂(x)))`, each projection with its adapter if any.
    /// x holds sequences of `lengths` rows packed back to back, each continuing its slot of the
    /// cache when there is one. With a tape, what backward needs is kept there.
    func forwardLayer(_ index: Int, x: UnsafeMutablePointer<Float>, work: Workspace, lengths: [Int],
                      positions: UnsafePointer<Int32>, rows N: Int, cache: CachedRows?,
                      adapters: [LoRAAdapter?]?, tape: LayerTape?) {
        let c = config, layer = layerWeights(index)
        let C = c.hiddenSize
        let (H, KV, D) = (c.numAttentionHeads, c.numKeyValueHeads, c.headDim)
        let eps = Float(c.rmsNormEps)
        func adapter(_ p: Projection) -> LoRAAdapter? { adapters?[p.rawValue] }
        func saved(_ p: Projection) -> UnsafeMutablePointer<Float>? { tape?.xa[p.rawValue] }

        if let tape { tape.xIn.update(from: x, count: N * C) }
        layer.inputNorm.withValues { w in
            RMSNorm.forward(x: x, weight: w, y: work.h, rstd: tape?.rstd1, rows: N, cols: C, eps: eps, lanes: lanes)
        }
        let q = tape?.q ?? work.q, k = tape?.k ?? work.k, v = tape?.v ?? work.v, attn = tape?.attn ?? work.attn
        func output(_ p: Projection, _ y: UnsafeMutablePointer<Float>, accumulate: Bool = false) -> ProjectionOutput {
            ProjectionOutput(weight: layer[p], adapter: adapter(p), y: y, xa: saved(p), accumulate: accumulate)
        }
        project(work.h, [output(.q, q), output(.k, k), output(.v, v)], rows: N)
        rotary.apply(q, rows: N, heads: H, positions: positions, lanes: lanes)
        rotary.apply(k, rows: N, heads: KV, positions: positions, lanes: lanes)
        if let cache {
            let kvw = KV * D, p = cache.placement
            var row = 0
            for (i, n) in lengths.enumerated() {
                cache.layer.append(k: k + row * kvw, v: v + row * kvw, rows: n, at: p.keyRows[i] + p.starts[i])
                row += n
            }
            Attention.forward(q: q, k: cache.layer.k, v: cache.layer.v, out: attn,
                              shape: .cached(lengths: lengths, keyRows: p.keyRows, starts: p.starts, heads: H, kvHeads: KV, headDim: D),
                              lanes: lanes)
        } else {
            Attention.forward(q: q, k: k, v: v, out: attn,
                              shape: .packed(lengths: lengths, heads: H, kvHeads: KV, headDim: D), lanes: lanes)
        }
        project(attn, [output(.o, x, accumulate: true)], rows: N)

        if let tape { tape.xMid.update(from: x, count: N * C) }
        layer.postAttentionNorm.withValues { w in
            RMSNorm.forward(x: x, weight: w, y: work.h, rstd: tape?.rstd2, rows: N, cols: C, eps: eps, lanes: lanes)
        }
        let gate = tape?.gate ?? work.gate, up = tape?.up ?? work.up
        project(work.h, [output(.gate, gate), output(.up, up)], rows: N)
        SwiGLU.forward(gate: gate, up: up, out: work.act, rows: N, width: c.intermediateSize, lanes: lanes)
        project(work.act, [output(.down, x, accumulate: true)], rows: N)
    }
}
