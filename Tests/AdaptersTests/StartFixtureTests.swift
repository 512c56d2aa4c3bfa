import Adapters
import Formats
import Foundation
import LinearAlgebra
import TestSupport
import XCTest

/// The starts PEFT ships, against PEFT on the same model (Tests/AdaptersTests/Fixtures/starts,
/// scripts/reference/make_start_fixtures.py: r = 4, lora_alpha = 8, all seven projections).
final class StartFixtureTests: XCTestCase {
    static var starts: URL { Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("starts") }

    static let settings = AdapterSettings(rank: 4, alpha: 8, targets: ["all-linear"], initMethod: .olora)

    /// The fixture model's target weights by module path, in file order.
    static func targetWeights() throws -> [(path: String, weight: Matrix)] {
        let file = try SafeTensorsFile(url: starts.appendingPathComponent("model/model.safetensors"))
        return try file.tensors.compactMap { info -> (String, Matrix)? in
            guard let path = TargetModules.modulePath(ofTensor: info.name, shape: info.shape), path.contains("layers.") else { return nil }
            return (path, Matrix(rows: info.shape[0], cols: info.shape[1], storage: try file.floats(info)))
        }
    }

    static func reference(_ name: String) throws -> SafeTensorsFile {
        try SafeTensorsFile(url: starts.appendingPathComponent(name + ".safetensors"))
    }

    /// OLoRA: QR has no sign freedom once LAPACK's Householder convention is fixed, so A, B and
    /// the residual equal PEFT's entry for entry (1e-5 relative to each tensor's largest entry).
    func testOLoRAEqualsPEFT() throws {
        let expected = try Self.reference("olora")
        var worst = 0.0
        for (path, w) in try Self.targetWeights() {
            var residual = w
            var rng = SeededGenerator(seed: 0)
            let f = try AdapterInitializer.initialize(&residual, settings: Self.settings, using: &rng)
            for (name, observed) in [("lora_A", f.A), ("lora_B", f.B), ("residual", residual)] {
                let e = try expected.matrix("\(path).\(name)")
                let error = maxAbsoluteDifference(observed, e) / Double(e.storage.map(abs).max()!)
                worst = max(worst, error)
                XCTAssertLessThanOrEqual(error, 1e-5, "\(path).\(name)")
            }
        }
        print("OLoRA vs PEFT: max |difference| / max |entry| = \(worst)")
    }

    /// MiLoRA has no PEFT version; its defining property: the adapter holds the bottom r singular
    /// triplets (‖A_i‖² = ‖B_i‖² = σ_{k−r+i}/scale) and the residual the top k − r (its singular
    /// values are W's first k − r, then zeros), and W_res + s·B·A = W.
    func testMiLoRAResidualHoldsTheTopComponents() throws {
        let (w, sigma) = try matrixWithSpectrum(rows: 40, cols: 24, decay: 0.8, seed: 4)
        let r = 5, k = 24
        var residual = w
        var rng = SeededGenerator(seed: 0)
        let s = AdapterSettings(rank: r, alpha: 10, targets: ["x"], initMethod: .milora)
        let f = try AdapterInitializer.initialize(&residual, settings: s, using: &rng)
        var rebuilt = residual
        BLAS.gemm(f.B, f.A, into: &rebuilt, alpha: s.scale, beta: 1)
        XCTAssertLessThanOrEqual(rebuilt.relativeDifference(to: w), 1e-6, "W_res + sBA = W")
        let kept = try SVD(exact: residual).S
        for i in 0..<k {
            let expected = i < k - r ? sigma[i] : 0
            XCTAssertEqual(kept[i], expected, accuracy: 1e-4 * sigma[0], "σ_\(i) of the residual")
        }
        for i in 0..<r {
            let rowA = (0..<f.A.cols).reduce(0.0) { $0 + Double(f.A[i, $1] * f.A[i, $1]) }
            let colB = (0..<f.B.rows).reduce(0.0) { $0 + Double(f.B[$1, i] * f.B[$1, i]) }
            XCTAssertEqual(rowA, Double(sigma[k - r + i] / s.scale), accuracy: 1e-4 * Double(sigma[0]), "‖A_\(i)‖²")
            XCTAssertEqual(colB, Double(sigma[k - r + i] / s.scale), accuracy: 1e-4 * Double(sigma[0]), "‖B_\(i)‖²")
        }
        // The mirror image of PiSSA: the PiSSA residual is exactly what MiLoRA's adapter is not.
        var pissaResidual = w
        _ = try AdapterInitializer.initialize(&pissaResidual, settings: AdapterSettings(rank: k - r, alpha: Float(k - r), targets: ["x"], initMethod: .pissa),
                                              using: &rng)
        assertRelativeClose(f.delta(scale: s.scale), pissaResidual, tolerance: 1e-4, "MiLoRA's sBA = W − PiSSA_{k−r}(W)")
    }
}

/// max_i |a_i − b_i|.
func maxAbsoluteDifference(_ a: Matrix, _ b: Matrix) -> Double {
    precondition(a.shape == b.shape, "\(a.shape) vs \(b.shape)")
    var worst = 0.0
    for i in 0..<a.storage.count { worst = max(worst, abs(Double(a.storage[i]) - Double(b.storage[i]))) }
    return worst
}
