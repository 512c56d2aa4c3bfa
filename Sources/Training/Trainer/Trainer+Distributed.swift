import Distributed
import Foundation
import LinearAlgebra
import Model

// Data-parallel training over the ranks of an `mpirun` job. Each step:
//
//   1. every rank draws the same global batch (the same sampler, seed and state everywhere);
//   2. the batch's sequences are dealt to the ranks as the lanes deal theirs
//      (`DecoderModel.dealSequences`: largest first to the least loaded rank); each rank runs
//      its share on its own lanes, with the global supervised-token count as the normaliser;
//   3. the gradients and the loss are summed over the ranks in rank order
//      (`ProcessGroup.sumInRankOrder`), so every rank holds the global gradient, bit for bit;
//   4. clipping, AdamW and the schedule run on every rank on the same values, so the ranks'
//      parameters and moments stay identical without being sent.
//
// With one rank nothing of this runs: the step is the single-process step.

extension Trainer {
    /// This rank's sequences of a global batch (the whole batch with one rank).
    func share(of b: Batch) -> (tokens: [Int32], targets: [Int32], lengths: [Int]) {
        guard group.isDistributed else { return (b.tokens, b.targets, b.lengths) }
        let groups = model.dealSequences(targets: b.targets, lengths: b.lengths, parts: group.size)
        let mine = DecoderModel.shares(groups, tokens: b.tokens, targets: b.targets, lengths: b.lengths)[group.rank]
        return (mine.tokens, mine.targets, mine.lengths)
    }

    /// Sums the gradients and `lossSum` over the ranks; the seconds it took (waiting for the
    /// slowest rank included), nil with one rank.
    func sumOverRanks(_ lossSum: inout Double) -> Double? {
        guard group.isDistributed else { return nil }
        let t0 = Date()
        group.sumInRankOrder(store.gradients, count: store.count)
        lossSum = group.sumInRankOrder([lossSum])[0]
        return Date().timeIntervalSince(t0)
    }

    /// Bytes each rank contributes to a step's gradient sum.
    public var gradientBytesPerStep: Int { store.count * MemoryLayout<Float>.size }

    /// `.stop` on every rank when any rank's caller asked to stop, so that all save and leave together.
    func agreedControl(_ control: Control) -> Control {
        guard group.isDistributed else { return control }
        return group.sumInRankOrder([control == .stop ? 1 : 0])[0] > 0 ? .stop : .proceed
    }

    /// The global batch is shared by the ranks: each needs at least one sequence.
    static func checkRanks(_ config: TrainConfig, group: any ProcessGroup) throws {
        guard config.batchSize >= group.size else {
            throw TrainerError.invalidSettings("--batch-size \(config.batchSize) is the global batch, shared by the \(group.size) ranks: "
                                               + "it must be at least \(group.size)")
        }
    }

    /// After rank 0 has started the run or read its checkpoint (`resumedStep`): sends the
    /// checkpoint's parameters, AdamW moments, step and sampler position to every rank, then
    /// checks that all ranks hold the same start. Returns the resumed step on every rank.
    func synchronizeStart(resumedStep: Int?) throws -> Int? {
        guard group.isDistributed else { return resumedStep }
        var step = Int64(resumedStep ?? -1)
        group.broadcast(&step, bytes: 8, from: 0)
        if step >= 0 {
            for buffer in [store.parameters, store.expAvg, store.expAvgSq] {
                group.broadcast(buffer, bytes: gradientBytesPerStep, from: 0)
            }
            store.step = Int(step)
            sampler.state = try group.broadcast(group.isRoot ? sampler.state : nil)
        }
        try checkSameStart()
        return step >= 0 ? Int(step) : nil
    }

    /// Compares digests of the data, the frozen weights and the trained parameters with their
    /// optimiser state across the ranks (the settings are rank 0's everywhere: `pissa train`
    /// sends them); throws on every rank when any rank differs from rank 0.
    func checkSameStart() throws {
        var digests = [Fingerprint(), Fingerprint(), Fingerprint()]
        for e in train + valid {
            digests[0].add(e.tokens)
            digests[0].add(e.supervised.map { $0 ? UInt8(1) : 0 })
        }
        digests[1].add(model.weights)
        for buffer in [store.parameters, store.expAvg, store.expAvgSq] {
            digests[2].add(UnsafeRawBufferPointer(start: buffer, count: gradientBytesPerStep))
        }
        digests[2].add([Int64(store.step), Int64(sampler.state.epoch), Int64(sampler.state.position)])
        let all = group.allGather(digests.map(\.value))
        let checks: [(String, String)] = [
            ("the training data", "every machine needs the same --data (and --valid) file at the same path"),
            ("the frozen model", "every machine needs the same --model at the same path"),
            ("the adapters' start", "machines with different CPUs or BLAS libraries can round differently: write the start once "
                + "with `pissa init` and train from it with --adapter-path"),
        ]
        for (i, (what, hint)) in checks.enumerated() {
            let differing = all.indices.filter { all[$0][i] != all[0][i] }
            if !differing.isEmpty { throw DistributedError.ranksDiffer(what: what, ranks: differing, hint: hint) }
        }
    }
}

/// A 64-bit digest of bytes, for telling whether ranks hold the same values (not for security):
/// four independent multiply-rotate lanes over 8-byte words, so that gigabytes of weights take
/// a fraction of a second.
struct Fingerprint {
    private var lanes: (UInt64, UInt64, UInt64, UInt64) = (0x9E37_79B9_7F4A_7C15, 0xC2B2_AE3D_27D4_EB4F, 0x1656_67B1_9E37_79F9, 0x27D4_EB2F_1656_67C5)
    private var length: UInt64 = 0

    private static func mix(_ h: UInt64, _ w: UInt64) -> UInt64 {
        let x = h ^ (w &* 0x9E37_79B9_7F4A_7C15)
        return ((x << 31) | (x >> 33)) &* 0xC2B2_AE3D_27D4_EB4F
    }

    mutating func add(_ bytes: UnsafeRawBufferPointer) {
        let words = bytes.count / 8
        var (a, b, c, d) = lanes
        var i = 0
        while i + 4 <= words {
            a = Self.mix(a, bytes.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))
            b = Self.mix(b, bytes.loadUnaligned(fromByteOffset: 8 * i + 8, as: UInt64.self))
            c = Self.mix(c, bytes.loadUnaligned(fromByteOffset: 8 * i + 16, as: UInt64.self))
            d = Self.mix(d, bytes.loadUnaligned(fromByteOffset: 8 * i + 24, as: UInt64.self))
            i += 4
        }
        while i < words {
            a = Self.mix(a, bytes.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))
            i += 1
        }
        var tail: UInt64 = 0
        for j in (8 * words)..<bytes.count { tail = tail << 8 | UInt64(bytes[j]) }
        lanes = (Self.mix(a, tail), b, c, d)
        length &+= UInt64(bytes.count)
    }

    mutating func add<T>(_ values: [T]) { values.withUnsafeBytes { add($0) } }

    /// Every frozen tensor of the model: dense projections' floats, NF4 codes and absmax values,
    /// embedding, head and norms (weights trained in full live in the store instead).
    mutating func add(_ w: ModelWeights) {
        add(w.embedding.storage)
        if let head = w.lmHead { add(head.storage) }
        add(w.finalNorm)
        for layer in w.layers {
            for norm in layer.norms { add(norm) }
            for p in layer.projections {
                if let m = p as? Matrix {
                    add(m.storage)
                } else if let q = p as? NF4Matrix {
                    add(q.packed)
                    add(q.absmax)
                }
            }
        }
    }

    var value: UInt64 {
        var h = Self.mix(lanes.0, lanes.1)
        h = Self.mix(h, lanes.2)
        h = Self.mix(h, lanes.3)
        return Self.mix(h, length)
    }
}
