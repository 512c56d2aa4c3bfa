import Foundation
import Model
import XCTest

/// The useful-FLOP count of a step (what `pissa bench train` divides by the step time).
final class StepFLOPsTests: XCTestCase {
    func testCountFollowsTheShapes() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/tiny_llama")
        let weights = try ModelWeights(source: SafeTensorsWeightSource(directory: dir), sourceName: dir.path)
        let c = weights.config
        let none = ModelAdapters(config: c)
        func count(_ lengths: [Int], supervised: Int = 0, adapters: ModelAdapters? = nil, full: Bool = false) -> Double {
            StepFLOPs.count(weights: weights, adapters: adapters ?? none, lengths: lengths, supervised: supervised, trainsWeights: full)
        }
        // One token, no head rows: each projection forward + input gradient, and attention on itself.
        let projections = weights.layers.reduce(0.0) { sum, layer in
            layer.projections.reduce(sum) { $0 + Double($1.rows * $1.cols) }
        }
        let attentionPerPair = 12 * Double(c.numHiddenLayers * c.numAttentionHeads * c.headDim)
        XCTAssertEqual(count([1]), 4 * projections + attentionPerPair)
        // Separate sequences add up; one sequence twice as long costs more (causal attention).
        XCTAssertEqual(count([5, 3]), count([5]) + count([3]))
        XCTAssertEqual(count([8]) - 2 * count([4]), attentionPerPair * (36 - 2 * 10))
        // Each supervised row adds the head forward and its input gradient; full FT also dW and dE.
        XCTAssertEqual(count([4], supervised: 3) - count([4]), 3 * 4 * Double(c.vocabSize * c.hiddenSize))
        XCTAssertEqual(count([4], supervised: 3, full: true) - count([4], supervised: 3),
                       4 * 2 * projections + 3 * 2 * Double(c.vocabSize * c.hiddenSize))
        // A rank-r adapter on one projection adds 6·n·r·(in + out).
        var one = none
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: 1)
        defer { buffer.deallocate() }
        one[0, .q] = LoRAAdapter(a: buffer, b: buffer, rank: 2, scale: 1)
        let q = weights.layers[0][.q]
        XCTAssertEqual(count([4], adapters: one) - count([4]), 6 * 4 * 2 * Double(q.rows + q.cols))
    }
}
