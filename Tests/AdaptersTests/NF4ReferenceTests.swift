import Formats
import Foundation
import LinearAlgebra
import TestSupport
import XCTest

/// NF4 quantisation against bitsandbytes 0.50 on CPU (scripts/reference/make_nf4_fixtures.py):
/// codes and absmax bit for bit, dequantisation exactly, double quantisation of the absmax values,
/// and the fixture read back through `NF4Tensors` (it is stored in transformers' Linear4bit layout).
final class NF4ReferenceTests: XCTestCase {
    private static let fixture = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
        .appendingPathComponent("nf4_reference.safetensors")

    private var file: SafeTensorsFile!
    override func setUpWithError() throws { file = try SafeTensorsFile(url: Self.fixture) }

    private var caseNames: [String] {
        file.tensors.map(\.name).filter { $0.hasSuffix(".input") }.map { String($0.dropLast(".input".count)) }
    }

    private func matrix(_ name: String) throws -> Matrix {
        let info = try XCTUnwrap(file.info(name), name)
        return Matrix(rows: info.shape[0], cols: info.shape[1], storage: try file.floats(info))
    }

    private func bytes(_ name: String) throws -> [UInt8] { [UInt8](file.rawBytes(try XCTUnwrap(file.info(name), name))) }
    private func floats(_ name: String) throws -> [Float] { try file.floats(try XCTUnwrap(file.info(name), name)) }

    private func isDouble(_ name: String) -> Bool { file.info(name + ".nested_absmax") != nil }

    private func assertBitEqual(_ a: [Float], _ b: [Float], _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        guard a.count == b.count else { return XCTFail("\(label): \(a.count) values, expected \(b.count)", file: file, line: line) }
        let bad = a.indices.filter { a[$0].bitPattern != b[$0].bitPattern }
        if let i = bad.first { XCTFail("\(label): \(bad.count) values differ, first [\(i)] \(a[i]) vs \(b[i])", file: file, line: line) }
    }

    func testFixtureCoversTheCases() {
        XCTAssertEqual(caseNames.count, 12, "\(caseNames)")
        XCTAssertEqual(caseNames.filter(isDouble).count, 3)
    }

    func testCodesAndAbsmaxEqualBitsandbytes() throws {
        for name in caseNames where !isDouble(name) {
            let input = try matrix(name + ".input")
            let q = NF4Matrix(quantizing: input)
            let expectedCodes = try bytes(name)
            let mismatches = zip(q.packed, expectedCodes).enumerated().filter { $0.element.0 != $0.element.1 }
            XCTAssertEqual(q.packed.count, expectedCodes.count, name)
            XCTAssertTrue(mismatches.isEmpty, "\(name): \(mismatches.count) code bytes differ, first \(mismatches.prefix(3).map { "#\($0.offset): \($0.element.0) vs \($0.element.1)" })")
            assertBitEqual(q.absmax, try floats(name + ".absmax"), "\(name) absmax")
            assertBitEqual(q.dequantized().storage, try matrix(name + ".dequantized").storage, "\(name) dequantised")
        }
    }

    func testDoubleQuantisationEqualsBitsandbytes() throws {
        assertBitEqual(NF4QuantizedAbsmax.dynamicMap, try floats("double_3x70.nested_quant_map"), "8-bit dynamic map")
        for name in caseNames where isDouble(name) {
            let input = try matrix(name + ".input")
            let single = NF4Matrix(quantizing: input)
            XCTAssertEqual(single.packed, try bytes(name), "\(name): 4-bit codes use the exact absmax")
            let state = try JSONDecoder().decode(NF4QuantState.self, from: Data(try bytes(name + ".quant_state.bitsandbytes__nf4")))
            let offset = try XCTUnwrap(state.nestedOffset)
            // Our mean is accumulated in Double; torch's float32 reduction may differ in the last bit.
            let ours = NF4QuantizedAbsmax(quantizing: single.absmax)
            XCTAssertEqual(Double(ours.offset), Double(offset), accuracy: 2e-7 * Double(abs(offset)), name)
            // Given bitsandbytes' offset, nested absmax match bit for bit and the 8-bit codes too,
            // except where bitsandbytes' bucketed search took the second-nearest entry (ours is nearer).
            let given = NF4QuantizedAbsmax(quantizing: single.absmax, offset: offset)
            assertBitEqual(given.nestedAbsmax, try floats(name + ".nested_absmax"), "\(name) nested absmax")
            let expectedCodes = try bytes(name + ".absmax"), map = NF4QuantizedAbsmax.dynamicMap
            var differing = 0
            for i in given.codes.indices where given.codes[i] != expectedCodes[i] {
                differing += 1
                let x = (single.absmax[i] - offset) / given.nestedAbsmax[i / 256]
                XCTAssertLessThan(abs(x - map[Int(given.codes[i])]), abs(x - map[Int(expectedCodes[i])]), "\(name) code \(i)")
                XCTAssertEqual(abs(Int(given.codes[i]) - Int(expectedCodes[i])), 1, "\(name) code \(i)")
            }
            XCTAssertLessThanOrEqual(differing, max(1, expectedCodes.count / 200), "\(name): \(differing) of \(expectedCodes.count) codes differ")
            // Dequantisation of bitsandbytes' codes is exact.
            let theirs = NF4QuantizedAbsmax(codes: expectedCodes, nestedAbsmax: try floats(name + ".nested_absmax"), offset: offset)
            assertBitEqual(theirs.dequantized(), try floats(name + ".absmax_dequantized"), "\(name) absmax dequantised")
            let q = NF4Matrix(rows: single.rows, cols: single.cols, packed: single.packed, compressedAbsmax: theirs)
            assertBitEqual(q.dequantized().storage, try matrix(name + ".dequantized").storage, "\(name) dequantised")
            // Our own offset and nearest codes change the result by far less than the quantisation error (0.09).
            let own = NF4Matrix(quantizing: input, doubleQuant: true)
            assertRelativeClose(own.dequantized(), try matrix(name + ".dequantized"), tolerance: 1e-3, name)
        }
    }

    func testFixtureReadsBackThroughTheLinear4bitLayout() throws {
        for name in caseNames {
            let q = try XCTUnwrap(try NF4Tensors.read(name, from: file), name)
            let expected = try matrix(name + ".input")
            XCTAssertEqual(q.shape, expected.shape, name)
            XCTAssertEqual(q.compressedAbsmax != nil, isDouble(name), name)
            assertBitEqual(q.dequantized().storage, try matrix(name + ".dequantized").storage, "\(name) read back")
            XCTAssertEqual(try NF4Tensors.originalDType(name, in: file), "float32")
        }
        XCTAssertNil(try NF4Tensors.read("gaussian_8x64.input", from: file), "a plain tensor is not NF4")
    }

    func testRoundTripErrorOnGaussianWeights() throws {
        var rng = SeededGenerator(seed: 7)
        let w = Matrix.gaussian(rows: 256, cols: 576, std: 0.02, using: &rng)
        let error = NF4Matrix(quantizing: w).dequantized().relativeDifference(to: w)
        XCTAssertGreaterThan(error, 0.085)
        XCTAssertLessThan(error, 0.100)
        let real = try matrix("smollm2_blk0_ffn_gate_64x576.input")
        let realError = NF4Matrix(quantizing: real).dequantized().relativeDifference(to: real)
        XCTAssertEqual(realError, 0.093, accuracy: 0.005)
    }
}
