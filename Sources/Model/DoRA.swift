import Foundation
import LinearAlgebra

/// DoRA's steps of the adapted linear layer (`DoRAMagnitude`): with z = x·Wᵀ + s·(x·Aᵀ)·Bᵀ the
/// LoRA output and g = m / n per output feature (n = ‖W + s·B·A‖ per row, a constant in
/// backward), forward is y = g ⊙ z and backward
///
///     dz = g ⊙ dy                          (then LoRA's backward on dz: dx, dA, dB)
///     dm_j += Σ_rows dy_ij · z_ij / n_j
///
/// z is not kept from forward: backward recomputes it from x and the saved x·Aᵀ, one more
/// frozen product per DoRA projection (what PEFT's own DoRA layer also pays, in its norm).
extension DecoderModel {
    /// g = m / n for one adapter (out floats).
    static func doraGains(_ dora: DoRAMagnitude, count: Int) -> [Float] {
        (0..<count).map { dora.magnitude[$0] / dora.weightNorm[$0] }
    }

    /// y (rows, out) (+)= g ⊙ z, row by row.
    static func applyGains(_ g: [Float], z: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, rows: Int, accumulate: Bool) {
        let outF = g.count
        g.withUnsafeBufferPointer { gp in
            for i in 0..<rows {
                let zi = z + i * outF, yi = y + i * outF
                if accumulate {
                    for j in 0..<outF { yi[j] += gp[j] * zi[j] }
                } else {
                    for j in 0..<outF { yi[j] = gp[j] * zi[j] }
                }
            }
        }
    }

    /// Backward's DoRA step for one projection that read x (rows, in): writes dz = g ⊙ dy into
    /// `dz` (rows, out) and adds dm into the magnitude's gradient. Split by rows over the lanes,
    /// each recomputing its rows of z; the lanes' partial sums of dm are added in lane order.
    func doraBackward(_ p: ProjectionGradient, dora: DoRAMagnitude, x: UnsafePointer<Float>, rows: Int,
                      dz: UnsafeMutablePointer<Float>) {
        guard let ad = p.adapter else { return }
        let (outF, inF, r) = (p.weight.rows, p.weight.cols, ad.rank)
        let g = Self.doraGains(dora, count: outF)
        let lanes = max(1, min(self.lanes, rows / 16))
        let partial = Slots<[Double]>(count: lanes)
        let io = Pointers(x: x, y: dz, xa: p.xa.map { UnsafeMutablePointer(mutating: $0) })
        let dyp = ConstPointer(p.dy), weight = p.weight
        Parallel.chunks(lanes, lanes: lanes) { parts in
            for part in parts {
                guard let rr = Parallel.chunk(part, of: rows, lanes: lanes, minimumChunk: 1) else { partial[part] = []; continue }
                let m = rr.count
                let z = UnsafeMutablePointer<Float>.allocate(capacity: m * outF)
                defer { z.deallocate() }
                let x0 = io.x + rr.lowerBound * inF, dy0 = dyp.pointer + rr.lowerBound * outF
                weight.forward(x0, rows: m, into: z, beta: 0, lanes: 1)
                let xa: UnsafeMutablePointer<Float>
                if let saved = io.xa { xa = saved + rr.lowerBound * r } else {
                    xa = .allocate(capacity: m * r)
                    BLAS.gemm(transA: false, transB: true, m: m, n: r, k: inF, alpha: 1, a: x0, lda: inF, b: ad.a, ldb: inF,
                              beta: 0, c: xa, ldc: r)
                }
                defer { if io.xa == nil { xa.deallocate() } }
                BLAS.gemm(transA: false, transB: true, m: m, n: outF, k: r, alpha: ad.scale, a: xa, lda: r,
                          b: ad.b, ldb: r, beta: 1, c: z, ldc: outF)
                var sums = [Double](repeating: 0, count: outF)
                let dz0 = io.y + rr.lowerBound * outF
                for i in 0..<m {
                    for j in 0..<outF {
                        let d = dy0[i * outF + j]
                        sums[j] += Double(d) * Double(z[i * outF + j])
                        dz0[i * outF + j] = g[j] * d
                    }
                }
                partial[part] = sums
            }
        }
        guard let dm = dora.gradMagnitude else { return }
        for sums in partial.values where !sums.isEmpty {
            for j in 0..<outF { dm[j] += Float(sums[j] / Double(dora.weightNorm[j])) }
        }
    }

    /// Recomputes n = ‖W + s·B·A‖ per output row of every DoRA adapter from its current A and B:
    /// n² = ‖W_j‖² + 2s·Σ_k B_jk (W·Aᵀ)_jk + s²·B_j (A·Aᵀ) B_jᵀ, with ‖W_j‖² of the frozen weight
    /// computed on the first call (`baseSquaredNorm` starts as NaN). Call it after every change
    /// of the factors (each optimiser step, loading).
    public func refreshDoRANorms(_ adapters: ModelAdapters) {
        let jobs: [(Int, Int, LoRAAdapter)] = adapters.layers.enumerated().flatMap { l, layer in
            layer.enumerated().compactMap { slot, ad in ad.flatMap { $0.dora == nil ? nil : (l, slot, $0) } }
        }
        guard !jobs.isEmpty else { return }
        let saved = BLAS.threadCount
        BLAS.threadCount = 1
        defer { BLAS.threadCount = saved }
        let model = self
        try! Parallel.forEach(jobs.count, lanes: lanes) { i in   // the body throws nothing
            let (l, slot, ad) = jobs[i]
            model.refreshDoRANorm(ad, weight: model.layerWeights(l).projections[slot])
        }
    }

    private func refreshDoRANorm(_ ad: LoRAAdapter, weight: any LinearWeight) {
        guard let dora = ad.dora else { return }
        let (outF, inF, r) = (weight.rows, weight.cols, ad.rank)
        if dora.baseSquaredNorm[0].isNaN {
            let w = weight.dequantized()
            for j in 0..<outF {
                var sum = 0.0
                for k in 0..<inF { let v = Double(w.storage[j * inF + k]); sum += v * v }
                dora.baseSquaredNorm[j] = sum
            }
        }
        // aw = A·Wᵀ (r, out), aa = A·Aᵀ (r, r)
        var aw = [Float](repeating: 0, count: r * outF), aa = [Float](repeating: 0, count: r * r)
        aw.withUnsafeMutableBufferPointer { weight.forward(ad.a, rows: r, into: $0.baseAddress!, beta: 0, lanes: 1) }
        aa.withUnsafeMutableBufferPointer {
            BLAS.gemm(transA: false, transB: true, m: r, n: r, k: inF, alpha: 1, a: ad.a, lda: inF, b: ad.a, ldb: inF,
                      beta: 0, c: $0.baseAddress!, ldc: r)
        }
        let s = Double(ad.scale)
        for j in 0..<outF {
            var cross = 0.0, quadratic = 0.0
            for k in 0..<r {
                let bjk = Double(ad.b[j * r + k])
                cross += bjk * Double(aw[k * outF + j])
                var row = 0.0
                for l in 0..<r { row += Double(aa[k * r + l]) * Double(ad.b[j * r + l]) }
                quadratic += bjk * row
            }
            dora.weightNorm[j] = Float(max(0, dora.baseSquaredNorm[j] + 2 * s * cross + s * s * quadratic).squareRoot())
        }
    }
}
