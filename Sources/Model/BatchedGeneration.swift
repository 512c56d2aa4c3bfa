import Foundation

/// Greedy generation of many prompts at once, for evaluation: up to `batchSize` sequences share
/// one pass of the model per step, each in its own slot of one `KVCache`.
///
/// Decoding one sequence reads every weight for one row per step (memory-bound, docs/PLATFORM.md:
/// an M = 1 product runs at ≈ 13 GFLOP/s); B sequences read them once for B rows. The batch is
/// kept full (continuous batching): when a sequence stops, its slot takes the next prompt, whose
/// prefill rides in the next step's pass beside the other sequences' single tokens. Each sequence
/// attends to its own slot only and stops on its own, so its tokens are those `Generation.run`
/// gives it alone with greedy sampling (tested on the tiny model and on SmolLM2).
public enum BatchedGeneration {
    /// Sequences decoded together unless told otherwise. A decode step's products have as many
    /// rows as live sequences, and OpenBLAS packs the whole weight for each product whatever the
    /// rows, so the packing is shared by more tokens the larger the batch; past 32 rows the model
    /// splits a product's rows across the lanes, each packing the weight again, so 64 is the
    /// first size that gains over 16 (BENCHMARKS.md, "Batched generation").
    public static let defaultBatchSize = 64

    /// What a batched run did, for throughput figures.
    public struct Statistics: Sendable, Codable, Equatable {
        public var sequences: Int
        public var promptTokens: Int
        public var generatedTokens: Int
        /// Passes of the model (steps).
        public var passes: Int
        public var seconds: Double
        public var generatedTokensPerSecond: Double { Double(generatedTokens) / max(seconds, 1e-9) }
    }

    /// One sequence in a slot.
    private struct Sequence {
        var index: Int
        /// The tokens the next pass feeds: the prompt, then the token just chosen.
        var feed: [Int32]
        var generated: [Int] = []
        /// Positions this sequence may fill (prompt + maxTokens, within the model's).
        var capacity: Int
    }

    /// Greedy continuations of `prompts` (each non-empty), up to `maxTokens` tokens each, each
    /// ending after the first of `stopTokens` (included, as `Generation.run` does). `onFinished`
    /// sees each sequence as soon as it ends (index into `prompts`, tokens), in the order they end.
    /// Returns the continuations in the prompts' order.
    public static func greedy(model: DecoderModel, prompts: [[Int]], maxTokens: Int, stopTokens: Set<Int>,
                              adapters: ModelAdapters? = nil, batchSize: Int = defaultBatchSize,
                              onFinished: (_ index: Int, _ tokens: [Int]) -> Void = { _, _ in })
        -> (tokens: [[Int]], statistics: Statistics) {
        precondition(prompts.allSatisfy { !$0.isEmpty }, "generation needs at least one prompt token")
        precondition(maxTokens >= 1 && batchSize >= 1, "maxTokens and batchSize must be at least 1")
        let t0 = Date()
        var results = [[Int]](repeating: [], count: prompts.count)
        var stats = Statistics(sequences: prompts.count, promptTokens: prompts.reduce(0) { $0 + $1.count },
                               generatedTokens: 0, passes: 0, seconds: 0)
        guard !prompts.isEmpty else { return (results, stats) }
        let slotCapacity = min(model.maxPositions, (prompts.map(\.count).max() ?? 0) + maxTokens)
        let cache = KVCache(config: model.config, capacity: slotCapacity, sequences: min(batchSize, prompts.count))
        var slots = [Sequence?](repeating: nil, count: cache.sequences)
        var nextPrompt = 0
        let C = model.config.hiddenSize, V = model.config.vocabSize

        func admit() {
            for s in slots.indices where slots[s] == nil && nextPrompt < prompts.count {
                let prompt = prompts[nextPrompt]
                cache.reset(slot: s)
                slots[s] = Sequence(index: nextPrompt, feed: prompt.map(Int32.init),
                                    capacity: min(model.maxPositions, prompt.count + maxTokens))
                nextPrompt += 1
            }
        }

        admit()
        while true {
            let live = slots.indices.filter { slots[$0] != nil }
            guard !live.isEmpty else { break }
            let lengths = live.map { slots[$0]!.feed.count }
            let hidden = model.hiddenStates(tokens: live.flatMap { slots[$0]!.feed }, lengths: lengths, cache: cache,
                                            slots: live, adapters: adapters)
            stats.passes += 1
            // The last row of each sequence predicts its next token.
            var last = [Float](repeating: 0, count: live.count * C)
            var row = 0
            hidden.withUnsafeBufferPointer { h in
                last.withUnsafeMutableBufferPointer { l in
                    for (i, n) in lengths.enumerated() {
                        row += n
                        (l.baseAddress! + i * C).update(from: h.baseAddress! + (row - 1) * C, count: C)
                    }
                }
            }
            let logits = last.withUnsafeBufferPointer { model.logits(hidden: $0.baseAddress!, rows: live.count) }
            logits.withUnsafeBufferPointer { l in
                for (i, s) in live.enumerated() {
                    let token = Sampler.argmax(UnsafeBufferPointer(rebasing: l[(i * V)..<((i + 1) * V)]))
                    var seq = slots[s]!
                    seq.generated.append(token)
                    stats.generatedTokens += 1
                    // As `Generation.run`: a stop token, a full cache or maxTokens ends the sequence.
                    if stopTokens.contains(token) || cache.lengths[s] >= seq.capacity || seq.generated.count == maxTokens {
                        results[seq.index] = seq.generated
                        onFinished(seq.index, seq.generated)
                        slots[s] = nil
                    } else {
                        seq.feed = [Int32(token)]
                        slots[s] = seq
                    }
                }
            }
            admit()
        }
        stats.seconds = Date().timeIntervalSince(t0)
        return (results, stats)
    }
}
