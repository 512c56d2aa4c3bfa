import Foundation
import Formats
import Training
import TestSupport
import XCTest

final class OptimParameterStoreTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws { directory = try makeScratchDirectory("optim-store") }

    func testLayoutIsAlignedAndPadded() throws {
        let store = ParameterStore()
        let a = try store.register(name: "a", shape: [4, 7])
        let b = try store.register(name: "b", shape: [5, 9])
        let c = try store.register(name: "c", shape: [])
        XCTAssertEqual([a.offset, b.offset, c.offset], [0, 32, 80])
        XCTAssertEqual([a.count, b.count, c.count], [28, 45, 1])
        XCTAssertEqual(store.count, 96)
        XCTAssertEqual(store.parameterCount, 74)
        XCTAssertEqual(store.view(named: "b"), b)
        XCTAssertEqual(Int(bitPattern: store.parameters) % 64, 0)
        XCTAssertThrowsError(try store.register(name: "a", shape: [1]))
        XCTAssertThrowsError(try store.register(name: "", shape: [1]))
        XCTAssertThrowsError(try store.register(name: "d", shape: [2, -1]))
    }

    /// The exact length a layout takes (what adapter and full-weight stores reserve up front, so
    /// that registration never doubles the four buffers); nil where `register` would throw.
    func testPaddedTotalMatchesTheRegisteredLayout() throws {
        let shapes = [[4, 7], [5, 9], [], [0, 3]]
        let store = try ParameterStore(layout: shapes.enumerated().map { ("t\($0.offset)", $0.element) })
        XCTAssertEqual(ParameterStore.paddedTotal(shapes), store.count)
        XCTAssertEqual(ParameterStore.paddedTotal(shapes), 96)
        XCTAssertNil(ParameterStore.paddedTotal([[3, -1]]))
        XCTAssertNil(ParameterStore.paddedTotal([[Int.max / 2, 3]]))
        XCTAssertNil(ParameterStore.paddedTotal([[Int.max - 8], [Int.max - 8]]))
    }

    func testRegisteringKeepsValuesWhenBuffersGrow() throws {
        let store = ParameterStore()
        let first = try store.register(name: "first", shape: [3])
        store.setValues(first, [1, 2, 3])
        store.setGradients(first, [4, 5, 6])
        for i in 0..<50 { try store.register(name: "p\(i)", shape: [17]) }
        XCTAssertEqual(store.values(first), [1, 2, 3])
        XCTAssertEqual(store.gradientValues(first), [4, 5, 6])
    }

    func testGradientNormAndClipping() throws {
        let store = try ParameterStore(layout: [("a", [3]), ("b", [2, 5])])
        let a = store.views[0], b = store.views[1]
        store.setGradients(a, [3, 4, 0])
        store.setGradients(b, [Float](repeating: 0, count: 9) + [12])
        XCTAssertEqual(store.gradientNorm(), 13)

        // Below the threshold: unchanged (coefficient 20 / (13 + 1e-6) ≥ 1).
        XCTAssertEqual(store.clipGradients(maxNorm: 20), 13)
        XCTAssertEqual(store.gradientValues(a), [3, 4, 0])

        // Above: scaled by Float(1) / (Float(13) + Float(1e-6)), as clip_grad_norm_ computes it in float32.
        XCTAssertEqual(store.clipGradients(maxNorm: 1), 13)
        let coefficient = Float(1) / (Float(13) + Float(1e-6))
        XCTAssertEqual(store.gradientValues(a), [3 * coefficient, 4 * coefficient, 0])
        XCTAssertEqual(store.gradientValues(b).last, 12 * coefficient)
        XCTAssertEqual(store.gradientNorm(), 1, accuracy: 1e-6)

        store.zeroGradients()
        XCTAssertEqual(store.gradientNorm(), 0)
        XCTAssertEqual(store.clipGradients(maxNorm: 1), 0)
    }

    func testGradientNormAccumulatesInDouble() throws {
        // 2^20 values of 1e-3 (plus a SIMD tail): float accumulation would drift, Double does not.
        let store = try ParameterStore(layout: [("w", [1 << 20 | 5])])
        store.setGradients(store.views[0], [Float](repeating: 1e-3, count: 1 << 20 | 5))
        let expected = (Double(1 << 20 | 5) * Double(Float(1e-3)) * Double(Float(1e-3))).squareRoot()
        XCTAssertEqual(store.gradientNorm(), expected, accuracy: expected * 1e-12)
    }

    /// Save / load: every bit comes back, including -0, subnormals and NaN payloads.
    func testSaveLoadIsBitExact() throws {
        let layout: [(name: String, shape: [Int])] = [("model.layers.0.q_proj.lora_A.weight", [4, 7]), ("b", [45]), ("scalar", [])]
        let store = try ParameterStore(layout: layout)
        var generator = SystemRandomNumberGenerator()
        for buffer in [store.parameters, store.expAvg, store.expAvgSq] {
            for view in store.views {
                for j in 0..<view.count { buffer[view.offset + j] = Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &generator)) }
            }
        }
        store.parameters[0] = -0.0
        store.parameters[1] = Float(bitPattern: 0x7FC0_1234)  // NaN with a payload
        store.parameters[2] = .leastNonzeroMagnitude
        store.step = 1234
        let adamW = AdamW(weightDecay: 0.01)
        let schedule = LRSchedule(kind: .cosine, baseLearningRate: 2e-5, totalSteps: 5000, warmup: .ratio(0.03))
        try store.save(to: directory, adamW: adamW, schedule: schedule)

        let restored = try ParameterStore(layout: layout)
        let state = try restored.load(from: directory)
        XCTAssertEqual(state.step, 1234)
        XCTAssertEqual(state.adamW, adamW)
        XCTAssertEqual(state.schedule, schedule)
        XCTAssertEqual(restored.step, 1234)
        for (x, y) in [(store.parameters, restored.parameters), (store.expAvg, restored.expAvg), (store.expAvgSq, restored.expAvgSq)] {
            for i in 0..<store.count { XCTAssertEqual(x[i].bitPattern, y[i].bitPattern, "element \(i)") }
        }

        // The tensors are ordinary safetensors, readable by PyTorch under PyTorch's names.
        let file = try SafeTensorsFile(url: directory.appendingPathComponent(ParameterStore.tensorsFileName))
        XCTAssertEqual(file.metadata["step"], "1234")
        XCTAssertEqual(file.info("exp_avg_sq/b")?.shape, [45])
        XCTAssertEqual(file.tensors.count, 9)
        let stateFiles = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        XCTAssertEqual(stateFiles, [ParameterStore.tensorsFileName, ParameterStore.stateFileName].sorted(), "no temporary files left")
    }

    func testLoadReportsEveryMismatch() throws {
        let store = try ParameterStore(layout: [("a", [2, 3]), ("b", [4])])
        try store.save(to: directory)
        let other = try ParameterStore(layout: [("a", [3, 2]), ("c", [4])])
        XCTAssertThrowsError(try other.load(from: directory)) { error in
            guard case let OptimError.layoutMismatch(_, problems) = error else { return XCTFail("\(error)") }
            let text = problems.joined(separator: "\n")
            XCTAssertTrue(text.contains("param/a: shape [2, 3], expected [3, 2]"), text)
            XCTAssertTrue(text.contains("param/c: missing"), text)
            XCTAssertTrue(text.contains("exp_avg/b: not a registered parameter"), text)
            XCTAssertEqual(problems.count, 9, text)
        }
    }

    func testLoadRejectsHalfWrittenCheckpoint() throws {
        let store = try ParameterStore(layout: [("a", [2])])
        store.step = 5
        try store.save(to: directory)
        let stateURL = directory.appendingPathComponent(ParameterStore.stateFileName)
        // As if the process died after renaming the tensors of step 6 but before the JSON.
        let json = try String(contentsOf: stateURL, encoding: .utf8).replacingOccurrences(of: "\"step\" : 5", with: "\"step\" : 6")
        try json.write(to: stateURL, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try store.load(from: directory)) { error in
            guard case OptimError.invalidState = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try store.load(from: directory.appendingPathComponent("missing")))
    }

    func testSnapshotRoundTrip() throws {
        let store = try ParameterStore(layout: [("a", [3])])
        store.setValues(store.views[0], [1, 2, 3])
        store.setGradients(store.views[0], [0.1, -0.2, 0.3])
        AdamW().step(store, learningRate: 0.1)
        let snapshot = store.snapshot()
        let decoded = try JSONDecoder().decode(ParameterStore.Snapshot.self, from: JSONEncoder().encode(snapshot))
        XCTAssertEqual(decoded, snapshot)
        AdamW().step(store, learningRate: 0.1)
        XCTAssertNotEqual(store.values(store.views[0]), snapshot.parameters.prefix(3).map { $0 })
        try store.restore(decoded)
        XCTAssertEqual(store.snapshot(), snapshot)
        XCTAssertEqual(store.step, 1)
        XCTAssertThrowsError(try ParameterStore(layout: [("b", [3])]).restore(snapshot))
    }
}
