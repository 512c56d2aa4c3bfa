import Foundation
import LinearAlgebra
import XCTest
@testable import Training

/// Packing, shifted targets, and the deterministic, resumable sampler.
final class DataBatchTests: XCTestCase {
    func testPackingAndShiftedTargets() {
        // Prompt [10, 11] then completion [12, 13]; a fully supervised text [20, 21, 22, 23, 24].
        let a = Example(tokens: [10, 11, 12, 13], supervised: [false, false, true, true])
        let b = Example(tokens: [20, 21, 22, 23, 24], supervised: [true, true, true, true, true])
        let c = Example(tokens: [30, 31], supervised: [false, true])
        let batch = Batch(examples: [a, b, c])
        XCTAssertEqual(batch.batch, 3)
        XCTAssertEqual(batch.lengths, [4, 5, 2])
        XCTAssertEqual(batch.tokens, [10, 11, 12, 13,
                                      20, 21, 22, 23, 24,
                                      30, 31])
        XCTAssertEqual(batch.targets, [-1, 12, 13, -1,
                                       21, 22, 23, 24, -1,
                                       31, -1])
        XCTAssertEqual(batch.supervisedCount, 2 + 4 + 1)
        XCTAssertEqual(batch.supervisedCount, [a, b, c].map(\.supervisedCount).reduce(0, +))
        // The target at row n is tokens[n + 1] wherever it is not ignored: never across examples.
        for i in batch.targets.indices where batch.targets[i] != Batch.ignored {
            XCTAssertEqual(batch.targets[i], batch.tokens[i + 1])
        }
    }

    func testEachEpochVisitsEveryExampleOnce() {
        var sampler = BatchSampler(count: 10, batchSize: 4, seed: 7)
        XCTAssertEqual(sampler.batchesPerEpoch, 3)
        for epoch in 0..<3 {
            XCTAssertEqual(sampler.state, SamplerState(epoch: epoch, position: 0))
            let batches = (0..<3).map { _ in sampler.next() }
            XCTAssertEqual(batches.map(\.count), [4, 4, 2], "the last batch holds the remainder")
            XCTAssertEqual(batches.flatMap { $0 }.sorted(), Array(0..<10))
            XCTAssertEqual(batches.flatMap { $0 }, sampler.epochOrder(epoch))
        }
        XCTAssertNotEqual(sampler.epochOrder(0), sampler.epochOrder(1), "reshuffled every epoch")
        XCTAssertNotEqual(sampler.epochOrder(0), Array(0..<10))
        XCTAssertEqual(BatchSampler(count: 10, batchSize: 4, seed: 7, shuffle: false).epochOrder(3), Array(0..<10))
    }

    func testSameSeedSameBatchesOtherSeedOthers() {
        var a = BatchSampler(count: 37, batchSize: 5, seed: 42)
        var b = BatchSampler(count: 37, batchSize: 5, seed: 42)
        var c = BatchSampler(count: 37, batchSize: 5, seed: 43)
        let sa = (0..<30).map { _ in a.next() }
        XCTAssertEqual(sa, (0..<30).map { _ in b.next() })
        XCTAssertNotEqual(sa, (0..<30).map { _ in c.next() })
        // Pinned: the order is part of the checkpoint format (same on every platform).
        XCTAssertEqual(BatchSampler(count: 8, batchSize: 1, seed: 0).epochOrder(0), Self.pinnedOrder)
    }

    /// Seed 0, epoch 0, 8 examples (Fisher–Yates with Lemire's bounded draws on xoshiro256**).
    static let pinnedOrder = [1, 6, 3, 7, 2, 0, 5, 4]

    func testResumeFromSavedStateContinuesExactly() throws {
        let examples = (0..<23).map { i in
            Example(tokens: (0...(i % 6 + 1)).map { Int32(100 * i + $0) }, supervised: Array(repeating: true, count: i % 6 + 2))
        }
        var original = BatchSampler(count: examples.count, batchSize: 4, seed: 99)
        for _ in 0..<13 { _ = original.next(from: examples) }   // into the third epoch
        let saved = try JSONEncoder().encode(original.state)
        XCTAssertEqual(original.state, SamplerState(epoch: 2, position: 4))

        var resumed = BatchSampler(count: examples.count, batchSize: 4, seed: 99)
        resumed.state = try JSONDecoder().decode(SamplerState.self, from: saved)
        for _ in 0..<20 {
            XCTAssertEqual(resumed.next(from: examples), original.next(from: examples))
        }
        XCTAssertEqual(resumed.state, original.state)

        // A state at the end of an epoch is the start of the next.
        var atEnd = BatchSampler(count: 23, batchSize: 4, seed: 99, state: SamplerState(epoch: 0, position: 23))
        XCTAssertEqual(atEnd.state, SamplerState(epoch: 1, position: 0))
        XCTAssertEqual(atEnd.next(), Array(atEnd.epochOrder(1).prefix(4)))
    }

    func testUniformDrawsCoverTheRange() {
        var rng = SeededGenerator(seed: 3)
        var counts = [Int](repeating: 0, count: 7)
        for _ in 0..<7000 { counts[BatchSampler.uniform(below: 7, using: &rng)] += 1 }
        XCTAssertTrue(counts.allSatisfy { (850...1150).contains($0) }, "\(counts)")
    }
}
