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

extension Attention {
    /// Backward of `forward` without a cache (Tq = Tk = T): recomputes P per head, then
    /// dV += Pᵀ·dO, dP = dO·Vᵀ, dS = P ⊙ (dP − rowsum(dP ⊙ P)), dQ = dS·K/√D, dK += dSᵀ·Q/√D.
    /// Tasks are (sequence, KV head), each owning its group's dK, dV, so lanes never collide.
    /// dq (B, T, H, D) is overwritten; dk, dv (B, T, KV, D) are overwritten.
    static func backward(dOut: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                         dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
                         shape s: Shape, lanes: Int) {
        let (T, D) = (s.queries, s.headDim)
        precondition(s.keys == T, "attention backward runs on whole sequences")
        let qStride = s.heads * D, kvStride = s.kvHeads * D
        let scale = 1 / Float(D).squareRoot()
        let io = BackwardPointers(dOut: dOut, q: q, k: k, v: v, dq: dq, dk: dk, dv: dv)
        let scratch = LaneScratch(lanes: lanes, count: 2 * T * T)
        try? Parallel.forEach(s.batch * s.kvHeads, lanes: lanes) { task, lane in
            let (b, kvh) = (task / s.kvHeads, task % s.kvHeads)
            let kh = io.k + b * T * kvStride + kvh * D, vh = io.v + b * T * kvStride + kvh * D
            let dkh = io.dk + b * T * kvStride + kvh * D, dvh = io.dv + b * T * kvStride + kvh * D
            for t in 0..<T {
                (dkh + t * kvStride).update(repeating: 0, count: D)
                (dvh + t * kvStride).update(repeating: 0, count: D)
            }
            let p = scratch.buffer(lane), dp = p + T * T
            for h in (kvh * s.group)..<((kvh + 1) * s.group) {
                let qh = io.q + b * T * qStride + h * D, doh = io.dOut + b * T * qStride + h * D
                let dqh = io.dq + b * T * qStride + h * D
                BLAS.gemm(transA: false, transB: true, m: T, n: T, k: D, alpha: scale, a: qh, lda: qStride,
                          b: kh, ldb: kvStride, beta: 0, c: p, ldc: T)
                for t in 0..<T {
                    Softmax.forwardRow(p + t * T, count: t + 1)
                    (p + t * T + t + 1).update(repeating: 0, count: T - t - 1)
                }
                // dV += Pᵀ·dO
                BLAS.gemm(transA: true, transB: false, m: T, n: D, k: T, alpha: 1, a: p, lda: T,
                          b: doh, ldb: qStride, beta: 1, c: dvh, ldc: kvStride)
                // dP = dO·Vᵀ, then dS in place (scaled by 1/√D for both dQ and dK)
                BLAS.gemm(transA: false, transB: true, m: T, n: T, k: D, alpha: 1, a: doh, lda: qStride,
                          b: vh, ldb: kvStride, beta: 0, c: dp, ldc: T)
                for t in 0..<T {
                    let pr = p + t * T, dr = dp + t * T
                    let n = t + 1
                    let rowDot = dot(pr, dr, n)
                    var i = 0
                    let rd = Vec8(repeating: rowDot)
                    while i + 8 <= n { store8(load8(pr + i) * (load8(dr + i) - rd) * scale, dr + i); i += 8 }
                    while i < n { dr[i] = pr[i] * (dr[i] - rowDot) * scale; i += 1 }
                    (dr + n).update(repeating: 0, count: T - n)
                }
                // dQ = dS·K, dK += dSᵀ·Q
                BLAS.gemm(transA: false, transB: false, m: T, n: D, k: T, alpha: 1, a: dp, lda: T,
                          b: kh, ldb: kvStride, beta: 0, c: dqh, ldc: qStride)
                BLAS.gemm(transA: true, transB: false, m: T, n: D, k: T, alpha: 1, a: dp, lda: T,
                          b: qh, ldb: qStride, beta: 1, c: dkh, ldc: kvStride)
            }
        }
    }
}

struct BackwardPointers: @unchecked Sendable {
    var dOut: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>
    var dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>
}
