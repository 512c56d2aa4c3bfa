import Adapters
import Formats
import Foundation
import LinearAlgebra
import Model
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

    /// LoftQ with 1 and 5 iterations (lora_alpha = r, where PEFT's unscaled factors are the start):
    /// PEFT's loop with the NF4 format restated (its own needs CUDA; see the script): the NF4
    /// residual's values, and A, B up to the sign each SVD triplet may take (row i of A and
    /// column i of B together).
    func testLoftQEqualsPEFT() throws {
        for iterations in [1, 5] {
            let expected = try Self.reference("loftq_\(iterations)")
            let settings = AdapterSettings(rank: 4, alpha: 4, targets: ["all-linear"], initMethod: .loftq)
            var worst = (factors: 0.0, residual: 0.0, delta: 0.0)
            for (path, w) in try Self.targetWeights() {
                var rng = SeededGenerator(seed: 0)
                let (f, q) = try QuantizedInitializer.initialize(w, settings: settings, quant: QuantSettings(iterations: iterations), using: &rng)
                var a = f.A, b = f.B
                let (ea, eb) = (try expected.matrix(path + ".lora_A"), try expected.matrix(path + ".lora_B"))
                for i in 0..<a.rows where (0..<a.cols).reduce(Float(0), { $0 + a[i, $1] * ea[i, $1] }) < 0 {
                    for j in 0..<a.cols { a[i, j] = -a[i, j] }
                    for j in 0..<b.rows { b[j, i] = -b[j, i] }
                }
                let scale = { (m: Matrix) in Double(m.storage.map(abs).max()!) }
                worst.factors = max(worst.factors, maxAbsoluteDifference(a, ea) / scale(ea), maxAbsoluteDifference(b, eb) / scale(eb))
                let delta = LoRAFactors(A: ea, B: eb).delta(scale: 1)
                worst.delta = max(worst.delta, maxAbsoluteDifference(f.delta(scale: 1), delta) / scale(delta))
                let residual = try expected.matrix(path + ".residual")
                worst.residual = max(worst.residual, maxAbsoluteDifference(q.dequantized(), residual) / scale(residual))
            }
            print("LoftQ T=\(iterations) vs PEFT: B·A \(worst.delta), factors \(worst.factors), NF4 residual \(worst.residual)")
            // The SVD of W − deq(Q) has small gaps (quantisation noise): single vectors agree to
            // a few 1e-5, their product to 1e-5.
            XCTAssertLessThanOrEqual(worst.delta, 1e-5, "T = \(iterations)")
            XCTAssertLessThanOrEqual(worst.factors, 1e-4, "T = \(iterations)")
            XCTAssertLessThanOrEqual(worst.residual, 1e-5, "T = \(iterations)")
        }
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

/// The data-driven starts against PEFT on the fixture model and its calibration sequences
/// (`calibration.safetensors`: 6 sequences of 12 tokens, three with a masked prompt).
final class CalibratedStartTests: XCTestCase {
    private let settings = StartFixtureTests.settings

    private func weights() throws -> ModelWeights {
        try ModelWeights(source: SafeTensorsWeightSource(directory: StartFixtureTests.starts.appendingPathComponent("model")), sourceName: "starts")
    }

    /// Sequences `0..<6` in batches of `size` (CorDA's PEFT hook runs one sequence per pass; the
    /// covariance is per sequence either way), labels in Hugging Face's convention.
    static func batches(size: Int) throws -> [CalibrationBatch] {
        let file = try StartFixtureTests.reference("calibration")
        let tokens = try file.integers("tokens"), labels = try file.integers("labels")
        let (count, T) = (6, 12)
        return stride(from: 0, to: count, by: size).map { first in
            let rows = (first * T)..<((first + size) * T)
            let targets = rows.map { n in n % T + 1 < T && labels[n + 1] != -100 ? Int32(labels[n + 1]) : -1 }
            return CalibrationBatch(tokens: rows.map { Int32(tokens[$0]) }, targets: targets, lengths: Array(repeating: T, count: size),
                                    supervised: rows.map { labels[$0] != -100 })
        }
    }

    private func targets() throws -> CalibrationTargets {
        let c = try weights().config
        return CalibrationTargets((0..<c.numHiddenLayers).flatMap { l in c.projections.map { (layer: l, projection: $0) } }, config: c)
    }

    /// Max |observed − expected| over max |expected|, allowing each row (A) or column (B) the sign
    /// an SVD may give it: `jointSigns` ties row i of A to column i of B (CorDA), else each is free (LoRA-GA).
    private func factorError(_ f: LoRAFactors, _ e: LoRAFactors, jointSigns: Bool) -> Double {
        var a = f.A, b = f.B
        for i in 0..<a.rows {
            let dot = (0..<a.cols).reduce(Float(0)) { $0 + a[i, $1] * e.A[i, $1] }
            if dot < 0 {
                for j in 0..<a.cols { a[i, j] = -a[i, j] }
                if jointSigns { for j in 0..<b.rows { b[j, i] = -b[j, i] } }
            }
            if !jointSigns {
                let dotB = (0..<b.rows).reduce(Float(0)) { $0 + b[$1, i] * e.B[$1, i] }
                if dotB < 0 { for j in 0..<b.rows { b[j, i] = -b[j, i] } }
            }
        }
        return max(maxAbsoluteDifference(a, e.A) / Double(e.A.storage.map(abs).max()!),
                   maxAbsoluteDifference(b, e.B) / Double(e.B.storage.map(abs).max()!))
    }

    /// Max |Δ| over max |entry|.
    private func relative(_ a: Matrix, _ e: Matrix) -> Double { maxAbsoluteDifference(a, e) / Double(e.storage.map(abs).max()!) }

    /// CorDA: our covariances against PEFT's (1e-5); on PEFT's covariance, our start against the
    /// fixture's float64 evaluation of PEFT's formula (1e-5); end to end, against PEFT's own
    /// float32 answer within PEFT's distance from that evaluation (KPM's bottom triplets move with
    /// the covariance's last bits: their gaps are 1e-4 of the top singular value here).
    private func checkCorDA(_ name: String, settings s: AdapterSettings) throws {
        let expected = try StartFixtureTests.reference(name)
        let w = try weights()
        let result = try CalibrationResult.measure(weights: w, targets: try targets(), batches: Self.batches(size: 3), settings: s, lanes: 2)
        var worst = (covariance: 0.0, exact: 0.0, peft: 0.0, peftFromExact: 0.0)
        for m in try targets().modules {
            guard case .covariance(let c)? = result.modules[m.path] else { return XCTFail("\(m.path): no covariance") }
            worst.covariance = max(worst.covariance, relative(c, try expected.matrix(m.path + ".covariance")))
            var residual = w.layers[m.layer][m.projection].dequantized(), onPEFTs = residual
            var rng = SeededGenerator(seed: 0)
            let f = try AdapterInitializer.initialize(&residual, settings: s, calibration: .covariance(c), using: &rng)
            let g = try AdapterInitializer.initialize(&onPEFTs, settings: s, calibration: .covariance(try expected.matrix(m.path + ".covariance")),
                                                      using: &rng)
            let exact = LoRAFactors(A: try expected.matrix(m.path + ".lora_A_f64"), B: try expected.matrix(m.path + ".lora_B_f64"))
            let peft = LoRAFactors(A: try expected.matrix(m.path + ".lora_A"), B: try expected.matrix(m.path + ".lora_B"))
            let (exactDelta, peftDelta) = (exact.delta(scale: s.scale), peft.delta(scale: s.scale))
            worst.exact = max(worst.exact, factorError(g, exact, jointSigns: true), relative(g.delta(scale: s.scale), exactDelta))
            worst.peft = max(worst.peft, relative(f.delta(scale: s.scale), peftDelta), relative(residual, try expected.matrix(m.path + ".residual")))
            worst.peftFromExact = max(worst.peftFromExact, relative(peftDelta, exactDelta))
        }
        print("\(name): covariance vs PEFT \(worst.covariance); on PEFT's covariance, factors and s·B·A vs float64 \(worst.exact); "
              + "s·B·A and residual vs PEFT \(worst.peft), where PEFT's float32 s·B·A is \(worst.peftFromExact) from float64")
        XCTAssertLessThanOrEqual(worst.covariance, 1e-5)
        XCTAssertLessThanOrEqual(worst.exact, 1e-5)
        XCTAssertLessThanOrEqual(worst.peft, 3 * worst.peftFromExact + 1e-5)
    }

    private func check(_ name: String, settings s: AdapterSettings, batchSize: Int, jointSigns: Bool, statistic: String,
                       tolerance: Double = 1e-5) throws {
        let expected = try StartFixtureTests.reference(name)
        let w = try weights()
        let result = try CalibrationResult.measure(weights: w, targets: try targets(), batches: Self.batches(size: batchSize), settings: s, lanes: 2)
        var worst = (statistic: 0.0, factors: 0.0, residual: 0.0, delta: 0.0)
        for m in try targets().modules {
            var residual = w.layers[m.layer][m.projection].dequantized()
            let original = residual
            let calibration = try XCTUnwrap(result.modules[m.path])
            switch calibration {
            case .covariance(let c), .gradient(let c):
                let e = try expected.matrix("\(m.path).\(statistic)")
                worst.statistic = max(worst.statistic, maxAbsoluteDifference(c, e) / Double(e.storage.map(abs).max()!))
            case .components: break
            }
            var rng = SeededGenerator(seed: 0)
            let f = try AdapterInitializer.initialize(&residual, settings: s, calibration: calibration, using: &rng)
            let e = LoRAFactors(A: try expected.matrix(m.path + ".lora_A"), B: try expected.matrix(m.path + ".lora_B"))
            worst.factors = max(worst.factors, factorError(f, e, jointSigns: jointSigns))
            var rebuilt = residual
            BLAS.gemm(f.B, f.A, into: &rebuilt, alpha: s.scale, beta: 1)
            XCTAssertLessThanOrEqual(rebuilt.relativeDifference(to: original), 1e-6, "\(m.path): W_res + sBA = W")
            if jointSigns {
                let eResidual = try expected.matrix(m.path + ".residual")
                worst.residual = max(worst.residual, maxAbsoluteDifference(residual, eResidual) / Double(eResidual.storage.map(abs).max()!))
                let delta = f.delta(scale: s.scale), eDelta = e.delta(scale: s.scale)
                worst.delta = max(worst.delta, maxAbsoluteDifference(delta, eDelta) / Double(eDelta.storage.map(abs).max()!))
            }
        }
        print("\(name) vs PEFT (max |Δ| / max |entry|): \(statistic) \(worst.statistic), factors \(worst.factors), residual \(worst.residual), s·B·A \(worst.delta)")
        for (label, value) in [(statistic, worst.statistic), ("factors", worst.factors), ("residual", worst.residual), ("s·B·A", worst.delta)] {
            XCTAssertLessThanOrEqual(value, tolerance, "\(name): \(label)")
        }
    }

    func testCorDAIPMEqualsPEFT() throws {
        var s = settings
        s.initMethod = .corda
        try checkCorDA("corda_ipm", settings: s)
    }

    func testCorDAKPMEqualsPEFT() throws {
        var s = settings
        s.initMethod = .corda
        s.corda.method = .kpm
        try checkCorDA("corda_kpm", settings: s)
    }

    /// LoRA-GA: PEFT's gradient, and its factors up to each triplet's sign (A and B come from
    /// different triplets, so their signs are independent).
    func testLoRAGAEqualsPEFT() throws {
        var s = settings
        s.initMethod = .loraGA
        // The factors are singular vectors of the gradient, whose 2.6e-6 difference (float32
        // accumulation order: scipy-openblas32's kernels against PyTorch's) they amplify to ≈ 1.1e-5.
        try check("lora_ga", settings: s, batchSize: 2, jointSigns: false, statistic: "gradient", tolerance: 3e-5)
    }

    /// LoRA-GA's defining property, beyond PEFT: A spans the gradient's top r right singular
    /// vectors and B the next r left ones scaled by their singular values and out^¼/√γ, so
    /// s·B·A·(the top r) reproduces the gradient's own structure.
    func testLoRAGAStartIsTheGradientsSVD() throws {
        var s = settings
        s.initMethod = .loraGA
        let w = try weights()
        let result = try CalibrationResult.measure(weights: w, targets: try targets(), batches: Self.batches(size: 2), settings: s, lanes: 1)
        for m in try targets().modules {
            guard case .gradient(let g)? = result.modules[m.path] else { return XCTFail("no gradient for \(m.path)") }
            var residual = w.layers[m.layer][m.projection].dequantized()
            var rng = SeededGenerator(seed: 0)
            let f = try AdapterInitializer.initialize(&residual, settings: s, calibration: .gradient(g), using: &rng)
            let svd = try SVD(exact: g)
            let factor = Float(pow(Double(g.rows), 0.25) / 4)
            for i in 0..<4 {
                // A's rows are the right singular vectors 0..<r (unit length, up to sign) …
                let dot = (0..<g.cols).reduce(Float(0)) { $0 + f.A[i, $1] * svd.Vh[i, $1] }
                XCTAssertEqual(abs(dot), 1, accuracy: 1e-4, "\(m.path): A row \(i) = ±Vh[\(i)]")
                // … B's columns the left ones r..<2r times σ and the stable scale.
                let norm = (0..<g.rows).reduce(Float(0)) { $0 + f.B[$1, i] * f.B[$1, i] }.squareRoot()
                XCTAssertEqual(norm, svd.S[4 + i] * factor, accuracy: 1e-4 * svd.S[0] * factor, "\(m.path): ‖B col \(i)‖ = σ_{r+i}·out^¼/√γ")
                let cosine = (0..<g.rows).reduce(Float(0)) { $0 + f.B[$1, i] * svd.U[$1, 4 + i] } / norm
                XCTAssertEqual(abs(cosine), 1, accuracy: 1e-4, "\(m.path): B col \(i) ∥ U[:, r+\(i)]")
            }
        }
    }

    /// EVA: the ranks PEFT redistributed (its rank_pattern, alpha_pattern and the modules it kept)
    /// and every kept module's A (B = 0).
    func testEVAEqualsPEFT() throws {
        var s = settings
        s.initMethod = .eva
        let expected = try StartFixtureTests.reference("eva")
        let result = try CalibrationResult.measure(weights: try weights(), targets: try targets(), batches: Self.batches(size: 2), settings: s, lanes: 2)
        func json<T: Decodable>(_ key: String, _ type: T.Type) throws -> T {
            try JSONDecoder().decode(T.self, from: Data(try XCTUnwrap(expected.metadata[key]).utf8))
        }
        // PEFT's ranks: r unless in rank_pattern, 0 for the modules it dropped.
        let kept = Set(try json("target_modules", [String].self)), pattern = try json("rank_pattern", [String: Int].self)
        let alphaPattern = try json("alpha_pattern", [String: Float].self)
        func peftRank(_ path: String) -> Int { kept.contains(path) ? pattern[path] ?? s.rank : 0 }
        var ranks: [String: Int] = [:], worst = 0.0
        for m in try targets().modules {
            if case .components(let a)? = result.modules[m.path] { ranks[m.path] = a.rows } else { ranks[m.path] = 0 }
        }
        // k and v read q's input, and up gate's: their explained variances are the same numbers,
        // and when the budget runs out inside such a tie PEFT's torch.argsort (not stable) picks
        // either member. So: each group's owner has PEFT's rank, and the group the same ranks.
        for m in try targets().modules where m.projection == .q || m.projection == .gate || m.projection == .o || m.projection == .down {
            let group = try targets().modules.filter { $0.layer == m.layer && DecoderModel.projectionGroup(of: m.projection).contains($0.projection) }
            XCTAssertEqual(ranks[m.path], peftRank(m.path), "\(m.path): the owner's rank")
            XCTAssertEqual(group.map { ranks[$0.path]! }.sorted(), group.map { peftRank($0.path) }.sorted(), "\(m.path)'s group")
        }
        for m in try targets().modules where (ranks[m.path] ?? 0) > 0 && ranks[m.path] == peftRank(m.path) {
            guard case .components(let a)? = result.modules[m.path] else { continue }
            worst = max(worst, relative(a, try expected.matrix(m.path + ".lora_A")))
            XCTAssertTrue(try expected.matrix(m.path + ".lora_B").storage.allSatisfy { $0 == 0 })
            let alpha = result.alphas[m.path] ?? s.alpha
            XCTAssertEqual(alpha, alphaPattern[m.path] ?? s.alpha, "\(m.path): lora_alpha × rank / r")
        }
        print("EVA vs PEFT: ranks as PEFT's (up to ties inside a group); A max |Δ| / max |entry| \(worst) after \(result.batchesRun) batches")
        XCTAssertLessThanOrEqual(worst, 1e-5)
    }
}

/// max_i |a_i − b_i|.
func maxAbsoluteDifference(_ a: Matrix, _ b: Matrix) -> Double {
    precondition(a.shape == b.shape, "\(a.shape) vs \(b.shape)")
    var worst = 0.0
    for i in 0..<a.storage.count { worst = max(worst, abs(Double(a.storage[i]) - Double(b.storage[i]))) }
    return worst
}
