import LinearAlgebra
@testable import Model
import XCTest

/// Data-parallel training steps (`StepParallelism.sequences`): how sequences are dealt to the
/// lanes, and that each lane's views of the shared scratch and its own gradient buffers behave
/// like the buffers of a whole step. Their gradients against finite differences are in
/// GradientModelTests.
final class DataParallelStepTests: XCTestCase {
    private typealias G = GradientCheck

    /// Targets for `lengths`: every token supervised but each sequence's last.
    private func targets(_ lengths: [Int]) -> [Int32] {
        lengths.flatMap { n in (0..<n).map { $0 + 1 < n ? Int32(1) : -1 } }
    }

    func testSequencesAreDealtLargestFirstOrNotAtAllWhenUneven() throws {
        let two = DecoderModel(weights: try G.tinyWeights(), lanes: 2)
        func deal(_ lengths: [Int], evenOnly: Bool = true) -> [[Int]]? {
            two.dataParallelGroups(targets: targets(lengths), lengths: lengths, evenOnly: evenOnly)
        }
        XCTAssertEqual(deal([8, 8]), [[0], [1]])
        XCTAssertEqual(deal([8, 8, 8, 8]), [[0, 2], [1, 3]])
        XCTAssertEqual(deal([7, 12, 3]), [[1], [0, 2]])           // 12 | 7 + 3
        XCTAssertNil(deal([8, 8, 8]), "2 : 1 is too uneven to deal")
        XCTAssertEqual(deal([8, 8, 8], evenOnly: false), [[0, 2], [1]])
        XCTAssertNil(deal([16]), "one sequence")
        XCTAssertNil(deal([0, 0], evenOnly: false), "no lane would have rows")
        XCTAssertEqual(deal([8, 0, 8]), [[0, 1], [2]])
        let one = DecoderModel(weights: try G.tinyWeights(), lanes: 1)
        XCTAssertNil(one.dataParallelGroups(targets: targets([8, 8]), lengths: [8, 8]), "one lane")
        // The head on supervised rows is part of a sequence's cost: of two equal lengths, the
        // supervised one costs more.
        let costs = two.sequenceCosts(targets: [1, 1, 1, -1, -1, -1], lengths: [3, 3])
        XCTAssertGreaterThan(costs[0], costs[1])
    }

    /// Gradient checkpointing on a data-parallel step recomputes each lane's layers from its rows
    /// of the shared layer inputs: loss and every gradient bit-identical to the taped step.
    /// A second step into the same gradients adds the same again (the extra lane's buffer is
    /// zeroed in between).
    func testCheckpointedAndRepeatedDataParallelSteps() throws {
        let weights = try G.tinyWeights()
        let model = DecoderModel(weights: weights, lanes: 2)
        var rng = SeededGenerator(seed: 41)
        let lengths = [9, 7, 8, 6]
        let tokens = (0..<lengths.reduce(0, +)).map { _ in Int32(rng.next() % UInt64(weights.config.vocabSize)) }
        let targets = targets(lengths)
        XCTAssertEqual(model.dataParallelGroups(targets: targets, lengths: lengths), [[0, 3], [1, 2]])
        let normalizer = Float(targets.filter { $0 >= 0 }.count)
        var runs: [(loss: Double, gradients: [Float])] = []
        for checkpointing in [false, true] {
            let flat = G.FlatAdapters(weights: weights, rank: 2, scale: 2, seed: 42)
            let scratch = TrainingScratch(model: model, capacityRows: tokens.count + 3, maxRank: flat.rank, checkpointing: checkpointing)
            let loss = model.lossAndGradients(tokens: tokens, targets: targets, lengths: lengths, adapters: flat.adapters,
                                              normalizer: normalizer, scratch: scratch, parallelism: .sequences)
            runs.append((loss, flat.gradientValues))
            if !checkpointing {
                let once = flat.gradientValues
                _ = model.lossAndGradients(tokens: tokens, targets: targets, lengths: lengths, adapters: flat.adapters,
                                           normalizer: normalizer, scratch: scratch, parallelism: .sequences)
                G.check("two steps' gradients", flat.gradientValues.map(Double.init), once.map { 2 * Double($0) }, tolerance: 1e-5)
            }
        }
        XCTAssertEqual(runs[1].loss, runs[0].loss, "checkpointed loss")
        XCTAssertEqual(runs[1].gradients, runs[0].gradients, "checkpointed gradients")
        XCTAssertTrue(runs[0].gradients.contains { $0 != 0 })
    }
}
