import LinearAlgebra

/// The adapted linear layer, forward and backward: `y = x·Wᵀ [+ b] + s·(x·Aᵀ)·Bᵀ` with W frozen
/// (out, in), A (r, in), B (out, r), and a bias b (out) where the family has one. The frozen products are the base's own (`LinearWeight`:
/// dense float32 or NF4); the adapter's are written here, once.
///
/// Projections that read the same input (q, k, v; gate, up) run as one group: each lane takes
/// its block of x's rows through every projection of the group, frozen product then adapter, so
/// a layer's forward waits for its lanes 4 times instead of 14 (and its backward's input
/// gradients likewise), and a lane's rows of x are still in cache for the adapter's product.
/// OpenBLAS runs single-threaded inside each lane; an NF4 base is dequantised by each lane for
/// its own rows, as its backward always was (`pissa bench frozen`: ≈ 0.5 ms to dequantise 1536×576
/// against ≈ 16 ms for the product on 1024 rows).
extension DecoderModel {
    /// One projection of a group: y (rows, out) (+)= x·Wᵀ + b + s·(x·Aᵀ)·Bᵀ. When `xa` is given it
    /// receives x·Aᵀ (rows, r), which backward needs for dB.
    struct ProjectionOutput: @unchecked Sendable {
        var weight: any LinearWeight
        var bias: (any DenseWeight)? = nil
        var adapter: LoRAAdapter?
        var y: UnsafeMutablePointer<Float>
        var xa: UnsafeMutablePointer<Float>? = nil
        var accumulate = false
    }

    /// Every projection of `group` on the same x (rows, in). Training and prefill (≥ 32 rows)
    /// split x's rows across the lanes; decoding's few rows split each product's output columns
    /// instead, every projection of the group in one parallel region (a decoding step meets its
    /// lanes once per group, 4 times a layer, instead of once per projection).
    func project(_ x: UnsafePointer<Float>, _ group: [ProjectionOutput], rows: Int) {
        if rows < 32, group.contains(where: { $0.adapter?.dora != nil }) {
            // DoRA's gains need whole output rows: each projection on all lanes in turn.
            for p in group { Self.project(p, x: x, rows: 0..<rows, lanes: lanes) }
            return
        }
        guard rows >= 32 else {
            let xp = ConstPointer(x), lanes = self.lanes
            Parallel.chunks(lanes, lanes: lanes) { parts in
                for part in parts {
                    for p in group {
                        guard let o = Parallel.chunk(part, of: p.weight.rows, lanes: lanes, minimumChunk: DenseLinear.decodeSplitColumns)
                        else { continue }
                        Self.project(p, x: xp.pointer, rows: rows, outputs: o, savesXA: part == 0)
                    }
                }
            }
            return
        }
        let xp = ConstPointer(x)
        Parallel.chunks(rows, lanes: lanes, minimumChunk: 16) { r in
            for p in group { Self.project(p, x: xp.pointer, rows: r, lanes: 1) }
        }
    }

    /// Rows `r` of one projection: frozen product on `lanes`, then the adapter term; with DoRA
    /// both into z, then y (+)= g ⊙ z (`DoRA.swift`).
    private static func project(_ p: ProjectionOutput, x: UnsafePointer<Float>, rows r: Range<Int>, lanes: Int) {
        let (outF, inF) = (p.weight.rows, p.weight.cols)
        let x0 = x + r.lowerBound * inF, y0 = p.y + r.lowerBound * outF
        if let ad = p.adapter, let dora = ad.dora {
            let z = p.accumulate ? UnsafeMutablePointer<Float>.allocate(capacity: r.count * outF) : y0
            defer { if p.accumulate { z.deallocate() } }
            p.weight.forward(x0, rows: r.count, into: z, beta: 0, lanes: lanes)
            addAdapter(ad, x: x0, y: z, rows: r.count, inF: inF, outF: outF, xa: p.xa.map { $0 + r.lowerBound * ad.rank })
            applyGains(doraGains(dora, count: outF), z: z, y: y0, rows: r.count, accumulate: p.accumulate)
            addBias(p, y: y0, rows: r.count)   // PEFT's DoRA leaves the bias unscaled
            return
        }
        p.weight.forward(x0, rows: r.count, into: y0, beta: p.accumulate ? 1 : 0, lanes: lanes)
        addBias(p, y: y0, rows: r.count)
        if let ad = p.adapter {
            addAdapter(ad, x: x0, y: y0, rows: r.count, inF: inF, outF: outF, xa: p.xa.map { $0 + r.lowerBound * ad.rank })
        }
    }

    /// y (rows, out) += b, when the projection has a bias.
    private static func addBias(_ p: ProjectionOutput, y: UnsafeMutablePointer<Float>, rows: Int) {
        guard let bias = p.bias else { return }
        let outF = p.weight.rows
        bias.withValues { b in
            for i in 0..<rows { addInPlace(y + i * outF, b, count: outF) }
        }
    }

    /// Output columns `o` of one projection over all `rows` rows of x: frozen product and bias,
    /// then y[:, o] += s·(x·Aᵀ)·B[o]ᵀ (each lane forms the rank-r x·Aᵀ itself; the one with `savesXA`
    /// keeps it in `xa`).
    private static func project(_ p: ProjectionOutput, x: UnsafePointer<Float>, rows: Int, outputs o: Range<Int>, savesXA: Bool) {
        p.weight.forward(x, rows: rows, into: p.y, beta: p.accumulate ? 1 : 0, outputs: o)
        if let bias = p.bias {
            let outF = p.weight.rows
            bias.withValues { b in
                for n in 0..<rows { addInPlace(p.y + n * outF + o.lowerBound, b + o.lowerBound, count: o.count) }
            }
        }
        guard let ad = p.adapter else { return }
        let (outF, inF, r) = (p.weight.rows, p.weight.cols, ad.rank)
        let t = (savesXA ? p.xa : nil) ?? .allocate(capacity: rows * r)
        defer { if t != p.xa { t.deallocate() } }
        BLAS.gemm(transA: false, transB: true, m: rows, n: r, k: inF, alpha: 1, a: x, lda: inF, b: ad.a, ldb: inF, beta: 0, c: t, ldc: r)
        BLAS.gemm(transA: false, transB: true, m: rows, n: o.count, k: r, alpha: ad.scale, a: t, lda: r,
                  b: ad.b + o.lowerBound * r, ldb: r, beta: 1, c: p.y + o.lowerBound, ldc: outF)
    }

    /// y += s·(x·Aᵀ)·Bᵀ on a block of rows.
    private static func addAdapter(_ ad: LoRAAdapter, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                                   rows: Int, inF: Int, outF: Int, xa: UnsafeMutablePointer<Float>?) {
        let r = ad.rank
        let t = xa ?? .allocate(capacity: rows * r)
        defer { if xa == nil { t.deallocate() } }
        BLAS.gemm(transA: false, transB: true, m: rows, n: r, k: inF, alpha: 1, a: x, lda: inF,
                  b: ad.a, ldb: inF, beta: 0, c: t, ldc: r)
        BLAS.gemm(transA: false, transB: true, m: rows, n: outF, k: r, alpha: ad.scale, a: t, lda: r,
                  b: ad.b, ldb: r, beta: 1, c: y, ldc: outF)
    }

    /// One projection of a group in backward: its output gradient dy (rows, out) and the x·Aᵀ
    /// (rows, r) saved by forward.
    struct ProjectionGradient: @unchecked Sendable {
        var weight: any LinearWeight
        var bias: (any DenseWeight)? = nil
        var adapter: LoRAAdapter?
        var dy: UnsafePointer<Float>
        var xa: UnsafePointer<Float>?
    }

    /// Backward of `project` over a group that read x (rows, in): dx (+)= Σ dy·W + s·(dy·B)·A,
    /// in the group's order, split by rows; then for each projection dB += s·dyᵀ·(x·Aᵀ) (split
    /// over out) and dA += (s·dy·B)ᵀ·x (split over in), all in one parallel pass. A weight with
    /// a `gradient` (full fine-tuning) also gets dW += dyᵀ·x, and a trained bias db += Σ_rows dy.
    func projectBackward(_ projections: [ProjectionGradient], x: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                         rows: Int, accumulate: Bool) {
        // DoRA: dm from dy, then everything below runs on dz = g ⊙ dy.
        var doraGroup = projections, doraGradients: [UnsafeMutablePointer<Float>] = []
        defer { for d in doraGradients { d.deallocate() } }
        for i in doraGroup.indices {
            guard let dora = doraGroup[i].adapter?.dora else { continue }
            let dz = UnsafeMutablePointer<Float>.allocate(capacity: max(1, rows * doraGroup[i].weight.rows))
            doraGradients.append(dz)
            doraBackward(doraGroup[i], dora: dora, x: x, rows: rows, dz: dz)
            doraGroup[i].dy = UnsafePointer(dz)
        }
        let group = doraGroup
        let maxRank = group.map { $0.adapter?.rank ?? 0 }.max() ?? 0
        let dxa = UnsafeMutablePointer<Float>.allocate(capacity: max(1, group.count * rows * maxRank))   // s·dy·B per projection
        defer { dxa.deallocate() }
        let io = Pointers(x: x, y: dx, xa: dxa)
        Parallel.chunks(rows, lanes: lanes, minimumChunk: 16) { rr in
            for (i, p) in group.enumerated() {
                let (outF, inF) = (p.weight.rows, p.weight.cols)
                let m = rr.count, dy0 = p.dy + rr.lowerBound * outF, dx0 = io.y + rr.lowerBound * inF
                p.weight.backward(dy0, rows: m, into: dx0, beta: (i == 0 && !accumulate) ? 0 : 1, lanes: 1)
                guard let ad = p.adapter else { continue }
                let t = io.xa! + i * rows * maxRank + rr.lowerBound * ad.rank
                BLAS.gemm(transA: false, transB: false, m: m, n: ad.rank, k: outF, alpha: ad.scale, a: dy0, lda: outF,
                          b: ad.b, ldb: ad.rank, beta: 0, c: t, ldc: ad.rank)
                BLAS.gemm(transA: false, transB: false, m: m, n: inF, k: ad.rank, alpha: 1, a: t, lda: ad.rank,
                          b: ad.a, ldb: inF, beta: 1, c: dx0, ldc: inF)
            }
        }
        for p in group {
            if let dW = p.weight.gradient {
                addWeightGradient(dy: p.dy, x: x, dW: dW, rows: rows, outF: p.weight.rows, inF: p.weight.cols)
            }
            if let db = p.bias?.gradient {
                for n in 0..<rows { addInPlace(db, p.dy + n * p.weight.rows, count: p.weight.rows) }
            }
        }
        let lanes = self.lanes
        Parallel.chunks(lanes, lanes: lanes) { parts in
            for part in parts {
                for (i, p) in group.enumerated() {
                    guard let ad = p.adapter, let xa = p.xa else { continue }
                    let (outF, inF, r) = (p.weight.rows, p.weight.cols, ad.rank)
                    if let gradB = ad.gradB, let o = Parallel.chunk(part, of: outF, lanes: lanes, minimumChunk: 64) {
                        // dB (out, r) += s · dyᵀ (out, rows) · xa (rows, r)
                        BLAS.gemm(transA: true, transB: false, m: o.count, n: r, k: rows, alpha: ad.scale,
                                  a: p.dy + o.lowerBound, lda: outF, b: xa, ldb: r,
                                  beta: 1, c: gradB + o.lowerBound * r, ldc: r)
                    }
                    if let gradA = ad.gradA, let c = Parallel.chunk(part, of: inF, lanes: lanes, minimumChunk: 64) {
                        // dA (r, in) += dxaᵀ (r, rows) · x (rows, in)
                        BLAS.gemm(transA: true, transB: false, m: r, n: c.count, k: rows, alpha: 1,
                                  a: io.xa! + i * rows * maxRank, lda: r, b: io.x + c.lowerBound, ldb: inF,
                                  beta: 1, c: gradA + c.lowerBound, ldc: inF)
                    }
                }
            }
        }
    }
}

/// Raw pointers handed to parallel lanes; lanes touch disjoint ranges.
struct Pointers: @unchecked Sendable {
    var x: UnsafePointer<Float>
    var y: UnsafeMutablePointer<Float>
    var xa: UnsafeMutablePointer<Float>?
}

struct ConstPointer: @unchecked Sendable {
    var pointer: UnsafePointer<Float>
    init(_ p: UnsafePointer<Float>) { pointer = p }
}

struct MutablePointer<Element>: @unchecked Sendable {
    var pointer: UnsafeMutablePointer<Element>
    init(_ p: UnsafeMutablePointer<Element>) { pointer = p }
}
