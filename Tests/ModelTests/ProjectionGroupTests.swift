import Foundation
import LinearAlgebra
@testable import Model
import XCTest

/// Array forms of the group products for one projection (the tests' usual case).
extension DecoderModel {
    func project(_ x: [Float], _ w: any LinearWeight, adapter: LoRAAdapter?, into y: inout [Float], rows: Int, xa: inout [Float]) {
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                xa.withUnsafeMutableBufferPointer { ap in
                    project(xp.baseAddress!, [ProjectionOutput(weight: w, adapter: adapter, y: yp.baseAddress!, xa: ap.baseAddress!)], rows: rows)
                }
            }
        }
    }

    func projectBackward(dy: [Float], x: [Float], _ w: any LinearWeight, adapter: LoRAAdapter?, xa: [Float]?,
                         dx: inout [Float], rows: Int, accumulate: Bool) {
        dy.withUnsafeBufferPointer { dyp in
            x.withUnsafeBufferPointer { xp in
                dx.withUnsafeMutableBufferPointer { dxp in
                    (xa ?? []).withUnsafeBufferPointer { ap in
                        let p = ProjectionGradient(weight: w, adapter: adapter, dy: dyp.baseAddress!, xa: xa == nil ? nil : ap.baseAddress!)
                        projectBackward([p], x: xp.baseAddress!, dx: dxp.baseAddress!, rows: rows, accumulate: accumulate)
                    }
                }
            }
        }
    }
}

/// A group of projections on one input (q, k, v; gate, up) gives the same bits as its members
/// run one at a time: outputs, saved x·Aᵀ, the summed input gradient and every adapter gradient.
final class ProjectionGroupTests: XCTestCase {
    private typealias G = GradientCheck

    func testGroupEqualsProjectionsOneAtATime() throws {
        let (rows, inF, outs, rank) = (70, 40, [48, 24, 24], 4)
        var rng = SeededGenerator(seed: 90)
        let x = G.randomFloats(rows * inF, using: &rng)
        let weights = outs.map { Matrix(rows: $0, cols: inF, storage: G.randomFloats($0 * inF, std: 0.2, using: &rng)) }
        let dys = outs.map { G.randomFloats(rows * $0, using: &rng) }
        let factors = outs.map { (G.randomFloats(rank * inF, std: 0.1, using: &rng), G.randomFloats($0 * rank, std: 0.1, using: &rng)) }
        let model = DecoderModel(weights: try G.tinyWeights(), lanes: 2)

        /// [y…, xa…, dx, dA…, dB…] with the projections grouped or run one by one.
        func run(grouped: Bool) -> [[Float]] {
            let a = factors.map { G.FloatBuffer($0.0) }, b = factors.map { G.FloatBuffer($0.1) }
            let gradA = outs.map { _ in G.FloatBuffer(zeros: rank * inF) }, gradB = outs.map { G.FloatBuffer(zeros: $0 * rank) }
            let adapters = outs.indices.map {
                LoRAAdapter(a: a[$0].pointer, b: b[$0].pointer, gradA: gradA[$0].pointer, gradB: gradB[$0].pointer, rank: rank, scale: 1.5)
            }
            let ys = outs.map { G.FloatBuffer(zeros: rows * $0) }, xas = outs.map { _ in G.FloatBuffer(zeros: rows * rank) }
            let dx = G.FloatBuffer(zeros: rows * inF), xb = G.FloatBuffer(x), dyb = dys.map { G.FloatBuffer($0) }
            let outputs = outs.indices.map {
                DecoderModel.ProjectionOutput(weight: weights[$0], adapter: adapters[$0], y: ys[$0].pointer, xa: xas[$0].pointer)
            }
            let gradients = outs.indices.map {
                DecoderModel.ProjectionGradient(weight: weights[$0], adapter: adapters[$0], dy: dyb[$0].pointer, xa: xas[$0].pointer)
            }
            if grouped {
                model.project(xb.pointer, outputs, rows: rows)
                model.projectBackward(gradients, x: xb.pointer, dx: dx.pointer, rows: rows, accumulate: false)
            } else {
                for o in outputs { model.project(xb.pointer, [o], rows: rows) }
                for (i, g) in gradients.enumerated() {
                    model.projectBackward([g], x: xb.pointer, dx: dx.pointer, rows: rows, accumulate: i > 0)
                }
            }
            return ys.map(\.values) + xas.map(\.values) + [dx.values] + gradA.map(\.values) + gradB.map(\.values)
        }
        let (grouped, single) = (run(grouped: true), run(grouped: false))
        XCTAssertEqual(grouped.count, single.count)
        for (i, (g, s)) in zip(grouped, single).enumerated() {
            XCTAssertEqual(g, s, "result \(i) differs between the group and single projections")
            XCTAssertFalse(g.allSatisfy { $0 == 0 }, "result \(i) is all zero")
        }
    }
}
