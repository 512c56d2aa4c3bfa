import Foundation
import LinearAlgebra

/// The output head and cross-entropy, forward and backward, over supervised rows only and in
/// chunks, so that no (N, V) logits matrix exists: per chunk of rows, logits = z·Eᵀ,
/// loss += logsumexp − logit[target], dlogits = (softmax − onehot) / normalizer, dz = dlogits·E.
extension LlamaModel {
    static let headChunkRows = 32

    /// Returns Σ NLL over rows whose target is ≥ 0 and writes dz (N, C) for d(Σ NLL / normalizer)
    /// (zero on unsupervised rows). z (N, C) is the final-normed hidden state.
    func headLossAndBackward(z: UnsafePointer<Float>, targets: [Int32], normalizer: Float,
                             dz: UnsafeMutablePointer<Float>) -> Double {
        let C = config.hiddenSize, V = config.vocabSize, N = targets.count
        dz.update(repeating: 0, count: N * C)
        let rows = targets.indices.filter { targets[$0] >= 0 }
        guard !rows.isEmpty else { return 0 }
        let chunk = Self.headChunkRows
        let chunks = (rows.count + chunk - 1) / chunk
        let scratch = LaneScratch(lanes: lanes, count: chunk * (V + 2 * C))
        let losses = UnsafeMutablePointer<Double>.allocate(capacity: chunks)
        defer { losses.deallocate() }
        let io = HeadPointers(z: z, dz: dz, losses: losses)
        let inv = 1 / normalizer
        weights.outputHead.storage.withUnsafeBufferPointer { ep in
            let e = ConstPointer(ep.baseAddress!)
            try? Parallel.forEach(chunks, lanes: lanes) { ci, lane in
                let mine = rows[(ci * chunk)..<min(rows.count, (ci + 1) * chunk)]
                let n = mine.count
                let zc = scratch.buffer(lane), dzc = zc + chunk * C, logits = dzc + chunk * C
                for (i, r) in mine.enumerated() { (zc + i * C).update(from: io.z + r * C, count: C) }
                BLAS.gemm(transA: false, transB: true, m: n, n: V, k: C, alpha: 1, a: zc, lda: C,
                          b: e.pointer, ldb: C, beta: 0, c: logits, ldc: V)
                var loss = 0.0
                for (i, r) in mine.enumerated() {
                    let row = logits + i * V, target = Int(targets[r])
                    let targetLogit = row[target]
                    let lse = Self.softmaxGradientRow(row, count: V, scale: inv)
                    row[target] -= inv
                    loss += lse - Double(targetLogit)
                }
                io.losses[ci] = loss
                BLAS.gemm(transA: false, transB: false, m: n, n: C, k: V, alpha: 1, a: logits, lda: V,
                          b: e.pointer, ldb: C, beta: 0, c: dzc, ldc: C)
                for (i, r) in mine.enumerated() { (io.dz + r * C).update(from: dzc + i * C, count: C) }
            }
        }
        return (0..<chunks).reduce(0.0) { $0 + losses[$1] }
    }

    /// Replaces a row of logits by `scale · softmax(row)` and returns logsumexp(row).
    static func softmaxGradientRow(_ x: UnsafeMutablePointer<Float>, count: Int, scale: Float) -> Double {
        var m8 = Vec8(repeating: -.infinity), i = 0
        while i + 8 <= count { m8 = max8(m8, load8(x + i)); i += 8 }
        var m = m8.max()
        while i < count { m = Swift.max(m, x[i]); i += 1 }
        let mv = Vec8(repeating: m)
        var s8 = Vec8(), s: Float = 0
        i = 0
        while i + 8 <= count { let e = exp8(load8(x + i) - mv); store8(e, x + i); s8 += e; i += 8 }
        s = s8.sum()
        while i < count { let e = exp1(x[i] - m); x[i] = e; s += e; i += 1 }
        let k = scale / s
        i = 0
        while i + 8 <= count { store8(load8(x + i) * k, x + i); i += 8 }
        while i < count { x[i] *= k; i += 1 }
        return Double(m) + Foundation.log(Double(s))
    }
}

struct HeadPointers: @unchecked Sendable {
    var z: UnsafePointer<Float>
    var dz: UnsafeMutablePointer<Float>
    var losses: UnsafeMutablePointer<Double>
}
