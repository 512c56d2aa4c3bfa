import Experiments
import Adapters
import Foundation
import LinearAlgebra
import Model
import TestSupport
import Training
import XCTest

/// `pissa spectrum` on the fixture model of the starts: every target's singular values are the
/// exact SVD's, the top-r energy share is Σ_{i<r} σᵢ² / ‖W‖_F², and the figures are written.
final class SpectrumTests: XCTestCase {
    private var model: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("AdaptersTests/Fixtures/starts/model")
    }

    func testSingularValuesAndEnergyShares() throws {
        let report = try Spectrum.measure(modelPath: model.path, targets: ["all-linear"], rank: 4, lanes: 2)
        XCTAssertEqual(report.modules.count, 14)
        let weights = try ModelWeights(source: SafeTensorsWeightSource(directory: model), sourceName: "starts")
        for m in report.modules {
            let (layer, p) = try XCTUnwrap(weights.config.projection(modulePath: m.module))
            let w = weights.layers[layer][p].dequantized()
            let exact = try SVD(exact: w).S
            XCTAssertEqual(m.shape, [w.rows, w.cols])
            XCTAssertEqual(m.singularValues.count, exact.count)
            for (a, b) in zip(m.singularValues, exact) { XCTAssertEqual(a, b, accuracy: 1e-5 * exact[0], m.module) }
            let total = Double(w.frobeniusNorm) * Double(w.frobeniusNorm)
            let top = exact.prefix(4).reduce(0.0) { $0 + Double($1) * Double($1) }
            XCTAssertEqual(m.energyTopR, top / total, accuracy: 1e-5, m.module)
        }
        let only = try Spectrum.measure(modelPath: model.path, targets: ["q_proj"], rank: 2, lanes: 1)
        XCTAssertEqual(only.modules.map(\.kind), ["q_proj", "q_proj"])

        let directory = try makeScratchDirectory("pissa-spectrum")
        try Spectrum.write(report, to: directory)
        for name in [Spectrum.Report.fileName, "spectrum.svg", "energy.svg"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: directory.appendingPathComponent(name).path), name)
        }
        let decoded = try JSONDecoder().decode(Spectrum.Report.self, from: Data(contentsOf: directory.appendingPathComponent(Spectrum.Report.fileName)))
        XCTAssertEqual(decoded.modules.count, 14)
        XCTAssertThrowsError(try Spectrum.measure(modelPath: model.path, targets: ["all-linear"], rank: 9, lanes: 1), "rank beyond k/v's 8")
    }
}
