import Foundation
import LinearAlgebra

/// Token negative log-likelihood of texts, as transformers' perplexity recipe computes it.
public enum Perplexity {
    public struct Result: Sendable, Codable, Equatable {
        /// Σ −log p(token | prefix) over scored tokens.
        public var totalNLL: Double
        public var tokens: Int
        public var nll: Double { tokens == 0 ? .nan : totalNLL / Double(tokens) }
        public var perplexity: Double { Foundation.exp(nll) }

        public init(totalNLL: Double = 0, tokens: Int = 0) {
            self.totalNLL = totalNLL
            self.tokens = tokens
        }

        public static func + (a: Result, b: Result) -> Result {
            Result(totalNLL: a.totalNLL + b.totalNLL, tokens: a.tokens + b.tokens)
        }
    }

    /// Scores every token of `ids` after the first. A sequence of at most `window` tokens is one
    /// forward pass; a longer one slides a `window`-token window by `stride` tokens, each window
    /// scoring only the tokens the previous one did not (so every token is scored once, with up to
    /// `window − stride` tokens of extra context). With `shard` (k, n), only windows k, k + n,
    /// k + 2n, … are scored: n processes with k = 0..<n together score every token once.
    public static func score(model: DecoderModel, ids: [Int], window: Int, stride: Int, adapters: ModelAdapters? = nil,
                             shard: (index: Int, count: Int) = (0, 1),
                             progress: (_ done: Int, _ total: Int) -> Void = { _, _ in }) -> Result {
        guard ids.count >= 2 else { return Result() }
        var result = Result()
        var previousEnd = 0
        var begin = 0
        var windowIndex = 0
        while previousEnd < ids.count {
            let end = min(begin + window, ids.count)
            let scoredFrom = max(previousEnd, begin + 1)   // positions whose token is predicted here
            if windowIndex % shard.count == shard.index {
                let chunk = Array(ids[begin..<end])
                let hidden = model.hiddenStates(tokens: chunk.map(Int32.init), adapters: adapters)
                result = result + negativeLogLikelihood(model: model, hidden: hidden, targets: chunk,
                                                        rows: (scoredFrom - begin - 1)..<(end - begin - 1))
            }
            windowIndex += 1
            progress(end, ids.count)
            previousEnd = end
            if end == ids.count { break }
            begin += stride
        }
        return result
    }

    /// Σ over hidden rows r in `rows` of −log softmax(logits_r)[targets[r + 1]].
    public static func negativeLogLikelihood(model: DecoderModel, hidden: [Float], targets: [Int], rows: Range<Int>) -> Result {
        nll(model: model, hidden: hidden, rows: Array(rows)) { targets[$0 + 1] }
    }

    /// Σ over the given hidden rows of −log softmax(logits_r)[target(r)], computing the output head
    /// on gathered blocks of `headChunkRows` rows per lane so that no (T, V) logits matrix is ever
    /// materialised (and each lane's product with the head is as large as training's).
    static func nll(model: DecoderModel, hidden: [Float], rows: [Int], target: (Int) -> Int) -> Result {
        let C = model.config.hiddenSize, V = model.config.vocabSize, chunk = DecoderModel.headChunkRows * model.lanes
        var total = 0.0
        var gathered = [Float](repeating: 0, count: chunk * C)
        var logits = [Float](repeating: 0, count: min(chunk, rows.count) * V)   // one buffer for every block
        hidden.withUnsafeBufferPointer { h in
            for start in stride(from: 0, to: rows.count, by: chunk) {
                let block = rows[start..<min(rows.count, start + chunk)]
                gathered.withUnsafeMutableBufferPointer { g in
                    for (j, r) in block.enumerated() { (g.baseAddress! + j * C).update(from: h.baseAddress! + r * C, count: C) }
                }
                gathered.withUnsafeBufferPointer { g in
                    logits.withUnsafeMutableBufferPointer { model.logits(hidden: g.baseAddress!, rows: block.count, into: $0.baseAddress!) }
                }
                // The rows' log-sum-exps on the lanes, summed in row order (the same total for any lane count).
                let lse = [Double](unsafeUninitializedCapacity: block.count) { out, count in
                    let o = MutablePointer(out.baseAddress!)
                    logits.withUnsafeBufferPointer { l in
                        let lp = ConstPointer(l.baseAddress!)
                        Parallel.chunks(block.count, lanes: model.lanes) { rows in
                            for j in rows { o.pointer[j] = logSumExp(UnsafeBufferPointer(start: lp.pointer + j * V, count: V)) }
                        }
                    }
                    count = block.count
                }
                for (j, r) in block.enumerated() { total += lse[j] - Double(logits[j * V + target(r)]) }
            }
        }
        return Result(totalNLL: total, tokens: rows.count)
    }

    /// log Σ e^x, in Double.
    static func logSumExp(_ x: UnsafeBufferPointer<Float>) -> Double {
        let m = Double(x.max() ?? 0)
        var s = 0.0
        for v in x { s += Foundation.exp(Double(v) - m) }
        return m + Foundation.log(s)
    }
}

extension Perplexity {
    /// Σ NLL over rows whose target is ≥ 0 (targets[n] is the token row n predicts, −1 = none),
    /// for sequences of `lengths` tokens packed back to back, optionally through adapters. Like a
    /// training step, sequences that deal evenly to the lanes run whole on one lane each.
    public static func maskedNLL(model: DecoderModel, tokens: [Int32], targets: [Int32], lengths: [Int],
                                 adapters: ModelAdapters? = nil) -> Result {
        if let groups = model.dataParallelGroups(targets: targets, lengths: lengths) {
            let lane = model.laneModel(groups: groups.count)
            let shares = DecoderModel.shares(groups, tokens: tokens, targets: targets, lengths: lengths)
            return DecoderModel.concurrently(groups.count) { g in
                maskedNLL(model: lane, tokens: shares[g].tokens, targets: shares[g].targets, lengths: shares[g].lengths, adapters: adapters)
            }.reduce(Result(), +)
        }
        let hidden = model.hiddenStates(tokens: tokens, lengths: lengths, adapters: adapters)
        return nll(model: model, hidden: hidden, rows: targets.indices.filter { targets[$0] >= 0 }) { Int(targets[$0]) }
    }
}
