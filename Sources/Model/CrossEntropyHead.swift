import Foundation
import LinearAlgebra

/// The output head and cross-entropy, forward and backward, over supervised rows only and in
/// chunks of rows, so that no (N, V) logits matrix exists. Per chunk, with E the head (V × C):
/// loss += logsumexp(z·Eᵀ) − logit[target] and dz = (softmax(z·Eᵀ)·E − E[target]) / normalizer.
///
/// A frozen head (adapter training) never holds a chunk's full logits rows either: it walks the
/// vocabulary in tiles of `headVocabTile` rows of E with an online log-sum-exp, as flash
/// attention walks keys. Per tile: logits = z·E_tileᵀ, then per row the running max m and sum s
/// are updated, the tile's logits replaced by e^(logit − m), the accumulator softmax·E so far
/// rescaled when m grew, and acc += e^(logits − m)·E_tile (without the target's term). Finally
/// dz = (acc / s + (p_target − 1)·E[target]) / normalizer. The same two products per row as a
/// full row would take, with a tile of scratch. A trained head (full fine-tuning) needs every
/// softmax row for dE += dlogitsᵀ·z, so it keeps full logits rows per chunk.
extension DecoderModel {
    /// Most rows per chunk. Every product of a chunk with E (V × C, 113 MB for SmolLM2) makes
    /// OpenBLAS pack all of E again, and (trained head) dE += dlogitsᵀ·z reads and writes all of
    /// dE: a chunk of n rows pays those passes for 2·n·V·C FLOPs. At 32 rows they took ≈ 15 % of
    /// a training step (BENCHMARKS.md); 128 rows keep them small.
    static let headChunkRows = 128

    /// Vocabulary rows per tile of a frozen head's online pass: a chunk's tile of logits (128 ×
    /// 2048 floats, 1 MB) stays in cache from its product through e^(x − m) into the next
    /// product, and so, mostly, does the tile of E (5 MB for Gemma 3) that both products read.
    /// On Gemma 3 training (Zen 4), 2048 ran 2 % faster than 4096 and 3 % faster than 8192.
    static let headVocabTile = 2048

    /// Floats per lane that `headLossAndBackward` needs for chunks of `rows` rows.
    static func headScratchFloats(rows: Int, config c: ModelConfig, trainedHead: Bool, tile: Int = headVocabTile) -> Int {
        let C = c.hiddenSize
        return trainedHead ? rows * (c.vocabSize + 2 * C) : rows * (min(tile, c.vocabSize) + 2 * C + 3)
    }

    /// Scratch for `headLossAndBackward`'s largest chunks on every lane.
    func headScratch() -> LaneScratch {
        LaneScratch(lanes: lanes, count: Self.headScratchFloats(rows: Self.headChunkRows, config: config,
                                                                trainedHead: trainsHead))
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
    /// chunks' scratch on every step. `vocabTile` (the frozen head's tile) is for tests.
    func headLossAndBackward(z: UnsafePointer<Float>, targets: [Int32], normalizer: Float,
                             dz: UnsafeMutablePointer<Float>, dHead: UnsafeMutablePointer<Float>? = nil,
                             reusable: LaneScratch? = nil, vocabTile: Int = headVocabTile) -> Double {
        let C = config.hiddenSize, V = config.vocabSize, N = targets.count
        dz.update(repeating: 0, count: N * C)
        let rows = targets.indices.filter { targets[$0] >= 0 }
        guard !rows.isEmpty else { return 0 }
        let (chunk, chunks) = Self.headChunks(rows: rows.count, lanes: lanes)
        let tile = max(1, min(vocabTile, V))
        let floats = Self.headScratchFloats(rows: chunk, config: config, trainedHead: dHead != nil, tile: tile)
        let scratch = LaneScratch.reusing(reusable, lanes: lanes, count: floats)
        let losses = UnsafeMutablePointer<Double>.allocate(capacity: chunks)
        defer { losses.deallocate() }
        let io = HeadPointers(z: z, dz: dz, losses: losses)
        let inv = 1 / normalizer
        outputHeadWeight.withValues { ep in
            let e = ConstPointer(ep)
            guard let dHead else {
                try? Parallel.forEach(chunks, lanes: lanes) { ci, lane in
                    let mine = rows[(ci * chunk)..<min(rows.count, (ci + 1) * chunk)]
                    io.losses[ci] = Self.frozenHeadChunk(mine, capacity: chunk, targets: targets, head: e.pointer, vocab: V,
                                                         hidden: C, tile: tile, scale: inv, io: io, buffer: scratch.buffer(lane))
                }
                return
            }
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

    /// One chunk of a frozen head's online pass (the rows `mine` of z, at most `capacity`), in
    /// `buffer` of `headScratchFloats(rows: capacity, …, tile:)` floats: writes the rows' dz and
    /// returns their Σ NLL.
    static func frozenHeadChunk(_ mine: ArraySlice<Int>, capacity: Int, targets: [Int32], head e: UnsafePointer<Float>,
                                vocab V: Int, hidden C: Int, tile: Int, scale inv: Float, io: HeadPointers,
                                buffer: UnsafeMutablePointer<Float>) -> Double {
        let n = mine.count
        let zc = buffer, acc = zc + capacity * C, logits = acc + capacity * C
        let maxes = logits + capacity * tile, sums = maxes + capacity, targetLogits = sums + capacity
        for (i, r) in mine.enumerated() { (zc + i * C).update(from: io.z + r * C, count: C) }
        maxes.update(repeating: -.infinity, count: n)
        sums.update(repeating: 0, count: n)
        for t0 in stride(from: 0, to: V, by: tile) {
            let w = min(tile, V - t0), et = e + t0 * C
            BLAS.gemm(transA: false, transB: true, m: n, n: w, k: C, alpha: 1, a: zc, lda: C,
                      b: et, ldb: C, beta: 0, c: logits, ldc: w)
            for (i, r) in mine.enumerated() {
                let row = logits + i * w, target = Int(targets[r]) - t0
                let hasTarget = target >= 0 && target < w
                if hasTarget { targetLogits[i] = row[target] }
                let rescale = CPUKernels.onlineSoftmaxTile(row, count: w, max: &maxes[i], sum: &sums[i])
                // The target's term stays out of acc and is added exactly at the end: where its
                // probability is near 1, acc would otherwise hold p·E[target] and lose the
                // small (p − 1)·E[target] to rounding.
                if hasTarget { row[target] = 0 }
                if t0 > 0, rescale != 1 {
                    let a = acc + i * C
                    for j in 0..<C { a[j] *= rescale }
                }
            }
            // acc (n, C) += e^(logits − m) (n, w) · E_tile (w, C); the first tile starts it.
            BLAS.gemm(transA: false, transB: false, m: n, n: C, k: w, alpha: 1, a: logits, lda: w,
                      b: et, ldb: C, beta: t0 == 0 ? 0 : 1, c: acc, ldc: C)
        }
        var loss = 0.0
        for (i, r) in mine.enumerated() {
            let target = Int(targets[r]), (m, s) = (Double(maxes[i]), Double(sums[i]))
            let logP = Double(targetLogits[i]) - m - Foundation.log(s)
            loss -= logP
            // dz = (softmax·E − E[target]) / normalizer = (acc / s + (p − 1)·E[target]) · inv.
            let a = acc + i * C, d = io.dz + r * C, et = e + target * C
            let k = inv / sums[i], kt = Float(Foundation.expm1(logP)) * inv
            for j in 0..<C { d[j] = a[j] * k + kt * et[j] }
        }
        return loss
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
