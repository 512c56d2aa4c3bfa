import LinearAlgebra

/// The adapted linear layer, forward and backward: `y = x·Wᵀ + s·(x·Aᵀ)·Bᵀ` with W frozen
/// (out, in), A (r, in), B (out, r). The frozen products are the base's own (`LinearWeight`:
/// dense float32 or NF4); the adapter's are written here, once. Work is split across the model's
/// lanes; OpenBLAS runs single-threaded inside each lane.
extension LlamaModel {
    /// y (+)= x·Wᵀ + s·(x·Aᵀ)·Bᵀ for x (rows, in), y (rows, out). When `xa` is given it receives
    /// x·Aᵀ (rows, r), which backward needs for dB. The frozen product is W's own (dense or NF4);
    /// the adapter term is split by rows.
    func project(_ x: UnsafePointer<Float>, _ w: any LinearWeight, adapter: LoRAAdapter?, into y: UnsafeMutablePointer<Float>,
                 rows: Int, accumulate: Bool = false, xa: UnsafeMutablePointer<Float>? = nil) {
        let (outF, inF) = (w.rows, w.cols)
        w.forward(x, rows: rows, into: y, beta: accumulate ? 1 : 0, lanes: lanes)
        guard let adapter else { return }
        if rows >= 32 {
            let p = Pointers(x: x, y: y, xa: xa)
            Parallel.chunks(rows, lanes: lanes, minimumChunk: 16) { r in
                Self.addAdapter(adapter, x: p.x + r.lowerBound * inF, y: p.y + r.lowerBound * outF, rows: r.count, inF: inF, outF: outF,
                                xa: p.xa.map { $0 + r.lowerBound * adapter.rank })
            }
        } else {
            Self.addAdapter(adapter, x: x, y: y, rows: rows, inF: inF, outF: outF, xa: xa)
        }
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

    /// Backward of `project`: dx (+)= dy·W + s·(dy·B)·A, and into the adapter's gradients
    /// dB += s·dyᵀ·(x·Aᵀ), dA += (s·dy·B)ᵀ·x. dy (rows, out), x (rows, in), xa (rows, r).
    /// With `dW` (out, in), the weight is trained too: dW += dyᵀ·x.
    func projectBackward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, _ w: any LinearWeight, adapter: LoRAAdapter?,
                         xa: UnsafePointer<Float>?, dx: UnsafeMutablePointer<Float>, rows: Int, accumulate: Bool,
                         dW: UnsafeMutablePointer<Float>? = nil) {
        let (outF, inF) = (w.rows, w.cols)
        let r = adapter?.rank ?? 0
        w.backward(dy, rows: rows, into: dx, beta: accumulate ? 1 : 0, lanes: lanes)
        let dxa = UnsafeMutablePointer<Float>.allocate(capacity: max(1, rows * r))   // (rows, r) = s·dy·B
        defer { dxa.deallocate() }
        let p = Pointers(x: x, y: dx, xa: dxa)
        let dyp = ConstPointer(dy)
        if let ad = adapter {   // dx += (s·dy·B)·A, split by rows
            Parallel.chunks(rows, lanes: lanes, minimumChunk: 16) { rr in
                let m = rr.count, dy0 = dyp.pointer + rr.lowerBound * outF, dx0 = p.y + rr.lowerBound * inF
                let t = p.xa! + rr.lowerBound * r
                BLAS.gemm(transA: false, transB: false, m: m, n: r, k: outF, alpha: ad.scale, a: dy0, lda: outF,
                          b: ad.b, ldb: r, beta: 0, c: t, ldc: r)
                BLAS.gemm(transA: false, transB: false, m: m, n: inF, k: r, alpha: 1, a: t, lda: r,
                          b: ad.a, ldb: inF, beta: 1, c: dx0, ldc: inF)
            }
        }
        if let dW { addWeightGradient(dy: dy, x: x, dW: dW, rows: rows, outF: outF, inF: inF) }
        guard let ad = adapter, let xa else { return }
        let xap = ConstPointer(xa)
        if let gradB = ad.gradB {   // dB (out, r) += s · dyᵀ (out, rows) · xa (rows, r), split over out
            let g = MutablePointer(gradB)
            Parallel.chunks(outF, lanes: lanes, minimumChunk: 64) { o in
                BLAS.gemm(transA: true, transB: false, m: o.count, n: r, k: rows, alpha: ad.scale,
                          a: dyp.pointer + o.lowerBound, lda: outF, b: xap.pointer, ldb: r,
                          beta: 1, c: g.pointer + o.lowerBound * r, ldc: r)
            }
        }
        if let gradA = ad.gradA {   // dA (r, in) += dxaᵀ (r, rows) · x (rows, in), split over in
            let g = MutablePointer(gradA)
            Parallel.chunks(inF, lanes: lanes, minimumChunk: 64) { i in
                BLAS.gemm(transA: true, transB: false, m: r, n: i.count, k: rows, alpha: 1,
                          a: p.xa!, lda: r, b: p.x + i.lowerBound, ldb: inF,
                          beta: 1, c: g.pointer + i.lowerBound, ldc: inF)
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

struct MutablePointer: @unchecked Sendable {
    var pointer: UnsafeMutablePointer<Float>
    init(_ p: UnsafeMutablePointer<Float>) { pointer = p }
}
