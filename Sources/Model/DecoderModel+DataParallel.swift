import Foundation
import LinearAlgebra

// Data-parallel passes: the batch's sequences are dealt to the lanes, and each lane runs the
// whole forward (and backward) of its own sequences on a one-lane view of the model and on its
// rows of the shared scratch, into adapter gradients of its own, added up in lane order at the
// end. Training steps and evaluation's masked NLL use it.
//
// Splitting every product and kernel across the lanes instead makes them meet ≈ 800 times a
// step and wait for the slower lane each time; on this shared machine dealing sequences made
// the text step ≈ 8 % faster (BENCHMARKS.md, "Data-parallel steps"). The frozen weights are
// only read, so the lanes share them.

/// How a training step (`lossAndGradients`) shares its work among the model's lanes.
public enum StepParallelism: String, Codable, Sendable, CaseIterable {
    /// `sequences` when only adapters are trained and the batch's sequences deal evenly to the
    /// lanes (`DecoderModel.dataParallelImbalance`), else `products`.
    case automatic
    /// Whole sequences per lane whenever only adapters are trained and there are two or more
    /// sequences, however uneven the deal.
    case sequences
    /// Every product and element-wise kernel split across the lanes.
    case products
}

extension DecoderModel {
    /// The largest ratio of the busiest lane's estimated work to the mean at which a step is split
    /// by sequences. A batch that cannot be dealt so evenly (3 equal sequences on 2 lanes) splits
    /// its products instead.
    static let dataParallelImbalance = 1.15

    /// The sequences each lane takes (indices into `lengths`, ascending), dealt largest first to
    /// the least loaded lane; nil with fewer than two sequences or lanes, or, when `evenOnly`,
    /// if the deal is uneven (`dataParallelImbalance`).
    func dataParallelGroups(targets: [Int32], lengths: [Int], evenOnly: Bool = true) -> [[Int]]? {
        let groupCount = min(lanes, lengths.count)
        guard groupCount >= 2 else { return nil }
        let (groups, loads) = deal(costs: sequenceCosts(targets: targets, lengths: lengths), parts: groupCount)
        let mean = loads.reduce(0, +) / Double(groupCount)
        guard !evenOnly || (mean > 0 && loads.max()! <= mean * Self.dataParallelImbalance) else { return nil }
        // A lane with no rows (only empty sequences) would have nothing to do.
        let working = groups.filter { g in g.contains { lengths[$0] > 0 } }
        return working.count >= 2 ? working : nil
    }

    /// The sequences of a packed batch dealt to `parts` parts (the ranks of a job) as lanes are
    /// dealt theirs: largest estimated cost first, each to the least loaded part. Indices into
    /// `lengths`, ascending within a part; a part may be empty. It depends on the batch alone,
    /// so every rank computes the same deal.
    public func dealSequences(targets: [Int32], lengths: [Int], parts: Int) -> [[Int]] {
        deal(costs: sequenceCosts(targets: targets, lengths: lengths), parts: max(1, parts)).groups
    }

    /// Items of `costs` dealt largest first (ties by index) to the least loaded of `parts` groups
    /// (ties to the lowest group); each group ascending, with its load.
    private func deal(costs: [Double], parts: Int) -> (groups: [[Int]], loads: [Double]) {
        var loads = [Double](repeating: 0, count: parts)
        var groups = [[Int]](repeating: [], count: parts)
        for s in costs.indices.sorted(by: { costs[$0] > costs[$1] || (costs[$0] == costs[$1] && $0 < $1) }) {
            let g = loads.indices.min { loads[$0] < loads[$1] }!
            loads[g] += costs[s]
            groups[g].append(s)
        }
        return (groups.map { $0.sorted() }, loads)
    }

    /// Each sequence's share of a training step, in FLOPs (`StepFLOPs` of the sequence alone,
    /// frozen products only): its rows through every projection, its causal attention, and the
    /// output head on its supervised rows.
    func sequenceCosts(targets: [Int32], lengths: [Int]) -> [Double] {
        let none = ModelAdapters(config: config)
        var start = 0
        return lengths.map { n in
            defer { start += n }
            let supervised = targets[start..<(start + n)].reduce(0) { $0 + ($1 >= 0 ? 1 : 0) }
            return StepFLOPs.count(weights: weights, adapters: none, lengths: [n], supervised: supervised, trainsWeights: false)
        }
    }

    /// One lane's (or rank's) sequences in a data-parallel pass, gathered from the batch.
    public struct LaneShare: Sendable {
        public var tokens: [Int32], targets: [Int32], lengths: [Int]
        /// The share's rows when the groups' rows are packed one group after the other.
        public var rows: Range<Int>
    }

    /// Each group's sequences of a packed batch, in group order.
    public static func shares(_ groups: [[Int]], tokens: [Int32], targets: [Int32], lengths: [Int]) -> [LaneShare] {
        var starts = [0]
        for n in lengths { starts.append(starts.last! + n) }
        var row = 0
        return groups.map { members in
            let rows = members.flatMap { starts[$0]..<starts[$0 + 1] }
            defer { row += rows.count }
            return LaneShare(tokens: rows.map { tokens[$0] }, targets: rows.map { targets[$0] },
                             lengths: members.map { lengths[$0] }, rows: row..<(row + rows.count))
        }
    }

    /// This model's weights on lanes / `groups` lanes each: what one group of a data-parallel pass runs on.
    func laneModel(groups: Int) -> DecoderModel { DecoderModel(sharing: self, lanes: lanes / groups) }

    /// `body(g)` for every g in 0..<count at once, one thread each; the results in order.
    static func concurrently<R>(_ count: Int, _ body: @Sendable (Int) -> R) -> [R] {
        let results = Slots<R>(count: count)
        DispatchQueue.concurrentPerform(iterations: count) { g in results[g] = body(g) }
        return results.values
    }

    /// `lossAndGradients` with the sequences of `groups[g]` on lane g (or on lanes/groups lanes
    /// each, when there are more lanes than groups), each on its rows of `scratch`; lane g > 0
    /// adds its adapter gradients into a buffer of its own, added into the adapters' at the end.
    func dataParallelLossAndGradients(groups: [[Int]], tokens: [Int32], targets: [Int32], lengths: [Int],
                                      adapters: ModelAdapters, normalizer: Float, scratch: TrainingScratch) -> Double {
        let lane = laneModel(groups: groups.count)
        let shares = Self.shares(groups, tokens: tokens, targets: targets, lengths: lengths)
        let layout = AdapterGradientLayout(adapters: adapters, weights: weights)
        let buffers = scratch.laneGradients.zeroed(lanes: groups.count - 1, count: layout.count)
        let laneAdapters = [adapters] + buffers.map { layout.redirecting(adapters, to: $0) }
        let views = shares.enumerated().map { g, share in
            TrainingScratch(viewing: scratch, rows: share.rows, headLanes: (g * lane.lanes)..<((g + 1) * lane.lanes), config: config)
        }
        let losses = Self.concurrently(groups.count) { g in
            let s = shares[g]
            return lane.rowSplitLossAndGradients(tokens: s.tokens, targets: s.targets, lengths: s.lengths,
                                                 adapters: laneAdapters[g], normalizer: normalizer, scratch: views[g])
        }
        for buffer in buffers { layout.add(buffer, into: adapters) }
        return losses.reduce(0, +)
    }
}

/// Where each trained adapter's gradients sit in a lane's flat gradient buffer: adapter after
/// adapter in layer and projection order, dA (r, in), dB (out, r), then DoRA's dm (out).
struct AdapterGradientLayout {
    struct Entry {
        var layer: Int, projection: Int
        var a: Int, countA: Int, b: Int, countB: Int, m: Int, countM: Int
    }

    let entries: [Entry]
    /// Floats of one lane's buffer.
    let count: Int

    init(adapters: ModelAdapters, weights: ModelWeights) {
        var entries: [Entry] = [], offset = 0
        for (l, layer) in adapters.layers.enumerated() {
            for (p, adapter) in layer.enumerated() {
                guard let ad = adapter else { continue }
                let w = weights.layers[l].projections[p]
                let countA = ad.gradA == nil ? 0 : ad.rank * w.cols, countB = ad.gradB == nil ? 0 : w.rows * ad.rank
                let countM = ad.dora?.gradMagnitude == nil ? 0 : w.rows
                entries.append(Entry(layer: l, projection: p, a: offset, countA: countA, b: offset + countA, countB: countB,
                                     m: offset + countA + countB, countM: countM))
                offset += countA + countB + countM
            }
        }
        self.entries = entries
        count = offset
    }

    /// `adapters` with their gradients pointed into `buffer`.
    func redirecting(_ adapters: ModelAdapters, to buffer: UnsafeMutablePointer<Float>) -> ModelAdapters {
        var out = adapters
        for e in entries {
            out.layers[e.layer][e.projection]!.gradA = e.countA > 0 ? buffer + e.a : nil
            out.layers[e.layer][e.projection]!.gradB = e.countB > 0 ? buffer + e.b : nil
            if e.countM > 0 { out.layers[e.layer][e.projection]!.dora!.gradMagnitude = buffer + e.m }
        }
        return out
    }

    /// Adds a lane's gradients in `buffer` into `adapters`' own.
    func add(_ buffer: UnsafeMutablePointer<Float>, into adapters: ModelAdapters) {
        for e in entries {
            let ad = adapters.layers[e.layer][e.projection]!
            if let g = ad.gradA { for i in 0..<e.countA { g[i] += buffer[e.a + i] } }
            if let g = ad.gradB { for i in 0..<e.countB { g[i] += buffer[e.b + i] } }
            if let g = ad.dora?.gradMagnitude { for i in 0..<e.countM { g[i] += buffer[e.m + i] } }
        }
    }
}

/// The flat adapter-gradient buffers of the lanes after the first, kept for reuse by every step
/// (allocating ≈ 20 MB per step would page-fault it each time).
final class LaneGradients: @unchecked Sendable {
    private var buffers: [UnsafeMutablePointer<Float>] = []
    private var capacity = 0

    /// `lanes` buffers of `count` floats, zeroed.
    func zeroed(lanes: Int, count: Int) -> [UnsafeMutablePointer<Float>] {
        if count > capacity {
            for b in buffers { b.deallocate() }
            buffers = []
            capacity = count
        }
        while buffers.count < lanes { buffers.append(.allocate(capacity: max(1, capacity))) }
        let used = Array(buffers.prefix(lanes))
        for b in used { b.update(repeating: 0, count: count) }
        return used
    }

    deinit { for b in buffers { b.deallocate() } }
}
