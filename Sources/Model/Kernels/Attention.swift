import LinearAlgebra

/// Causal grouped-query attention over right-padded batches.
///
/// Shapes (row-major): q (B, T, H, D), k and v (B, T, KV, D), out (B, T, H, D), probabilities
/// (B, H, T, T). Query head h reads key/value head h / (H / KV). With right padding no extra
/// mask is needed: a real position t only sees keys 0…t, which are all real.
enum Attention {
    /// Query rows per causal block: each block multiplies only the keys its last row sees.
    static let blockRows = 64

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
            // Query blocks only multiply the keys they can see (causal): about half the work.
            for q0 in stride(from: 0, to: Tq, by: blockRows) {
                let m = min(blockRows, Tq - q0), visibleKeys = s.offset + q0 + m
                BLAS.gemm(transA: false, transB: true, m: m, n: visibleKeys, k: D, alpha: scale, a: qh + q0 * qStride, lda: qStride,
                          b: kh, ldb: kvStride, beta: 0, c: p + q0 * Tk, ldc: Tk)
                for t in q0..<(q0 + m) {
                    let row = p + t * Tk, visible = s.offset + t + 1
                    Softmax.forwardRow(row, count: visible)
                    (row + visible).update(repeating: 0, count: Tk - visible)
                }
                BLAS.gemm(transA: false, transB: false, m: m, n: D, k: visibleKeys, alpha: 1, a: p + q0 * Tk, lda: Tk,
                          b: vh, ldb: kvStride, beta: 0, c: oh + q0 * qStride, ldc: qStride)
            }
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
                for q0 in stride(from: 0, to: T, by: blockRows) {
                    let m = min(blockRows, T - q0), keys = q0 + m   // keys visible to this block
                    let pb = p + q0 * T, db = dp + q0 * T
                    let qb = qh + q0 * qStride, dob = doh + q0 * qStride
                    BLAS.gemm(transA: false, transB: true, m: m, n: keys, k: D, alpha: scale, a: qb, lda: qStride,
                              b: kh, ldb: kvStride, beta: 0, c: pb, ldc: T)
                    for t in q0..<(q0 + m) {
                        let row = p + t * T
                        Softmax.forwardRow(row, count: t + 1)
                        (row + t + 1).update(repeating: 0, count: keys - t - 1)
                    }
                    // dV += Pᵀ·dO
                    BLAS.gemm(transA: true, transB: false, m: keys, n: D, k: m, alpha: 1, a: pb, lda: T,
                              b: dob, ldb: qStride, beta: 1, c: dvh, ldc: kvStride)
                    // dP = dO·Vᵀ, then dS in place (scaled by 1/√D for both dQ and dK)
                    BLAS.gemm(transA: false, transB: true, m: m, n: keys, k: D, alpha: 1, a: dob, lda: qStride,
                              b: vh, ldb: kvStride, beta: 0, c: db, ldc: T)
                    for t in q0..<(q0 + m) {
                        let pr = p + t * T, dr = dp + t * T
                        let n = t + 1
                        let rowDot = dot(pr, dr, n)
                        var i = 0
                        let rd = Vec8(repeating: rowDot)
                        while i + 8 <= n { store8(load8(pr + i) * (load8(dr + i) - rd) * scale, dr + i); i += 8 }
                        while i < n { dr[i] = pr[i] * (dr[i] - rowDot) * scale; i += 1 }
                        (dr + n).update(repeating: 0, count: keys - n)
                    }
                    // dQ = dS·K, dK += dSᵀ·Q
                    BLAS.gemm(transA: false, transB: false, m: m, n: D, k: keys, alpha: 1, a: db, lda: T,
                              b: kh, ldb: kvStride, beta: 0, c: io.dq + b * T * qStride + h * D + q0 * qStride, ldc: qStride)
                    BLAS.gemm(transA: true, transB: false, m: keys, n: D, k: m, alpha: 1, a: db, lda: T,
                              b: qb, ldb: qStride, beta: 1, c: dkh, ldc: kvStride)
                }
            }
        }
    }
}

struct BackwardPointers: @unchecked Sendable {
    var dOut: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>
    var dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>
}
