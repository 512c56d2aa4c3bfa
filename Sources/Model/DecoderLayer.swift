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

    /// Floats per row of each buffer.
    static func widths(_ c: ModelConfig) -> [Int] {
        let (C, F) = (c.hiddenSize, c.intermediateSize)
        return [C, c.queryWidth, c.keyValueWidth, c.keyValueWidth, c.queryWidth, F, F, F, c.block.sandwichNorms ? C : 0]
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
    var q: UnsafeMutablePointer<Float> { buffers[4] }      // (N, H·D) normed (if so) and rotated
    var k: UnsafeMutablePointer<Float> { buffers[5] }      // (N, KV·D) normed (if so) and rotated
    var v: UnsafeMutablePointer<Float> { buffers[6] }      // (N, KV·D)
    var attn: UnsafeMutablePointer<Float> { buffers[7] }   // (N, H·D)
    var gate: UnsafeMutablePointer<Float> { buffers[8] }   // (N, F) pre-activation
    var up: UnsafeMutablePointer<Float> { buffers[9] }     // (N, F)
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
    /// x·Aᵀ per projection (N, r ≤ maxRank); nil when no adapters are trained.
    let xa: [UnsafeMutablePointer<Float>?]
    private static let fixed = 18

    /// Floats per row of each buffer: the fixed ones, then x·Aᵀ per projection.
    static func widths(_ c: ModelConfig, maxRank: Int) -> [Int] {
        let (C, F) = (c.hiddenSize, c.intermediateSize)
        let qk = c.block.queryKeyNorm, sandwich = c.block.sandwichNorms
        return [C, C, 1, 1, c.queryWidth, c.keyValueWidth, c.keyValueWidth, c.queryWidth, F, F,
                qk ? c.queryWidth : 0, qk ? c.keyValueWidth : 0, qk ? c.numAttentionHeads : 0, qk ? c.numKeyValueHeads : 0,
                sandwich ? C : 0, sandwich ? C : 0, sandwich ? 1 : 0, sandwich ? 1 : 0]
            + Projection.allCases.map { _ in maxRank }
    }

    init(rows N: Int, config c: ModelConfig, maxRank: Int) {
        buffers = RowBuffers(rows: N, widths: Self.widths(c, maxRank: maxRank))
        let b = buffers
        xa = Projection.allCases.indices.map { maxRank > 0 ? b[Self.fixed + $0] : nil }
    }

    /// Rows from `row` on of `parent`'s buffers. Each x·Aᵀ buffer is taken from `row · maxRank`
    /// on: a lane's rows of any rank ≤ maxRank fit in its share.
    init(viewing parent: LayerTape, fromRow row: Int) {
        buffers = RowBuffers(viewing: parent.buffers, fromRow: row)
        let b = buffers
        xa = parent.xa.indices.map { parent.xa[$0] == nil ? nil : b[Self.fixed + $0] }
    }
}

/// Sees the input of every projection group during a forward pass (`DecoderModel.hiddenStates`):
/// the calibration statistics of the data-driven adapter starts (CorDA's covariances, EVA's
/// principal components) are made from these. `input` (rows, width) is valid during the call only.
public protocol ProjectionInputObserver: AnyObject {
    /// `projections` read `input`: q, k, v together, then o, then gate and up together, then down.
    func observe(layer: Int, projections: [Projection], input: UnsafePointer<Float>, rows: Int, width: Int)
}

extension DecoderModel {
    /// One decoder layer, in place on the residual stream x (N, C):
    /// `x += [n₃](o(attention(rope([n_q]q(n₁(x))), rope([n_k]k(n₁(x))), v(n₁(x)))))`, then
    /// `x += [n₄](down(act(gate(n₂(x))) · up(n₂(x))))`, each projection with its adapter if any;
    /// the bracketed norms are the family's (`BlockSpec`). x holds sequences of `lengths` rows
    /// packed back to back (one sequence with a cache). With a tape, what backward needs is kept there.
    func forwardLayer(_ index: Int, x: UnsafeMutablePointer<Float>, work: Workspace, lengths: [Int],
                      positions: UnsafePointer<Int32>, rows N: Int, cache: KVCache.Layer?,
                      adapters: [LoRAAdapter?]?, tape: LayerTape?, observer: ProjectionInputObserver? = nil) {
        let c = config, spec = c.block, layer = layerWeights(index), rotary = rotary(layer: index)
        let C = c.hiddenSize
        let (H, KV, D) = (c.numAttentionHeads, c.numKeyValueHeads, c.headDim)
        func output(_ p: Projection, _ y: UnsafeMutablePointer<Float>, accumulate: Bool = false) -> ProjectionOutput {
            ProjectionOutput(weight: layer[p], adapter: adapters?[p.rawValue], y: y, xa: tape?.xa[p.rawValue], accumulate: accumulate)
        }

        // Attention
        if let tape { tape.xIn.update(from: x, count: N * C) }
        normForward(layer[.attentionInput], x: x, y: work.h, rstd: tape?.rstd1, rows: N, cols: C)
        let q = tape?.q ?? work.q, k = tape?.k ?? work.k, v = tape?.v ?? work.v, attn = tape?.attn ?? work.attn
        let qRaw = spec.queryKeyNorm ? tape?.qRaw ?? q : q, kRaw = spec.queryKeyNorm ? tape?.kRaw ?? k : k
        observer?.observe(layer: index, projections: [.q, .k, .v], input: work.h, rows: N, width: C)
        project(work.h, [output(.q, qRaw), output(.k, kRaw), output(.v, v)], rows: N)
        if spec.queryKeyNorm {
            normForward(layer[.query], x: qRaw, y: q, rstd: tape?.qRstd, rows: N * H, cols: D)
            normForward(layer[.key], x: kRaw, y: k, rstd: tape?.kRstd, rows: N * KV, cols: D)
        }
        rotary.apply(q, rows: N, heads: H, positions: positions, lanes: lanes)
        rotary.apply(k, rows: N, heads: KV, positions: positions, lanes: lanes)
        let (scale, window) = (Float(spec.attentionScale), c.layers[index].slidingWindow)
        if let cache {
            let start = Int(positions[0])
            cache.append(k: k, v: v, rows: N, at: start)
            Attention.forward(q: q, k: cache.k, v: cache.v, out: attn,
                              shape: .cached(queries: N, keys: start + N, heads: H, kvHeads: KV, headDim: D, scale: scale, window: window),
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
        observer?.observe(layer: index, projections: [.gate, .up], input: work.h, rows: N, width: C)
        project(work.h, [output(.gate, gate), output(.up, up)], rows: N)
        GatedMLP.forward(spec.activation, gate: gate, up: up, out: work.act, rows: N, width: c.intermediateSize, lanes: lanes)
        observer?.observe(layer: index, projections: [.down], input: work.act, rows: N, width: c.intermediateSize)
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

    /// x += y over `count` floats.
    func addInPlace(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count: Int) {
        var i = 0
        while i + 8 <= count { store8(load8(x + i) + load8(y + i), x + i); i += 8 }
        while i < count { x[i] += y[i]; i += 1 }
    }
}
