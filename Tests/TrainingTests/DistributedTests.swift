import Distributed
import Foundation
import LinearAlgebra
import Model
@testable import Training
import XCTest

/// The parts of data-parallel training that need no second process: how work is cut over the
/// ranks, the deal of a batch's sequences, agreement with one rank, and the start digests.
final class DistributedTests: XCTestCase {
    private final class FakeRank: ProcessGroup, @unchecked Sendable {
        let rank: Int, size: Int
        var failureAgreed = false
        init(rank: Int, size: Int) { self.rank = rank; self.size = size }
        func sumInRankOrder(_ values: UnsafeMutablePointer<Float>, count: Int) {}
        func allGather(_ values: [Double]) -> [[Double]] { Array(repeating: values, count: size) }
        func allGather(_ values: [UInt64]) -> [[UInt64]] { Array(repeating: values, count: size) }
        func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, from root: Int) {}
        func barrier() {}
    }

    func testPartsCoverEveryItemOnceInOrder() {
        for size in 1...5 {
            for count in [0, 1, 4, 7, 24] {
                let parts = (0..<size).map { FakeRank(rank: $0, size: size).part(of: count) }
                XCTAssertEqual(parts.flatMap { Array($0) }, Array(0..<count), "\(count) items on \(size) ranks")
                XCTAssertLessThanOrEqual((parts.map(\.count).max() ?? 0) - (parts.map(\.count).min() ?? 0), 1)
            }
        }
    }

    func testSequencesAreDealtWholeAndBalanced() throws {
        let model = try DecoderModel(weights: ModelWeights(source: SafeTensorsWeightSource(directory: AdapterInteropTests.tinyModel),
                                                           sourceName: "tiny"), lanes: 1)
        let lengths = [30, 5, 17, 17, 2, 40, 9]
        let targets = [Int32](repeating: 1, count: lengths.reduce(0, +))
        for parts in 1...4 {
            let deal = model.dealSequences(targets: targets, lengths: lengths, parts: parts)
            XCTAssertEqual(deal.count, parts)
            XCTAssertEqual(deal.flatMap { $0 }.sorted(), Array(lengths.indices), "every sequence once")
            XCTAssertTrue(deal.allSatisfy { $0 == $0.sorted() })
            XCTAssertEqual(model.dealSequences(targets: targets, lengths: lengths, parts: parts), deal, "the same on every call")
        }
        // Largest first to the least loaded part: 40 | 30 | 17+17 … never all on one rank.
        let three = model.dealSequences(targets: targets, lengths: lengths, parts: 3)
        XCTAssertTrue(three[0].contains(5) && three[1].contains(0), "\(three)")
        XCTAssertTrue(three.allSatisfy { !$0.isEmpty })
        XCTAssertEqual(model.dealSequences(targets: [1, 1], lengths: [2], parts: 3).map(\.count), [1, 0, 0])
    }

    func testTogetherRethrowsTheOwnErrorAndStopsOnAPeersFailure() throws {
        struct Broken: Error {}
        let alone = SingleProcess()
        XCTAssertEqual(try alone.together("x") { 7 }, 7)
        XCTAssertThrowsError(try alone.together("x") { throw Broken() }) { XCTAssertTrue($0 is Broken) }
        XCTAssertTrue(alone.failureAgreed)
        // A rank whose own step worked, told (by the gathered flags) that rank 0 failed.
        final class PeerFailed: ProcessGroup, @unchecked Sendable {
            let rank = 1, size = 2
            var failureAgreed = false
            func sumInRankOrder(_ values: UnsafeMutablePointer<Float>, count: Int) {}
            func allGather(_ values: [Double]) -> [[Double]] { [values, values] }
            func allGather(_ values: [UInt64]) -> [[UInt64]] { [[1], values] }
            func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, from root: Int) {}
            func barrier() {}
        }
        let peer = PeerFailed()
        XCTAssertThrowsError(try peer.together("loading the model") { 1 }) { error in
            XCTAssertEqual(error as? DistributedError, .peerFailed(ranks: [0], during: "loading the model"))
            XCTAssertEqual("\(error)", "stopped: rank 0 failed while loading the model (see its message)")
        }
        XCTAssertTrue(peer.failureAgreed)
    }

    func testFingerprintSeesEveryByteAndItsPlace() {
        let values = (0..<1001).map { Float($0) * 0.37 }
        var a = Fingerprint(), b = Fingerprint()
        a.add(values)
        b.add(values)
        XCTAssertEqual(a.value, b.value)
        for i in [0, 3, 500, 999, 1000] {   // first word, each of the four lanes, the tail
            var changed = values
            changed[i] = changed[i].nextUp
            var c = Fingerprint()
            c.add(changed)
            XCTAssertNotEqual(c.value, a.value, "a change at \(i)")
        }
        var split = Fingerprint()
        split.add(Array(values[..<500]))
        split.add(Array(values[500...]))
        var swapped = Fingerprint()
        swapped.add(Array(values[500...]))
        swapped.add(Array(values[..<500]))
        XCTAssertNotEqual(split.value, swapped.value, "order counts")
    }
}
