import Foundation
import Formats
import TestSupport
import Training
import XCTest

/// AdamW, gradient clipping and the cosine schedule against torch.optim.AdamW
/// (`scripts/reference/make_optim_fixtures.py`, torch 2.15, transformers 5):
///
///     opt = torch.optim.AdamW(params, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=wd, foreach=False)
///     sched = get_cosine_schedule_with_warmup(opt, num_warmup_steps=ceil(0.1 * 10), num_training_steps=10)
///     for k in range(10):
///         for p, g in zip(params, grads[k]): p.grad = g.clone()
///         norm = torch.nn.utils.clip_grad_norm_(params, max_norm=1.0)
///         lr = opt.param_groups[0]["lr"]; opt.step(); sched.step()
///
/// Parameters a [4, 7], b [5, 9], c [27]: 100 values, so the flat loop runs both its SIMD8 body
/// and its scalar tail, over padded offsets.
final class OptimAdamWTests: XCTestCase {
    struct Config: Decodable {
        var weight_decay: Double
        var clip: Bool
        var schedule: String
        var warmup_steps: Int
        var lrs: [Double]
        var grad_norms: [Double]
    }

    struct Meta: Decodable {
        struct Entry: Decodable { var name: String; var shape: [Int] }
        var layout: [Entry]
        var steps: Int
        var lr: Double
        var betas: [Double]
        var eps: Double
        var configs: [String: Config]
    }

    static let folder = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("optim")

    func loadFixture() throws -> (Meta, SafeTensorsFile) {
        let meta = try JSONDecoder().decode(Meta.self, from: Data(contentsOf: Self.folder.appendingPathComponent("adamw.json")))
        return (meta, try SafeTensorsFile(url: Self.folder.appendingPathComponent("adamw.safetensors")))
    }

    /// Row `row` of a [rows, 100] fixture tensor (or the whole tensor for a 1-D one).
    func rowOf(_ file: SafeTensorsFile, _ name: String, _ row: Int = 0) throws -> [Float] {
        let info = try XCTUnwrap(file.info(name), "\(name) missing")
        let all = try file.floats(info)
        let width = info.shape.last ?? all.count
        return Array(all[(row * width)..<((row + 1) * width)])
    }

    func makeStore(_ meta: Meta) throws -> ParameterStore {
        try ParameterStore(layout: meta.layout.map { ($0.name, $0.shape) })
    }

    /// Copies a flat fixture vector (tensors concatenated in layout order) into a padded buffer.
    func scatter(_ flat: [Float], into store: ParameterStore, _ buffer: UnsafeMutablePointer<Float>) {
        var cursor = 0
        for view in store.views {
            for j in 0..<view.count { buffer[view.offset + j] = flat[cursor + j] }
            cursor += view.count
        }
    }

    func gather(_ store: ParameterStore, _ buffer: UnsafeMutablePointer<Float>) -> [Float] {
        store.views.flatMap { view in (0..<view.count).map { buffer[view.offset + $0] } }
    }

    /// ‖observed − expected‖₂ / ‖expected‖₂ (the relative error of the tensor as a whole, robust
    /// to entries near zero), the largest elementwise |difference|, and how many values differ at all.
    func compare(_ observed: [Float], _ expected: [Float]) -> (relative: Double, maxAbsolute: Double, mismatches: Int) {
        var difference = 0.0, norm = 0.0, worst = 0.0, mismatches = 0
        for (o, e) in zip(observed, expected) {
            let d = Double(o) - Double(e)
            difference += d * d
            norm += Double(e) * Double(e)
            worst = max(worst, abs(d))
            if o != e { mismatches += 1 }
        }
        return (norm > 0 ? (difference / norm).squareRoot() : difference.squareRoot(), worst, mismatches)
    }

    func short(_ x: Double) -> String { String(format: "%.1e", x) }

    /// The whole loop: clip (Double norm), schedule, AdamW, checked after every step.
    func testTenStepsMatchPyTorch() throws {
        let (meta, file) = try loadFixture()
        XCTAssertEqual(meta.configs.count, 3)
        for (name, config) in meta.configs.sorted(by: { $0.key < $1.key }) {
            let store = try makeStore(meta)
            scatter(try rowOf(file, "init"), into: store, store.parameters)
            let adamW = AdamW(beta1: meta.betas[0], beta2: meta.betas[1], eps: meta.eps, weightDecay: config.weight_decay)
            let schedule = LRSchedule(kind: config.schedule == "cosine" ? .cosine : .constant, baseLearningRate: meta.lr,
                                      totalSteps: meta.steps, warmup: config.schedule == "cosine" ? .ratio(0.1) : .steps(0))
            XCTAssertEqual(schedule.warmupSteps, config.warmup_steps, name)
            var report: [String] = []
            for k in 0..<meta.steps {
                store.zeroGradients()
                scatter(try rowOf(file, "grads", k), into: store, store.gradients)
                if config.clip {
                    let norm = store.clipGradients(maxNorm: 1.0)
                    XCTAssertEqual(norm, config.grad_norms[k], accuracy: 1e-6 * config.grad_norms[k], "\(name) step \(k) norm")
                }
                let usedGrads = compare(gather(store, store.gradients), try rowOf(file, "\(name)/grads_used", k))
                XCTAssertLessThanOrEqual(usedGrads.relative, 1e-6, "\(name) step \(k) clipped gradients")

                let lr = adamW.step(store, schedule: schedule)
                XCTAssertEqual(lr, config.lrs[k], accuracy: 1e-7 * max(config.lrs[k], 1e-12), "\(name) step \(k) lr")
                XCTAssertEqual(store.step, k + 1)

                let p = compare(gather(store, store.parameters), try rowOf(file, "\(name)/params", k))
                let m = compare(gather(store, store.expAvg), try rowOf(file, "\(name)/exp_avg", k))
                let v = compare(gather(store, store.expAvgSq), try rowOf(file, "\(name)/exp_avg_sq", k))
                XCTAssertLessThanOrEqual(p.relative, 1e-6, "\(name) step \(k) parameters")
                XCTAssertLessThanOrEqual(m.relative, 1e-6, "\(name) step \(k) exp_avg")
                XCTAssertLessThanOrEqual(v.relative, 1e-6, "\(name) step \(k) exp_avg_sq")
                report.append("step \(k + 1): lr \(lr == config.lrs[k] ? "==" : "≠") torch; values differing (of 100), relative error: "
                    + "g \(usedGrads.mismatches) \(short(usedGrads.relative)), p \(p.mismatches) \(short(p.relative)), "
                    + "m \(m.mismatches) \(short(m.relative)), v \(v.mismatches) \(short(v.relative))")
            }
            print("AdamW vs torch, \(name):\n  " + report.joined(separator: "\n  "))
        }
    }

    /// AdamW alone, fed PyTorch's own clipped gradients and learning rates: the moments must be
    /// bit-exact; the parameters may differ only through PyTorch's MKL `sqrt` (≤ a few ulp).
    func testAdamWAloneIsBitExactInTheMoments() throws {
        let (meta, file) = try loadFixture()
        for (name, config) in meta.configs.sorted(by: { $0.key < $1.key }) {
            let store = try makeStore(meta)
            scatter(try rowOf(file, "init"), into: store, store.parameters)
            let adamW = AdamW(beta1: meta.betas[0], beta2: meta.betas[1], eps: meta.eps, weightDecay: config.weight_decay)
            var worstParameter = 0.0, worstAbsolute = 0.0, parameterMismatches = 0
            for k in 0..<meta.steps {
                scatter(try rowOf(file, "\(name)/grads_used", k), into: store, store.gradients)
                // Keep the trajectories together: restart each step from PyTorch's state.
                if k > 0 {
                    scatter(try rowOf(file, "\(name)/params", k - 1), into: store, store.parameters)
                }
                adamW.step(store, learningRate: config.lrs[k])
                XCTAssertEqual(gather(store, store.expAvg), try rowOf(file, "\(name)/exp_avg", k), "\(name) step \(k) exp_avg")
                XCTAssertEqual(gather(store, store.expAvgSq), try rowOf(file, "\(name)/exp_avg_sq", k), "\(name) step \(k) exp_avg_sq")
                let p = compare(gather(store, store.parameters), try rowOf(file, "\(name)/params", k))
                worstParameter = max(worstParameter, p.relative)
                worstAbsolute = max(worstAbsolute, p.maxAbsolute)
                parameterMismatches += p.mismatches
            }
            XCTAssertLessThanOrEqual(worstParameter, 1e-6, name)
            print("AdamW alone, \(name): moments bit-exact; parameters: \(parameterMismatches) of \(meta.steps * 100) values differ, relative error ≤ \(short(worstParameter)), |Δp| ≤ \(short(worstAbsolute))")
        }
    }

    /// With lr 0 (the first update under warmup) PyTorch leaves p unchanged, but m, v and the step advance.
    func testZeroLearningRateStillAdvancesMoments() throws {
        let store = try ParameterStore(layout: [("w", [3])])
        let view = store.views[0]
        store.setValues(view, [1, -2, 3])
        store.setGradients(view, [0.5, 0.5, -1])
        AdamW(weightDecay: 0.1).step(store, learningRate: 0)
        XCTAssertEqual(store.values(view), [1, -2, 3])
        XCTAssertEqual(store.step, 1)
        XCTAssertEqual(Array(UnsafeBufferPointer(start: store.expAvg, count: 3)), [Float(0.1) * 0.5, Float(0.1) * 0.5, -Float(0.1)])
    }

    /// A hand-computed first step: m = 0.1 g, v = 0.001 g², m̂ / √v̂ = sign(g), so p moves by
    /// lr · g / (|g| + ε') after decay.
    func testFirstStepByHand() throws {
        let store = try ParameterStore(layout: [("w", [2])])
        let view = store.views[0]
        store.setValues(view, [1, 1])
        store.setGradients(view, [2, -0.5])
        AdamW(weightDecay: 0.5).step(store, learningRate: 0.1)
        let values = store.values(view)
        XCTAssertEqual(Double(values[0]), 1 * (1 - 0.05) - 0.1, accuracy: 1e-6)
        XCTAssertEqual(Double(values[1]), 1 * (1 - 0.05) + 0.1, accuracy: 1e-6)
    }

    func testValidate() {
        XCTAssertNoThrow(try AdamW().validate())
        XCTAssertThrowsError(try AdamW(beta1: 1).validate())
        XCTAssertThrowsError(try AdamW(weightDecay: -1).validate())
        XCTAssertEqual(AdamW().weightDecay, 0, "the PiSSA default (torch's is 0.01)")
    }
}
