import Adapters
import Formats
import Foundation
import LinearAlgebra
import TestSupport
import XCTest

/// QPiSSA / QLoRA / LoftQ starts on small matrices with a decaying spectrum, and the NF4
/// safetensors layout's round trip and error messages.
final class QuantizedInitTests: XCTestCase {
    private func weight() throws -> Matrix {
        var (w, _) = try matrixWithSpectrum(rows: 96, cols: 128, decay: 0.9, seed: 11)
        var rng = SeededGenerator(seed: 5)
        let noise = Matrix.gaussian(rows: 96, cols: 128, std: 0.01, using: &rng)
        for i in 0..<w.count { w.storage[i] += noise.storage[i] }
        return w
    }

    private func error(_ w: Matrix, _ method: InitMethod, iterations: Int, rank: Int = 8, alpha: Float = 16) throws -> (Double, LoRAFactors, NF4Matrix) {
        var rng = SeededGenerator(seed: 1)
        let settings = AdapterSettings(rank: rank, alpha: alpha, targets: ["x"], initMethod: method)
        let (f, q) = try QuantizedInitializer.initialize(w, settings: settings, quant: QuantSettings(iterations: iterations), using: &rng)
        return (try QuantizationError.measure(w, residual: q, factors: f, scale: settings.scale).nuclear, f, q)
    }

    func testQPiSSAReducesTheQLoRAErrorAndMoreWithIterations() throws {
        let w = try weight()
        let (qlora, fLoRA, qLoRA) = try error(w, .lora, iterations: 1)
        XCTAssertEqual(fLoRA.B.storage.allSatisfy { $0 == 0 }, true, "QLoRA: B = 0")
        XCTAssertEqual(qLoRA, NF4Matrix(quantizing: w), "QLoRA: Q = nf4(W)")
        let (t1, _, _) = try error(w, .pissa, iterations: 1)
        let (t5, _, _) = try error(w, .pissa, iterations: 5)
        let (loftq1, fLoftQ, _) = try error(w, .loftq, iterations: 1)
        let (loftq5, _, _) = try error(w, .loftq, iterations: 5)
        XCTAssertLessThan(t1, 0.8 * qlora)
        XCTAssertLessThan(t5, t1)
        XCTAssertLessThan(loftq1, qlora)
        XCTAssertLessThan(loftq5, loftq1)
        XCTAssertGreaterThan(fLoftQ.B.frobeniusNorm, 0, "LoftQ's adapter is not zero-B")
        // One QPiSSA iteration is PiSSA followed by nf4 of its residual.
        var residual = w
        var rng = SeededGenerator(seed: 1)
        let settings = AdapterSettings(rank: 8, alpha: 16, targets: ["x"], initMethod: .pissa)
        let f = try AdapterInitializer.initialize(&residual, settings: settings, using: &rng)
        var rng2 = SeededGenerator(seed: 1)
        let (g, q) = try QuantizedInitializer.initialize(w, settings: settings, quant: QuantSettings(iterations: 1), using: &rng2)
        XCTAssertEqual(f, g)
        XCTAssertEqual(q, NF4Matrix(quantizing: residual))
    }

    func testQPiSSAStartsWithTheScaleDividedOut() throws {
        let w = try weight()
        let (e16, _, _) = try error(w, .pissa, iterations: 2, alpha: 16)
        let (e8, _, _) = try error(w, .pissa, iterations: 2, alpha: 8)
        XCTAssertEqual(e16, e8, accuracy: 1e-3 * e8, "s·B·A does not depend on alpha")
    }

    func testInvalidSettingsThrow() throws {
        var rng = SeededGenerator(seed: 0)
        let s = AdapterSettings(rank: 2, alpha: 2, targets: ["x"], initMethod: .pissa)
        XCTAssertThrowsError(try QuantizedInitializer.initialize(Matrix(rows: 4, cols: 4), settings: s, quant: QuantSettings(iterations: 0), using: &rng))
        var w = Matrix(rows: 4, cols: 4)
        XCTAssertThrowsError(try AdapterInitializer.initialize(&w, settings: AdapterSettings(rank: 2, targets: ["x"], initMethod: .loftq), using: &rng)) {
            XCTAssertTrue("\($0)".contains("--quant nf4"), "\($0)")
        }
    }

    func testDequantizingAnyElementRangeMatchesTheWhole() {
        var rng = SeededGenerator(seed: 3)
        let q = NF4Matrix(quantizing: .gaussian(rows: 7, cols: 45, std: 1, using: &rng), doubleQuant: true)
        let whole = q.dequantized().storage
        for range in [0..<315, 1..<2, 63..<130, 64..<128, 3..<314, 314..<315, 100..<100] {
            var out = [Float](repeating: .nan, count: range.count)
            out.withUnsafeMutableBufferPointer { q.dequantizeElements(range, into: $0.baseAddress!) }
            XCTAssertEqual(out, Array(whole[range]), "\(range)")
        }
        var rows = [Float](repeating: .nan, count: 3 * 45)
        rows.withUnsafeMutableBufferPointer { q.dequantizeRows(2..<5, into: $0.baseAddress!) }
        XCTAssertEqual(rows, Array(whole[90..<225]))
    }

    func testSafeTensorsRoundTripAndClearErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nf4-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var rng = SeededGenerator(seed: 4)
        let single = NF4Matrix(quantizing: .gaussian(rows: 9, cols: 33, std: 1, using: &rng))
        let double = NF4Matrix(quantizing: .gaussian(rows: 40, cols: 500, std: 1, using: &rng), doubleQuant: true)
        let url = dir.appendingPathComponent("m.safetensors")
        let specs = NF4Tensors.specs(name: "a.weight", matrix: single, originalDType: .bf16)
            + NF4Tensors.specs(name: "b.weight", matrix: double, originalDType: .f32)
        let writer = try SafeTensorsWriter(url: url, tensors: specs)
        try NF4Tensors.write(single, name: "a.weight", originalDType: .bf16, into: writer)
        try NF4Tensors.write(double, name: "b.weight", originalDType: .f32, into: writer)
        try writer.commit()
        let file = try SafeTensorsFile(url: url)
        XCTAssertEqual(try NF4Tensors.read("a.weight", from: file), single)
        XCTAssertEqual(try NF4Tensors.read("b.weight", from: file), double)
        XCTAssertEqual(try NF4Tensors.originalDType("a.weight", in: file), "bfloat16")

        // A file missing a companion tensor, and one with a wrong shape: errors name file and tensor.
        let broken = dir.appendingPathComponent("broken.safetensors")
        let kept = specs.filter { $0.name != "a.weight.absmax" && $0.name.hasPrefix("a.") }
        var reshaped = kept
        reshaped[0].shape = [reshaped[0].shape[0] - 1, 1]
        for (variant, expected) in [(kept, "missing tensor 'a.weight.absmax'"), (reshaped, "has shape")] {
            let w = try SafeTensorsWriter(url: broken, tensors: variant)
            for spec in variant {
                let info = try XCTUnwrap(w.info(spec.name))
                let source = spec.name == "a.weight.quant_state.bitsandbytes__nf4"
                    ? Array(#"{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [9, 33]}"#.utf8) : []
                var bytes = source + [UInt8](repeating: 0, count: info.dataRange.count - source.count)
                if spec.name == "a.weight.quant_map" {
                    bytes = NF4Matrix.codebook.withUnsafeBytes { Array($0) }
                }
                try bytes.withUnsafeBytes { try w.write(spec.name, bytes: $0) }
            }
            try w.commit()
            XCTAssertThrowsError(try NF4Tensors.read("a.weight", from: try SafeTensorsFile(url: broken))) {
                XCTAssertTrue("\($0)".contains(expected) && "\($0)".contains("broken.safetensors") && "\($0)".contains("a.weight"), "\($0)")
            }
        }
    }
}
