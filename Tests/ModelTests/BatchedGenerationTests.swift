import Formats
import Foundation
import LinearAlgebra
@testable import Model
import XCTest

/// Batched greedy generation gives each prompt the tokens it gets alone (`Generation.run`), on the
/// tiny transformers-made Llama, with and without adapters, for batches smaller than, equal to
/// and larger than the number of prompts (slots refilled mid-run), on one and two lanes.
final class BatchedGenerationTests: XCTestCase {
    private typealias G = GradientCheck
    private var fixture: URL { Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("tiny_llama") }

    private func model(lanes: Int) throws -> DecoderModel {
        let source = try SafeTensorsWeightSource(directory: fixture)
        return DecoderModel(weights: try ModelWeights(source: source, sourceName: fixture.path), lanes: lanes)
    }

    /// Prompts of different lengths (1 to 40 tokens: some past one 32-row product split).
    private let prompts: [[Int]] = [[5], [17, 3, 90, 44, 2, 61, 8], Array(10..<50), [33, 33, 33], [70, 1, 12, 9, 95, 4, 40, 41, 42, 43, 44]]

    func testBatchedTokensEqualOneAtATime() throws {
        for lanes in [1, 2] {
            let m = try model(lanes: lanes)
            let flat = G.FlatAdapters(weights: m.weights, rank: 4, scale: 1, std: 0.3, seed: 3)
            for adapters in [nil, flat.adapters] {
                let alone = try prompts.map {
                    try Generation.run(model: m, prompt: $0, maxTokens: 12, sampling: .greedy, stopTokens: [], adapters: adapters).tokens
                }
                // A stop token that ends one sequence early (the first token it has not made before,
                // past its first) and maybe others.
                let at = alone[1].indices.first { $0 >= 1 && !alone[1][..<$0].contains(alone[1][$0]) } ?? 0
                let stop = alone[1][at]
                let aloneStopped = try prompts.map {
                    try Generation.run(model: m, prompt: $0, maxTokens: 12, sampling: .greedy, stopTokens: [stop], adapters: adapters).tokens
                }
                XCTAssertEqual(aloneStopped[1].count, at + 1)
                for batchSize in [1, 2, 3, 5, 8] {
                    let label = "lanes \(lanes), adapters \(adapters != nil), batch \(batchSize)"
                    let batched = BatchedGeneration.greedy(model: m, prompts: prompts, maxTokens: 12, stopTokens: [],
                                                           adapters: adapters, batchSize: batchSize)
                    XCTAssertEqual(batched.tokens, alone, label)
                    var finished: [Int] = []
                    let stopped = BatchedGeneration.greedy(model: m, prompts: prompts, maxTokens: 12, stopTokens: [stop],
                                                           adapters: adapters, batchSize: batchSize) { index, tokens in
                        finished.append(index)
                        XCTAssertEqual(tokens, aloneStopped[index], label)
                    }
                    XCTAssertEqual(stopped.tokens, aloneStopped, label + ", stop token \(stop)")
                    XCTAssertEqual(finished.sorted(), Array(prompts.indices), label)
                    XCTAssertEqual(stopped.statistics.generatedTokens, aloneStopped.reduce(0) { $0 + $1.count })
                }
            }
        }
    }

    func testBatchedRowsEqualSingleSequenceRows() throws {
        // The hidden states of a batched pass (two prefills, then one token each) against each
        // sequence run alone through a one-slot cache: the same computation row by row.
        let m = try model(lanes: 2)
        let a: [Int32] = [4, 8, 15, 16, 23, 42], b: [Int32] = [7, 7, 9]
        let batch = KVCache(config: m.config, capacity: 10, sequences: 3)
        let first = m.hiddenStates(tokens: a + b, lengths: [6, 3], cache: batch, slots: [2, 0])
        let second = m.hiddenStates(tokens: [11, 12], lengths: [1, 1], cache: batch, slots: [0, 2])
        XCTAssertEqual(batch.lengths, [4, 0, 7])
        let C = m.config.hiddenSize
        for (tokens, next, rows, nextRow) in [(a, Int32(12), 0..<6, 1), (b, Int32(11), 6..<9, 0)] {
            let alone = KVCache(config: m.config, capacity: 10)
            let prefill = m.hiddenStates(tokens: tokens, cache: alone)
            let step = m.hiddenStates(tokens: [next], cache: alone)
            assertClose(Array(first[(rows.lowerBound * C)..<(rows.upperBound * C)]), prefill, "prefill of \(tokens)")
            assertClose(Array(second[(nextRow * C)..<((nextRow + 1) * C)]), step, "step after \(tokens)")
        }
    }

    private func assertClose(_ x: [Float], _ y: [Float], _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(x.count, y.count, label, file: file, line: line)
        let diff = zip(x, y).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(diff, 1e-5, label, file: file, line: line)
    }
}
