import LinearAlgebra

/// Causal grouped-query attention over sequences packed back to back.
///
/// Rows (row-major): q and out (·, H, D), k and v (·, KV, D). Each sequence names its query rows
/// and its key rows; a sequence only attends to its own keys, so sequences packed into one
/// buffer need no mask beyond the causal one. Query head h reads key/value head h / (H / KV).
public enum Attention {
    /// Query rows per causal block: each block multiplies only the keys its last row sees.
    static let blockRows = 64

    /// Below this many FLOPs (q·kᵀ and p·v over every query's keys; ≈ 100 µs) a forward call runs
    /// on one lane: handing it to a second thread costs more than it saves.
    static let parallelFLOPs = 2_000_000

    /// The FLOPs of one of attention's products (q·kᵀ, p·v, and the four of backward) over the
    /// causal triangle only, for sequences of `lengths` tokens: 2·H·D·t(t+1)/2 per sequence of t.
    /// A block's keys beyond the triangle and recomputed scores are work the kernels add.
    public static func causalProductFLOPs(lengths: [Int], heads: Int, headDim: Int) -> Double {
        2 * Double(heads * headDim) * lengths.reduce(0.0) { $0 + Double($1) * Double($1 + 1) / 2 }
    }

    /// The sequences of one call, the head layout, the score scale and the causal window.
    package struct Shape {
        /// One sequence: queries are rows `queryRow ..< queryRow + queries` of q and out, keys rows
        /// `keyRow ..< keyRow + keys` of k and v; query i sits at position `keys − queries + i`
        /// (the first `keys − queries` keys were cached earlier).
        struct Sequence {
            var queryRow: Int, queries: Int, keyRow: Int, keys: Int
            var offset: Int { keys - queries }
        }

        var sequences: [Sequence]
        var heads: Int, kvHeads: Int, headDim: Int
        /// Multiplies q·kᵀ (1/√D unless the family says otherwise).
        var scale: Float
        /// A query at position p sees keys p − window < j ≤ p; nil: every j ≤ p.
        var window: Int?
        var group: Int { heads / kvHeads }

        /// Sequences of `lengths` rows packed back to back in q, k and v alike, each attending
        /// to itself (training, evaluation, prefill without a cache).
        package static func packed(lengths: [Int], heads: Int, kvHeads: Int, headDim: Int, scale: Float? = nil, window: Int? = nil) -> Shape {
            var row = 0
            let sequences = lengths.map { n in
                defer { row += n }
                return Sequence(queryRow: row, queries: n, keyRow: row, keys: n)
            }
            return Shape(sequences: sequences, heads: heads, kvHeads: kvHeads, headDim: headDim,
                         scale: scale ?? 1 / Float(headDim).squareRoot(), window: window)
        }

        /// Sequences of `lengths` new rows packed back to back in q, each continuing a cached
        /// sequence whose keys start at row `keyRows[i]` of k and v and already hold `starts[i]`
        /// positions (the new rows' keys appended after them).
        static func cached(lengths: [Int], keyRows: [Int], starts: [Int], heads: Int, kvHeads: Int, headDim: Int,
                           scale: Float? = nil, window: Int? = nil) -> Shape {
            var row = 0
            let sequences = lengths.indices.map { i in
                defer { row += lengths[i] }
                return Sequence(queryRow: row, queries: lengths[i], keyRow: keyRows[i], keys: starts[i] + lengths[i])
            }
            return Shape(sequences: sequences, heads: heads, kvHeads: kvHeads, headDim: headDim,
                         scale: scale ?? 1 / Float(headDim).squareRoot(), window: window)
        }

        /// The first key a block of query rows starting at position `position` can see.
        func firstKey(forPosition position: Int) -> Int {
            window.map { max(0, position - $0 + 1) } ?? 0
        }
    }

    /// `out = softmax(scale·q·kᵀ + causal window)·v` for every (sequence, head). Tasks are (sequence, KV
    /// head), spread over `lanes`: the group's query heads share their keys and values, so each
    /// block of query rows is gathered for the whole group (`GroupBlock`) and multiplied in one
    /// product rather than one per head.
    package static func forward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                        out: UnsafeMutablePointer<Float>, shape s: Shape, lanes: Int) {
        let D = s.headDim, G = s.group
        let qStride = s.heads * D, kvStride = s.kvHeads * D
        let scale = s.scale
        let pointers = SendablePointers(q: q, k: k, v: v, out: out)
        let longest = s.sequences.map(\.keys).max() ?? 0
        let layout = GroupBlock(group: G, headDim: D, keys: longest)
        // A decoding step's few queries are microseconds of work: one lane, no handover.
        let work = s.sequences.reduce(0) { $0 + $1.queries * $1.keys } * 4 * s.heads * D
        let lanes = work < Self.parallelFLOPs ? 1 : lanes
        let scratch = LaneScratch(lanes: lanes, count: layout.forwardCount)
        try? Parallel.forEach(s.sequences.count * s.kvHeads, lanes: lanes) { task, lane in
            let (sq, kvh) = (s.sequences[task / s.kvHeads], task % s.kvHeads)
            let (Tq, Tk) = (sq.queries, sq.keys)
            let qg = pointers.q + sq.queryRow * qStride + kvh * G * D     // the group's first query head
            let og = pointers.out + sq.queryRow * qStride + kvh * G * D
            let kh = pointers.k + sq.keyRow * kvStride + kvh * D
            let vh = pointers.v + sq.keyRow * kvStride + kvh * D
            let qs = scratch.buffer(lane), os = qs + layout.rowsCount, p = os + layout.rowsCount   // (G·m, D), (G·m, D), (G·m, Tk)
            // Query blocks only multiply the keys they can see (causal, and within the window).
            for q0 in stride(from: 0, to: Tq, by: blockRows) {
                let m = min(blockRows, Tq - q0), keyEnd = sq.offset + q0 + m
                let keyStart = s.firstKey(forPosition: sq.offset + q0), n = keyEnd - keyStart
                layout.gather(qg + q0 * qStride, stride: qStride, rows: m, into: qs)
                BLAS.gemm(transA: false, transB: true, m: G * m, n: n, k: D, alpha: scale, a: qs, lda: D,
                          b: kh + keyStart * kvStride, ldb: kvStride, beta: 0, c: p, ldc: Tk)
                for r in 0..<(G * m) {
                    let row = p + r * Tk, position = sq.offset + q0 + r % m
                    let lo = s.firstKey(forPosition: position) - keyStart, hi = position + 1 - keyStart
                    row.update(repeating: 0, count: lo)
                    CPUKernels.softmaxRow(row + lo, count: hi - lo)
                    (row + hi).update(repeating: 0, count: n - hi)
                }
                BLAS.gemm(transA: false, transB: false, m: G * m, n: D, k: n, alpha: 1, a: p, lda: Tk,
                          b: vh + keyStart * kvStride, ldb: kvStride, beta: 0, c: os, ldc: D)
                layout.scatter(os, rows: m, into: og + q0 * qStride, stride: qStride)
            }
        }
    }
}

/// A block of m query rows of the G heads of one KV group, gathered head-major into a dense
/// (G·m, D) matrix: row j·m + t is head j of query row t. Sizes are for blocks of up to
/// `Attention.blockRows` rows against up to `keys` keys.
struct GroupBlock {
    let group: Int, headDim: Int, keys: Int
    /// Floats of one gathered (G·blockRows, D) block.
    var rowsCount: Int { group * Attention.blockRows * headDim }
    /// Floats of a (G·blockRows, keys) block of scores.
    var scoresCount: Int { group * Attention.blockRows * keys }
    /// Forward scratch: gathered queries, outputs, scores.
    var forwardCount: Int { 2 * rowsCount + scoresCount }
    /// Backward scratch: gathered queries, output gradients, query gradients, P and dP.
    var backwardCount: Int { 3 * rowsCount + 2 * scoresCount }

    /// Copies rows t < m of the group's heads (consecutive D-wide slices of a row `stride` wide).
    func gather(_ src: UnsafePointer<Float>, stride: Int, rows m: Int, into dst: UnsafeMutablePointer<Float>) {
        for j in 0..<group {
            for t in 0..<m { (dst + (j * m + t) * headDim).update(from: src + t * stride + j * headDim, count: headDim) }
        }
    }

    /// The inverse of `gather`: writes each head's rows back into their slices of `dst`.
    func scatter(_ src: UnsafePointer<Float>, rows m: Int, into dst: UnsafeMutablePointer<Float>, stride: Int) {
        for j in 0..<group {
            for t in 0..<m { (dst + t * stride + j * headDim).update(from: src + (j * m + t) * headDim, count: headDim) }
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
    /// Lanes, and floats per lane.
    let lanes: Int, count: Int
    /// The scratch whose buffers a view uses (kept alive by it); nil when this one owns its storage.
    private let parent: LaneScratch?

    init(lanes: Int, count: Int) {
        (self.lanes, self.count) = (max(1, lanes), count)
        storage = .allocate(capacity: self.lanes * count)
        parent = nil
    }

    /// A scratch on `parent`'s buffers of `lanes`.
    init(viewing parent: LaneScratch, lanes: Range<Int>) {
        precondition(!lanes.isEmpty && lanes.upperBound <= parent.lanes, "lanes \(lanes) of a scratch for \(parent.lanes)")
        (self.lanes, count) = (lanes.count, parent.count)
        storage = parent.buffer(lanes.lowerBound)
        self.parent = parent
    }

    /// This scratch when it holds `count` floats for each of `lanes` lanes, else a new one.
    static func reusing(_ scratch: LaneScratch?, lanes: Int, count: Int) -> LaneScratch {
        if let scratch, scratch.lanes >= lanes, scratch.count >= count { return scratch }
        return LaneScratch(lanes: lanes, count: count)
    }

    deinit { if parent == nil { storage.deallocate() } }

    func buffer(_ lane: Int) -> UnsafeMutablePointer<Float> { storage + lane * count }
}

extension Attention {
    /// Backward of `forward` on packed sequences without a cache (each sequence's queries are its
    /// keys): recomputes P per block of the group's query rows, then dV += Pᵀ·dO, dP = dO·Vᵀ,
    /// dS = P ⊙ (dP − rowsum(dP ⊙ P)), dQ = scale·dS·K, dK += scale·dSᵀ·Q. Tasks are (sequence, KV
    /// head), each owning its group's dK, dV, so lanes never collide. dq, dk and dv are
    /// overwritten on every sequence's rows.
    package static func backward(dOut: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                         dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
                         shape s: Shape, lanes: Int) {
        let D = s.headDim, G = s.group
        precondition(s.sequences.allSatisfy { $0.keys == $0.queries && $0.keyRow == $0.queryRow },
                     "attention backward runs on whole packed sequences")
        let qStride = s.heads * D, kvStride = s.kvHeads * D
        let scale = s.scale
        let io = BackwardPointers(dOut: dOut, q: q, k: k, v: v, dq: dq, dk: dk, dv: dv)
        let longest = s.sequences.map(\.queries).max() ?? 0
        let layout = GroupBlock(group: G, headDim: D, keys: longest)
        let scratch = LaneScratch(lanes: lanes, count: layout.backwardCount)
        try? Parallel.forEach(s.sequences.count * s.kvHeads, lanes: lanes) { task, lane in
            let (sq, kvh) = (s.sequences[task / s.kvHeads], task % s.kvHeads)
            let T = sq.queries, row0 = sq.queryRow
            let kh = io.k + row0 * kvStride + kvh * D, vh = io.v + row0 * kvStride + kvh * D
            let dkh = io.dk + row0 * kvStride + kvh * D, dvh = io.dv + row0 * kvStride + kvh * D
            let qg = io.q + row0 * qStride + kvh * G * D, dog = io.dOut + row0 * qStride + kvh * G * D
            let dqg = io.dq + row0 * qStride + kvh * G * D
            for t in 0..<T {
                (dkh + t * kvStride).update(repeating: 0, count: D)
                (dvh + t * kvStride).update(repeating: 0, count: D)
            }
            let qs = scratch.buffer(lane), dos = qs + layout.rowsCount, dqs = dos + layout.rowsCount   // (G·m, D) each
            let p = dqs + layout.rowsCount, dp = p + layout.scoresCount                                // (G·m, T) each
            for q0 in stride(from: 0, to: T, by: blockRows) {
                let m = min(blockRows, T - q0), keyEnd = q0 + m   // keys visible to this block
                let keyStart = s.firstKey(forPosition: q0), n = keyEnd - keyStart
                let kb = kh + keyStart * kvStride, vb = vh + keyStart * kvStride
                layout.gather(qg + q0 * qStride, stride: qStride, rows: m, into: qs)
                layout.gather(dog + q0 * qStride, stride: qStride, rows: m, into: dos)
                BLAS.gemm(transA: false, transB: true, m: G * m, n: n, k: D, alpha: scale, a: qs, lda: D,
                          b: kb, ldb: kvStride, beta: 0, c: p, ldc: T)
                for r in 0..<(G * m) {
                    let row = p + r * T, position = q0 + r % m
                    let lo = s.firstKey(forPosition: position) - keyStart, hi = position + 1 - keyStart
                    row.update(repeating: 0, count: lo)
                    CPUKernels.softmaxRow(row + lo, count: hi - lo)
                    (row + hi).update(repeating: 0, count: n - hi)
                }
                // dV += Pᵀ·dO
                BLAS.gemm(transA: true, transB: false, m: n, n: D, k: G * m, alpha: 1, a: p, lda: T,
                          b: dos, ldb: D, beta: 1, c: dvh + keyStart * kvStride, ldc: kvStride)
                // dP = dO·Vᵀ, then dS in place (scaled for both dQ and dK)
                BLAS.gemm(transA: false, transB: true, m: G * m, n: n, k: D, alpha: 1, a: dos, lda: D,
                          b: vb, ldb: kvStride, beta: 0, c: dp, ldc: T)
                for r in 0..<(G * m) {
                    let position = q0 + r % m
                    let lo = s.firstKey(forPosition: position) - keyStart, hi = position + 1 - keyStart
                    let pr = p + r * T + lo, dr = dp + r * T + lo, count = hi - lo
                    CPUKernels.softmaxBackwardRow(p: pr, dp: dr, count: count, scale: scale)
                    (dp + r * T).update(repeating: 0, count: lo)
                    (dr + count).update(repeating: 0, count: n - hi)
                }
                // dQ = dS·K, dK += dSᵀ·Q
                BLAS.gemm(transA: false, transB: false, m: G * m, n: D, k: n, alpha: 1, a: dp, lda: T,
                          b: kb, ldb: kvStride, beta: 0, c: dqs, ldc: D)
                layout.scatter(dqs, rows: m, into: dqg + q0 * qStride, stride: qStride)
                BLAS.gemm(transA: true, transB: false, m: n, n: D, k: G * m, alpha: 1, a: dp, lda: T,
                          b: qs, ldb: D, beta: 1, c: dkh + keyStart * kvStride, ldc: kvStride)
            }
        }
    }
}

struct BackwardPointers: @unchecked Sendable {
    var dOut: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>
    var dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>
}
