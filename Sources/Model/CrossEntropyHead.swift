import Foundation
import LinearAlgebra

/// The output head and cross-entropy, forward and backward, over supervised rows only and in
/// chunks, so that no (N, V) logits matrix exists: per chunk of rows, logits = z·Eᵀ,
/// loss += logsumexp − logit[target], dlogits = (softmax − onehot) / normalizer, dz = dlogits·E
/// (and, when the head is trained, dE += dlogitsᵀ·z).
extension DecoderModel {
    /// Most rows per chunk. Every product of a chunk with E (V × C, 113 MB for SmolLM2) makes
    /// OpenBLAS pack all of E again, and (trained head) dE += dlogitsᵀ·z reads and writes all of
    /// dE: a chunk of n rows pays those passes for 2·n·V·C FLOPs. At 32 rows they took ≈ 15 % of
    /// a training step (BENCHMARKS.md); 128 rows keep them small with 25 MB of logits per lane.
    static let headChunkRows = 128

    /// Scratch for `headLossAndBackward`'s largest chunks on every lane.
    func headScratch() -> LaneScratch {
        LaneScratch(lanes: lanes, count: Self.headChunkRows * (config.vocabSize + 2 * config.hiddenSize))
    }

    /// Near-equal chunks of at most `headChunkRows`, as many for every lane where the rows allow,
    /// so that no lane idles while another finishes a last chunk.
    static func headChunks(rows: Int, lanes: Int) -> (size: Int, count: Int) {
        let lanes = max(1, lanes)
        let perLane = (rows + lanes * headChunkRows - 1) / (lanes * headChunkRows)
        let count = min(rows, max(1, perLane) * lanes)
        let size = (rows + count - 1) / count
        return (size, (rows + size - 1) / size)
    }

    /// Returns Σ NLL over rows whose target is ≥ 0 and writes dz (N, C) for d(Σ NLL / normalizer)
    /// (zero on unsupervised rows). z (N, C) is the final-normed hidden state.
    ///
    /// With `dHead` (V, C) the head's weight is trained too: dE += dlogitsᵀ·z per chunk. Chunks
    /// then run in rounds of `lanes` (one per lane), each round's dlogits kept and added into dE
    /// split over the vocabulary rows, chunk by chunk in order, so that lanes never write the same
    /// row and the sum's order does not depend on timing.
    ///
    /// `reusable` (`headScratch()`, kept by the trainer) spares allocating and page-faulting the
    /// chunks' logits (≈ 50 MB for SmolLM2 on two lanes) on every step.
    func headLossAndBackward(z: UnsafePointer<Float>, targets: [Int32], normalizer: Float,
                             dz: UnsafeMutablePointer<Float>, dHead: UnsafeMutablePointer<Float>? = nil,
                             reusable: LaneScratch? = nil) -> Double {
        let C = config.hiddenSize, V = config.vocabSize, N = targets.count
        dz.update(repeating: 0, count: N * C)
        let rows = targets.indices.filter { targets[$0] >= 0 }
        guard !rows.isEmpty else { return 0 }
        let (chunk, chunks) = Self.headChunks(rows: rows.count, lanes: lanes)
        let scratch = LaneScratch.reusing(reusable, lanes: lanes, count: chunk * (V + 2 * C))
        let losses = UnsafeMutablePointer<Double>.allocate(capacity: chunks)
        defer { losses.deallocate() }
        let io = HeadPointers(z: z, dz: dz, losses: losses)
        let inv = 1 / normalizer
        outputHeadWeight.withValues { ep in
            let e = ConstPointer(ep)
            /// Chunk ci in scratch slot `slot`: logits, loss, dlogits (left in the slot), dz rows.
            let run: @Sendable (Int, Int) -> Void = { ci, slot in
                let mine = rows[(ci * chunk)..<min(rows.count, (ci + 1) * chunk)]
                let n = mine.count
                let zc = scratch.buffer(slot), dzc = zc + chunk * C, logits = dzc + chunk * C
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
            guard let dHead else {
                try? Parallel.forEach(chunks, lanes: lanes) { ci, lane in run(ci, lane) }
                return
            }
            let g = MutablePointer(dHead)
            for start in stride(from: 0, to: chunks, by: lanes) {
                let round = start..<min(chunks, start + lanes)
                try? Parallel.forEach(round.count, lanes: lanes) { i, _ in run(start + i, i) }
                // dE (V, C) += dlogitsᵀ (V, n) · z_chunk (n, C) for each chunk of the round, in order.
                Parallel.chunks(V, lanes: lanes, minimumChunk: 256) { vr in
                    for (i, ci) in round.enumerated() {
                        let n = min(rows.count, (ci + 1) * chunk) - ci * chunk
                        let zc = scratch.buffer(i), logits = zc + 2 * chunk * C
                        BLAS.gemm(transA: true, transB: false, m: vr.count, n: C, k: n, alpha: 1,
                                  a: logits + vr.lowerBound, lda: V, b: zc, ldb: C,
                                  beta: 1, c: g.pointer + vr.lowerBound * C, ldc: C)
                    }
                }
            }
        }
        return (0..<chunks).reduce(0.0) { $0 + losses[$1] }
    }

    /// Replaces a row of logits by `scale · softmax(row)` and returns logsumexp(row).
    static func softmaxGradientRow(_ x: UnsafeMutablePointer<Float>, count: Int, scale: Float) -> Double {
        let (m, s) = CPUKernels.softmaxRow(x, count: count, scale: scale)
        return Double(m) + Foundation.log(Double(s))
    }
}

struct HeadPointers: @unchecked Sendable {
    var z: UnsafePointer<Float>
    var dz: UnsafeMutablePointer<Float>
    var losses: UnsafeMutablePointer<Double>
}
