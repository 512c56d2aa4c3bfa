import Adapters
import LinearAlgebra
import TestSupport
import XCTest

final class InitializerTests: XCTestCase {
    private func settings(_ method: InitMethod, rank: Int = 6, alpha: Float = 12, rslora: Bool = false) -> AdapterSettings {
        AdapterSettings(rank: rank, alpha: alpha, useRSLoRA: rslora, targets: ["x"], initMethod: method, oversample: 4, seed: 3)
    }

    func testPiSSAResidualPlusAdapterIsTheWeight() throws {
        let (w, _) = try matrixWithSpectrum(rows: 48, cols: 32, decay: 0.8, seed: 1)
        for method in [InitMethod.pissa, .pissaNiter(2), .pissaNiter(0)] {
            var residual = w
            var rng = SeededGenerator(seed: 0)
            let s = settings(method)
            let f = try AdapterInitializer.initialize(&residual, settings: s, using: &rng)
            var rebuilt = residual
            BLAS.gemm(f.B, f.A, into: &rebuilt, alpha: s.scale, beta: 1)
            XCTAssertLessThanOrEqual(rebuilt.relativeDifference(to: w), 1e-6, "\(method): W_res + sBA = W")
            XCTAssertEqual(f.A.shape, [6, 32])
            XCTAssertEqual(f.B.shape, [48, 6])
        }
    }

    /// scale·B·A is the best rank-r approximation and A, B share √(S/scale): ‖A_i‖² = ‖B_i‖² = σ_i/scale.
    func testExactPiSSAFactorsFollowThePaper() throws {
        let (w, sigma) = try matrixWithSpectrum(rows: 40, cols: 56, decay: 0.7, seed: 2)
        for rslora in [false, true] {
            var residual = w
            var rng = SeededGenerator(seed: 0)
            let s = settings(.pissa, rslora: rslora)
            let f = try AdapterInitializer.initialize(&residual, settings: s, using: &rng)
            assertRelativeClose(f.delta(scale: s.scale), try SVD(exact: w).reconstruct(rank: 6), tolerance: 1e-5, "sBA = best rank r")
            for i in 0..<6 {
                let rowA = (0..<56).reduce(0.0) { $0 + Double(f.A[i, $1] * f.A[i, $1]) }
                let colB = (0..<40).reduce(0.0) { $0 + Double(f.B[$1, i] * f.B[$1, i]) }
                XCTAssertEqual(rowA, Double(sigma[i] / s.scale), accuracy: 1e-4 * Double(sigma[0]))
                XCTAssertEqual(colB, Double(sigma[i] / s.scale), accuracy: 1e-4 * Double(sigma[0]))
            }
        }
        XCTAssertEqual(settings(.pissa, rank: 4, alpha: 8, rslora: true).scale, 4)
        XCTAssertEqual(settings(.pissa, rank: 4, alpha: 8).scale, 2)
    }

    func testTopSVDMatchesFullSVD() throws {
        let (w, _) = try matrixWithSpectrum(rows: 90, cols: 70, decay: 0.9, seed: 4)
        let full = try SVD(exact: w)
        let top = try SVD.top(5, of: w)   // 4·5 < 70: the sgesvdx path
        for i in 0..<5 { XCTAssertEqual(top.S[i], full.S[i], accuracy: 1e-5 * full.S[0]) }
        assertRelativeClose(top.reconstruct(rank: 5), full.reconstruct(rank: 5), tolerance: 1e-5, "top-5 product")
        let identity = Matrix(rows: 5, cols: 5, storage: (0..<25).map { $0 / 5 == $0 % 5 ? 1 : 0 })
        assertRelativeClose(BLAS.matmul(top.U, transposeA: true, top.U), identity, tolerance: 1e-5, "UᵀU = I")
    }

    func testLoRAStartsLeaveTheWeightAndZeroB() throws {
        var rng = SeededGenerator(seed: 9)
        let w = Matrix.gaussian(rows: 30, cols: 100, using: &rng)
        var copy = w
        let lora = try AdapterInitializer.initialize(&copy, settings: settings(.lora), using: &rng)
        XCTAssertEqual(copy, w)
        XCTAssertTrue(lora.B.storage.allSatisfy { $0 == 0 })
        let bound: Float = 1 / 10   // kaiming_uniform(a=√5) on fan_in 100
        XCTAssertTrue(lora.A.storage.allSatisfy { abs($0) <= bound })
        XCTAssertGreaterThan(lora.A.storage.map(abs).max()!, 0.9 * bound)

        let gaussian = try AdapterInitializer.initialize(&copy, settings: settings(.gaussian), using: &rng)
        let std = (gaussian.A.storage.reduce(0.0) { $0 + Double($1 * $1) } / Double(gaussian.A.count)).squareRoot()
        XCTAssertEqual(std, 1.0 / 6, accuracy: 0.02, "PEFT: std = 1/r")
        XCTAssertTrue(gaussian.B.storage.allSatisfy { $0 == 0 })
    }

    func testRankLargerThanTheMatrixIsAnError() {
        var w = Matrix(rows: 4, cols: 3, repeating: 1)
        var rng = SeededGenerator(seed: 0)
        XCTAssertThrowsError(try AdapterInitializer.initialize(&w, settings: settings(.pissa, rank: 4), using: &rng)) {
            XCTAssertEqual($0 as? LinearAlgebraError, .invalidRank(rank: 4, rows: 4, cols: 3))
        }
    }

    func testInitMethodNamesFollowPEFT() {
        XCTAssertEqual(InitMethod(peftName: "pissa_niter_16"), .pissaNiter(16))
        XCTAssertEqual(InitMethod(peftName: "pissa"), .pissa)
        XCTAssertEqual(InitMethod(peftName: "true"), .lora)
        XCTAssertNil(InitMethod(peftName: "pissa_niter_x"))
        XCTAssertNil(InitMethod(peftName: "orthogonal"))
        XCTAssertEqual(InitMethod(peftName: "olora"), .olora)
        XCTAssertEqual(InitMethod(peftName: "milora"), .milora)
        XCTAssertEqual(InitMethod.pissaNiter(4).peftName, "pissa_niter_4")
        for m in InitMethod.named { XCTAssertEqual(InitMethod(peftName: m.peftName), m, "\(m) round-trips its name") }
    }

    func testTargetMatchingFollowsPEFT() {
        XCTAssertTrue(TargetModules.matches(module: "model.layers.0.self_attn.q_proj", targets: ["q_proj"]))
        XCTAssertTrue(TargetModules.matches(module: "model.layers.0.self_attn.q_proj", targets: ["self_attn.q_proj"]))
        XCTAssertFalse(TargetModules.matches(module: "model.layers.0.self_attn.q_proj", targets: ["proj"]))
        XCTAssertTrue(TargetModules.matches(module: "q_proj", targets: ["q_proj"]))
        XCTAssertTrue(TargetModules.matches(module: "model.layers.3.mlp.down_proj", targets: ["all-linear"]))
        XCTAssertFalse(TargetModules.matches(module: "lm_head", targets: ["all-linear"]))
        XCTAssertFalse(TargetModules.matches(module: "model.embed_tokens", targets: ["all-linear"]))
        XCTAssertNil(TargetModules.modulePath(ofTensor: "model.norm.weight", shape: [64]))
        XCTAssertEqual(TargetModules.modulePath(ofTensor: "a.b.weight", shape: [2, 3]), "a.b")
    }
}
