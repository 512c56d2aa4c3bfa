import LinearAlgebra

/// Causal grouped-query attention over sequences packed back to back.
///
/// Rows (row-major): q and out (·, H, D), k and v (·, KV, D). Each sequence names its query rows
/// and its key rows; a sequence only attends to its own keys, so sequences packed into one
/// buffer need no mask beyond the causal one. Query head h reads key/value head h / (H / KV).
enum Attention {
    /// Query rows per causal block: each block multiplies only the keys its last row sees.
    static let blockRows = 64

    /// The sequences of one call and the head layout.
    struct Shape {
        /// One sequence: queries are rows `queryRow ..< queryRow + queries` of q and out, keys rows
        /// `keyRow ..< keyRow + keys` of k and v; query i sits at position `keys − queries + i`
        /// (the first `keys − queries` keys were cached earlier).
        struct Sequence {
            var queryRow: Int, queries: Int, keyRow: Int, keys: Int
            var offset: Int { keys - queries }
        }

        var sequences: [Sequence]
        var heads: Int, kvHeads: Int, headDim: Int
        var group: Int { heads / kvHeads }

        /// Sequences of `lengths` rows packed back to back in q, k and v alike, each attending
        /// to itself (training, evaluation, prefill without a cache).
        static func packed(lengths: [Int], heads: Int, kvHeads: Int, headDim: Int) -> Shape {
            var row = 0
            let sequences = lengths.map { n in
                defer { row += n }
                return Sequence(queryRow: row, queries: n, keyRow: row, keys: n)
            }
            return Shape(sequences: sequences, heads: heads, kvHeads: kvHeads, headDim: headDim)
        }

        /// `queries` new rows continuing one cached sequence whose k and v hold `keys` rows.
        static func cached(queries: Int, keys: Int, heads: Int, kvHeads: Int, headDim: Int) -> Shape {
            Shape(sequences: [Sequence(queryRow: 0, queries: queries, keyRow: 0, keys: keys)],
                  heads: heads, kvHeads: kvHeads, headDim: headDim)
        }
    }

    /// `out = softmax(q·kᵀ/√D + causal)·v` for every (sequence, head), tasks spread over `lanes`.
    static func forward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                        out: UnsafeMutablePointer<Float>, shape s: Shape, lanes: Int) {
        let D = s.headDim
        let qStride = s.heads * D, kvStride = s.kvHeads * D
        let scale = 1 / Float(D).squareRoot()
        let pointers = SendablePointers(q: q, k: k, v: v, out: out)
        let scratch = LaneScratch(lanes: lanes, count: s.sequences.map { $0.queries * $0.keys }.max() ?? 0)
        try? Parallel.forEach(s.sequences.count * s.heads, lanes: lanes) { task, lane in
            let (sq, h) = (s.sequences[task / s.heads], task % s.heads)
            let (Tq, Tk) = (sq.queries, sq.keys)
            let kvh = h / s.group
            let qh = pointers.q + sq.queryRow * qStride + h * D
            let kh = pointers.k + sq.keyRow * kvStride + kvh * D
            let vh = pointers.v + sq.keyRow * kvStride + kvh * D
            let oh = pointers.out + sq.queryRow * qStride + h * D
            let p = scratch.buffer(lane)   // (Tq, Tk)
            // Query blocks only multiply the keys they can see (causal): about half the work.
            for q0 in stride(from: 0, to: Tq, by: blockRows) {
                let m = min(blockRows, Tq - q0), visibleKeys = sq.offset + q0 + m
                BLAS.gemm(transA: false, transB: true, m: m, n: visibleKeys, k: D, alpha: scale, a: qh + q0 * qStride, lda: qStride,
                          b: kh, ldb: kvStride, beta: 0, c: p + q0 * Tk, ldc: Tk)
                for t in q0..<(q0 + m) {
                    let row = p + t * Tk, visible = sq.offset + t + 1
                    Softmax.forwardRow(row, count: visible)
                    (row + visible).update(repeating: 0, count: visibleKeys - visible)
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
    /// Backward of `forward` on packed sequences without a cache (each sequence's queries are its
    /// keys): recomputes P per head, then dV += Pᵀ·dO, dP = dO·Vᵀ, dS = P ⊙ (dP − rowsum(dP ⊙ P)),
    /// dQ = dS·K/√D, dK += dSᵀ·Q/√D. Tasks are (sequence, KV head), each owning its group's dK,
    /// dV, so lanes never collide. dq, dk and dv are overwritten on every sequence's rows.
    static func backward(dOut: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                         dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
                         shape s: Shape, lanes: Int) {
        let D = s.headDim
        precondition(s.sequences.allSatisfy { $0.keys == $0.queries && $0.keyRow == $0.queryRow },
                     "attention backward runs on whole packed sequences")
        let qStride = s.heads * D, kvStride = s.kvHeads * D
        let scale = 1 / Float(D).squareRoot()
        let io = BackwardPointers(dOut: dOut, q: q, k: k, v: v, dq: dq, dk: dk, dv: dv)
        let longest = s.sequences.map(\.queries).max() ?? 0
        let scratch = LaneScratch(lanes: lanes, count: 2 * longest * longest)
        try? Parallel.forEach(s.sequences.count * s.kvHeads, lanes: lanes) { task, lane in
            let (sq, kvh) = (s.sequences[task / s.kvHeads], task % s.kvHeads)
            let T = sq.queries, row0 = sq.queryRow
            let kh = io.k + row0 * kvStride + kvh * D, vh = io.v + row0 * kvStride + kvh * D
            let dkh = io.dk + row0 * kvStride + kvh * D, dvh = io.dv + row0 * kvStride + kvh * D
            for t in 0..<T {
                (dkh + t * kvStride).update(repeating: 0, count: D)
                (dvh + t * kvStride).update(repeating: 0, count: D)
            }
            let p = scratch.buffer(lane), dp = p + T * T
            for h in (kvh * s.group)..<((kvh + 1) * s.group) {
                let qh = io.q + row0 * qStride + h * D, doh = io.dOut + row0 * qStride + h * D
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
                              b: kh, ldb: kvStride, beta: 0, c: io.dq + row0 * qStride + h * D + q0 * qStride, ldc: qStride)
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
