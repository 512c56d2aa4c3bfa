import LinearAlgebra

/// Causal grouped-query attention over right-padded batches.
///
/// Shapes (row-major): q (B, T, H, D), k and v (B, T, KV, D), out (B, T, H, D), probabilities
/// (B, H, T, T). Query head h reads key/value head h / (H / KV). With right padding no extra
/// mask is needed: a real position t only sees keys 0…t, which are all real.
enum Attention {
    /// `queries` new positions per sequence attend to `keys` positions (the first
    /// `keys − queries` of them cached earlier): query i sits at position `keys − queries + i`.
    struct Shape {
        var batch: Int, queries: Int, keys: Int, heads: Int, kvHeads: Int, headDim: Int
        var group: Int { heads / kvHeads }
        var offset: Int { keys - queries }
    }

    /// `out = softmax(q·kᵀ/√D + causal)·v` for every (sequence, head), heads split across `lanes`.
    /// Shapes: q, out (B, Tq, H, D); k, v (B, Tk, KV, D). `probabilities` (B, H, Tq, Tk) receives
    /// P when non-nil (kept for backward); otherwise a per-lane scratch is used.
    static func forward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                        out: UnsafeMutablePointer<Float>, probabilities: UnsafeMutablePointer<Float>?,
                        shape s: Shape, lanes: Int) {
        let (Tq, Tk, D) = (s.queries, s.keys, s.headDim)
        let qStride = s.heads * D, kvStride = s.kvHeads * D
        let scale = 1 / Float(D).squareRoot()
        let pointers = SendablePointers(q: q, k: k, v: v, out: out, probabilities: probabilities)
        let scratch = probabilities == nil ? LaneScratch(lanes: lanes, count: Tq * Tk) : nil
        try? Parallel.forEach(s.batch * s.heads, lanes: lanes) { task, lane in
            let (b, h) = (task / s.heads, task % s.heads)
            let kvh = h / s.group
            let qh = pointers.q + b * Tq * qStride + h * D
            let kh = pointers.k + b * Tk * kvStride + kvh * D
            let vh = pointers.v + b * Tk * kvStride + kvh * D
            let oh = pointers.out + b * Tq * qStride + h * D
            let p = pointers.probabilities.map { $0 + task * Tq * Tk } ?? scratch!.buffer(lane)
            BLAS.gemm(transA: false, transB: true, m: Tq, n: Tk, k: D, alpha: scale, a: qh, lda: qStride,
                      b: kh, ldb: kvStride, beta: 0, c: p, ldc: Tk)
            for t in 0..<Tq {
                let row = p + t * Tk, visible = s.offset + t + 1
                Softmax.forwardRow(row, count: visible)
                (row + visible).update(repeating: 0, count: Tk - visible)
            }
            BLAS.gemm(transA: false, transB: false, m: Tq, n: D, k: Tk, alpha: 1, a: p, lda: Tk,
                      b: vh, ldb: kvStride, beta: 0, c: oh, ldc: qStride)
        }
    }
}

/// Raw pointers handed to parallel lanes; each lane writes disjoint ranges.
struct SendablePointers: @unchecked Sendable {
    var q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>
    var out: UnsafeMutablePointer<Float>
    var probabilities: UnsafeMutablePointer<Float>?
}

/// One scratch buffer per parallel lane.
final class LaneScratch: @unchecked Sendable {
    private let storage: UnsafeMutablePointer<Float>
    private let count: Int

    init(lanes: Int, count: Int) {
        self.count = count
        storage = .allocate(capacity: max(1, lanes) * count)
    }

    deinit { storage.deallocate() }

    func buffer(_ lane: Int) -> UnsafeMutablePointer<Float> { storage + lane * count }
}
