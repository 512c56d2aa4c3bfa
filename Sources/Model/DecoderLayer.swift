import Formats
import LinearAlgebra

/// Buffers of `rows` rows, buffer i holding `widths[i]` floats per row, freed on deinit; or a
/// view of another's rows from a given row on, neither copied nor freed (one lane's share of a
/// data-parallel step; the parent must outlive the view). A width of 0 is a buffer the block
/// does not use.
final class RowBuffers {
    private let pointers: [UnsafeMutablePointer<Float>]
    let widths: [Int]
    private let owned: Bool

    init(rows: Int, widths: [Int]) {
        self.widths = widths
        pointers = widths.map { .allocate(capacity: max(1, rows * $0)) }
        owned = true
    }

    init(viewing parent: RowBuffers, fromRow row: Int) {
        widths = parent.widths
        pointers = zip(parent.pointers, parent.widths).map { $0 + row * $1 }
        owned = false
    }

    subscript(_ i: Int) -> UnsafeMutablePointer<Float> { pointers[i] }

    deinit { if owned { for p in pointers { p.deallocate() } } }
}

/// Scratch activations of one pass, reused by every layer.
final class Workspace {
    private let buffers: RowBuffers
    var h: UnsafeMutablePointer<Float> { buffers[0] }      // (N, C) normed input
    var q: UnsafeMutablePointer<Float> { buffers[1] }      // (N, H·D)
    var k: UnsafeMutablePointer<Float> { buffers[2] }      // (N, KV·D)
    var v: UnsafeMutablePointer<Float> { buffers[3] }      // (N, KV·D)
    var attn: UnsafeMutablePointer<Float> { buffers[4] }   // (N, H·D)
    var gate: UnsafeMutablePointer<Float> { buffers[5] }   // (N, F)
    var up: UnsafeMutablePointer<Float> { buffers[6] }     // (N, F)
    var act: UnsafeMutablePointer<Float> { buffers[7] }    // (N, F) act(gate)·up
    /// (N, C) a sub-layer's output before its sandwich norm (Gemma); unused otherwise.
    var sub: UnsafeMutablePointer<Float> { buffers[8] }
    /// (N, (H + 2·KV)·D) a fused qkv projection's output (Phi-3); unused otherwise.
    var qkv: UnsafeMutablePointer<Float> { buffers[9] }
    /// (N, 2F) a fused gate_up projection's output (Phi-3); unused otherwise.
    var gateUp: UnsafeMutablePointer<Float> { buffers[10] }
    // A mixture of experts (Mixtral): gate, up and act above hold the N·K routed rows (K·F per
    // token), in expert order (`Routing`).
    /// (N, E) the router's logits, then its probabilities.
    var router: UnsafeMutablePointer<Float> { buffers[11] }
    /// (N·K, C) each routed row's input, gathered from the normed residual stream.
    var routedIn: UnsafeMutablePointer<Float> { buffers[12] }
    /// (N·K, C) each routed row's expert output (without a tape).
    var routedOut: UnsafeMutablePointer<Float> { buffers[13] }

    /// Floats per row of each buffer.
    static func widths(_ c: ModelConfig) -> [Int] {
        let (C, F) = (c.hiddenSize, c.intermediateSize), layout = c.block.layout
        let (E, K) = layout.expertShape
        let f = max(1, K) * F
        return [C, c.queryWidth, c.keyValueWidth, c.keyValueWidth, c.queryWidth, f, f, f, c.block.sandwichNorms ? C : 0,
                layout.fusedAttention ? c.queryWidth + 2 * c.keyValueWidth : 0, layout.mlp == .fusedGated ? 2 * F : 0,
                E, K * C, K * C]
    }

    init(rows N: Int, config c: ModelConfig) {
        buffers = RowBuffers(rows: N, widths: Self.widths(c))
    }

    init(viewing parent: Workspace, fromRow row: Int) {
        buffers = RowBuffers(viewing: parent.buffers, fromRow: row)
    }
}

/// What one layer's backward needs from its forward. Normed inputs and the MLP activation are
/// recomputed from these (cheap, element-wise); attention probabilities are recomputed per head.
final class LayerTape {
    private let buffers: RowBuffers
    var xIn: UnsafeMutablePointer<Float> { buffers[0] }    // (N, C) residual stream before attention
    var xMid: UnsafeMutablePointer<Float> { buffers[1] }   // (N, C) residual stream before the MLP
    var rstd1: UnsafeMutablePointer<Float> { buffers[2] }  // (N) of the attention-input norm
    var rstd2: UnsafeMutablePointer<Float> { buffers[3] }  // (N) of the MLP-input norm
    // Rotated q and k; not kept with per-head q/k norms, whose backward norms and rotates qRaw
    // and kRaw again (cheap, element-wise; 5 KB a row and layer less for Gemma 3).
    var q: UnsafeMutablePointer<Float> { buffers[4] }      // (N, H·D)
    var k: UnsafeMutablePointer<Float> { buffers[5] }      // (N, KV·D)
    var v: UnsafeMutablePointer<Float> { buffers[6] }      // (N, KV·D)
    var attn: UnsafeMutablePointer<Float> { buffers[7] }   // (N, H·D)
    var gate: UnsafeMutablePointer<Float> { buffers[8] }   // (N, F) pre-activation; experts: (N·K, F) routed rows
    var up: UnsafeMutablePointer<Float> { buffers[9] }     // (N, F); experts: (N·K, F)
    // Per-head q/k norms (Gemma 3, Qwen3): the projections' outputs and their rstd.
    var qRaw: UnsafeMutablePointer<Float> { buffers[10] }  // (N, H·D)
    var kRaw: UnsafeMutablePointer<Float> { buffers[11] }  // (N, KV·D)
    var qRstd: UnsafeMutablePointer<Float> { buffers[12] } // (N, H)
    var kRstd: UnsafeMutablePointer<Float> { buffers[13] } // (N, KV)
    // Sandwich norms (Gemma): the sub-layers' outputs before their norms, and those norms' rstd.
    var attnOut: UnsafeMutablePointer<Float> { buffers[14] } // (N, C)
    var mlpOut: UnsafeMutablePointer<Float> { buffers[15] }  // (N, C)
    var rstd3: UnsafeMutablePointer<Float> { buffers[16] }   // (N)
    var rstd4: UnsafeMutablePointer<Float> { buffers[17] }   // (N)
    /// Experts: (N·K, C) each routed row's expert output, before its routing weight.
    var routedOut: UnsafeMutablePointer<Float> { buffers[18] }
    /// x·Aᵀ per projection slot (N, r ≤ maxRank); nil when no adapters are trained. Every
    /// expert's gate (down, up) shares one (N·K, r ≤ maxRank) buffer, each expert taking the
    /// rows from its first routed row · maxRank on (`Routing.offsets`).
    let xa: [UnsafeMutablePointer<Float>?]
    let maxRank: Int
    private static let fixed = 19

    /// Floats per row of each buffer: the fixed ones, x·Aᵀ per projection slot (none for a
    /// router or an expert), then the experts' three shared x·Aᵀ buffers.
    static func widths(_ c: ModelConfig, maxRank: Int) -> [Int] {
        let (C, F) = (c.hiddenSize, c.intermediateSize)
        let qk = c.block.queryKeyNorm, sandwich = c.block.sandwichNorms
        let K = c.block.layout.expertShape.topK, f = max(1, K) * F
        return [C, C, 1, 1, qk ? 0 : c.queryWidth, qk ? 0 : c.keyValueWidth, c.keyValueWidth, c.queryWidth, f, f,
                qk ? c.queryWidth : 0, qk ? c.keyValueWidth : 0, qk ? c.numAttentionHeads : 0, qk ? c.numKeyValueHeads : 0,
                sandwich ? C : 0, sandwich ? C : 0, sandwich ? 1 : 0, sandwich ? 1 : 0, K * C]
            + c.projections.map { p in p.isDense && p.isAdapterTarget ? maxRank : 0 }
            + ExpertMatrix.allCases.map { _ in K * maxRank }
    }

    init(rows N: Int, config c: ModelConfig, maxRank: Int) {
        buffers = RowBuffers(rows: N, widths: Self.widths(c, maxRank: maxRank))
        self.maxRank = maxRank
        xa = Self.xaBuffers(buffers, config: c, maxRank: maxRank)
    }

    /// Rows from `row` on of `parent`'s buffers. Each x·Aᵀ buffer is taken from `row · maxRank`
    /// (experts: `row · K · maxRank`) on: a lane's rows of any rank ≤ maxRank fit in its share.
    init(viewing parent: LayerTape, fromRow row: Int, config c: ModelConfig) {
        buffers = RowBuffers(viewing: parent.buffers, fromRow: row)
        maxRank = parent.maxRank
        xa = Self.xaBuffers(buffers, config: c, maxRank: maxRank)
    }

    private static func xaBuffers(_ b: RowBuffers, config c: ModelConfig, maxRank: Int) -> [UnsafeMutablePointer<Float>?] {
        guard maxRank > 0 else { return c.projections.map { _ in nil } }
        let shared = fixed + c.projections.count
        return c.projections.enumerated().map { slot, p in
            if case let .expert(_, m) = p { return b[shared + m.rawValue] }
            return p == .router ? nil : b[fixed + slot]
        }
    }
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

/// Sees the input of every projection group during a forward pass (`DecoderModel.observeInputs`):
/// the calibration statistics of the data-driven adapter starts (CorDA's covariances, EVA's
/// principal components) are made from these. `input` (rows, width) is valid during the call only.
public protocol ProjectionInputObserver: AnyObject {
    /// `projections` read `input`: q, k, v together, then o, then gate and up together, then down.
    func observe(layer: Int, projections: [Projection], input: UnsafePointer<Float>, rows: Int, width: Int)
    /// How many of the first layers' inputs it still needs (`DecoderModel.observeInputs` runs no
    /// more); nil: all of them.
    var layersNeeded: Int? { get }
}

extension ProjectionInputObserver {
    public var layersNeeded: Int? { nil }
}

extension DecoderModel {
    /// One decoder layer, in place on the residual stream x (N, C):
    /// `x += [n₃](o(attention(rope([n_q]q(n₁(x))), rope([n_k]k(n₁(x))), v(n₁(x)))))`, then
    /// `x += [n₄](down(act(gate(n₂(x))) · up(n₂(x))))`, each projection with its adapter if any;
    /// the bracketed norms are the family's (`BlockSpec`). x holds sequences of `lengths` rows
    /// packed back to back, each continuing its slot of the cache when there is one. With a tape,
    /// what backward needs is kept there.
    func forwardLayer(_ index: Int, x: UnsafeMutablePointer<Float>, work: Workspace, lengths: [Int],
                      positions: UnsafePointer<Int32>, rows N: Int, cache: CachedRows?,
                      adapters: [LoRAAdapter?]?, tape: LayerTape?, observer: ProjectionInputObserver? = nil) {
        let c = config, spec = c.block, layout = spec.layout, layer = layerWeights(index), rotary = rotary(layer: index)
        let C = c.hiddenSize, F = c.intermediateSize
        let (H, KV, D) = (c.numAttentionHeads, c.numKeyValueHeads, c.headDim)
        func output(_ p: Projection, _ y: UnsafeMutablePointer<Float>, accumulate: Bool = false) -> ProjectionOutput {
            let slot = layout.index(p)
            return ProjectionOutput(weight: layer.projections[slot], bias: layer.biases[slot], adapter: adapters?[slot], y: y,
                                    xa: tape?.xa[slot], accumulate: accumulate)
        }

        // Attention
        if let tape { tape.xIn.update(from: x, count: N * C) }
        normForward(layer[.attentionInput], x: x, y: work.h, rstd: tape?.rstd1, rows: N, cols: C)
        let q = spec.queryKeyNorm ? work.q : tape?.q ?? work.q, k = spec.queryKeyNorm ? work.k : tape?.k ?? work.k
        let v = tape?.v ?? work.v, attn = tape?.attn ?? work.attn
        let qRaw = spec.queryKeyNorm ? tape?.qRaw ?? q : q, kRaw = spec.queryKeyNorm ? tape?.kRaw ?? k : k
        if layout.fusedAttention {
            observer?.observe(layer: index, projections: [.qkv], input: work.h, rows: N, width: C)
            project(work.h, [output(.qkv, work.qkv)], rows: N)
            Columns.split(work.qkv, rows: N, into: [(qRaw, H * D), (kRaw, KV * D), (v, KV * D)])
        } else {
            observer?.observe(layer: index, projections: [.q, .k, .v], input: work.h, rows: N, width: C)
            project(work.h, [output(.q, qRaw), output(.k, kRaw), output(.v, v)], rows: N)
        }
        if spec.queryKeyNorm {
            normForward(layer[.query], x: qRaw, y: q, rstd: tape?.qRstd, rows: N * H, cols: D)
            normForward(layer[.key], x: kRaw, y: k, rstd: tape?.kRstd, rows: N * KV, cols: D)
        }
        rotary.apply(q, rows: N, heads: H, positions: positions, lanes: lanes)
        rotary.apply(k, rows: N, heads: KV, positions: positions, lanes: lanes)
        let (scale, window) = (Float(spec.attentionScale), c.layers[index].slidingWindow)
        if let cache {
            let kvw = KV * D, p = cache.placement
            var row = 0
            for (i, n) in lengths.enumerated() {
                cache.layer.append(k: k + row * kvw, v: v + row * kvw, rows: n, at: p.keyRows[i] + p.starts[i])
                row += n
            }
            Attention.forward(q: q, k: cache.layer.k, v: cache.layer.v, out: attn,
                              shape: .cached(lengths: lengths, keyRows: p.keyRows, starts: p.starts, heads: H, kvHeads: KV, headDim: D,
                                             scale: scale, window: window),
                              lanes: lanes)
        } else {
            Attention.forward(q: q, k: k, v: v, out: attn,
                              shape: .packed(lengths: lengths, heads: H, kvHeads: KV, headDim: D, scale: scale, window: window),
                              lanes: lanes)
        }
        observer?.observe(layer: index, projections: [.o], input: attn, rows: N, width: c.queryWidth)
        if spec.sandwichNorms {
            let a = tape?.attnOut ?? work.sub
            project(attn, [output(.o, a)], rows: N)
            normForward(layer[.attentionOutput], x: a, y: work.h, rstd: tape?.rstd3, rows: N, cols: C)
            addInPlace(x, work.h, count: N * C)
        } else {
            project(attn, [output(.o, x, accumulate: true)], rows: N)
        }

        // MLP
        if let tape { tape.xMid.update(from: x, count: N * C) }
        normForward(layer[.mlpInput], x: x, y: work.h, rstd: tape?.rstd2, rows: N, cols: C)
        let gate = tape?.gate ?? work.gate, up = tape?.up ?? work.up
        switch layout.mlp {
        case .gated:
            observer?.observe(layer: index, projections: [.gate, .up], input: work.h, rows: N, width: C)
            project(work.h, [output(.gate, gate), output(.up, up)], rows: N)
        case .fusedGated:
            observer?.observe(layer: index, projections: [.gateUp], input: work.h, rows: N, width: C)
            project(work.h, [output(.gateUp, work.gateUp)], rows: N)
            Columns.split(work.gateUp, rows: N, into: [(gate, F), (up, F)])
        case .experts:
            // Experts see routed rows only: no observation (the data-driven starts refuse them).
            return forwardExperts(index, h: work.h, x: x, work: work, rows: N, adapters: adapters, tape: tape)
        }
        GatedMLP.forward(spec.activation, gate: gate, up: up, out: work.act, rows: N, width: F, lanes: lanes)
        observer?.observe(layer: index, projections: [.down], input: work.act, rows: N, width: F)
        if spec.sandwichNorms {
            let m = tape?.mlpOut ?? work.sub
            project(work.act, [output(.down, m)], rows: N)
            normForward(layer[.mlpOutput], x: m, y: work.h, rstd: tape?.rstd4, rows: N, cols: C)
            addInPlace(x, work.h, count: N * C)
        } else {
            project(work.act, [output(.down, x, accumulate: true)], rows: N)
        }
    }

    /// RMSNorm of `rows` rows of `cols` with a norm weight of this family (`withNormScale`).
    func normForward(_ weight: any DenseWeight, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                     rstd: UnsafeMutablePointer<Float>?, rows: Int, cols: Int) {
        withNormScale(weight) { w in
            RMSNorm.forward(x: x, weight: w, y: y, rstd: rstd, rows: rows, cols: cols, eps: Float(config.rmsNormEps), lanes: lanes)
        }
    }
}
