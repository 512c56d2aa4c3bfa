import Formats
import Foundation
import LinearAlgebra
import TestSupport
import XCTest

/// Write-then-read through `SafeTensorsWriter` and `SafeTensorsFile`.
final class SafeTensorsRoundTripTests: XCTestCase {
    /// One tensor of every dtype (plus a scalar and an empty tensor): the bytes read back are
    /// the bytes written, and the header describes each tensor as laid out.
    func testEveryDTypeRoundTripsBytes() throws {
        let directory = try makeScratchDirectory("FormatsTests")
        let url = directory.appendingPathComponent("all.safetensors")
        var specs = DType.allCases.enumerated().map { index, dtype in
            TensorSpec(name: "t.\(dtype.rawValue)", dtype: dtype, shape: [index % 3 + 1, 3])
        }
        specs.append(TensorSpec(name: "scalar", dtype: .f64, shape: []))
        specs.append(TensorSpec(name: "empty", dtype: .bf16, shape: [4, 0]))
        let payloads = specs.enumerated().map { index, spec in
            pseudoRandomBytes(count: spec.shape.reduce(1, *) * spec.dtype.byteSize, seed: UInt64(index))
        }

        let writer = try SafeTensorsWriter(url: url, tensors: specs, metadata: ["format": "pt", "k": "v"])
        for (spec, payload) in zip(specs, payloads).reversed() {
            try payload.withUnsafeBytes { try writer.write(spec.name, bytes: $0) }
        }
        try writer.commit()

        let file = try SafeTensorsFile(url: url)
        XCTAssertEqual(file.metadata, ["format": "pt", "k": "v"])
        XCTAssertEqual(file.headerLength % 8, 0, "header padded to a multiple of 8")
        XCTAssertEqual(file.headerLength, writer.headerLength)
        XCTAssertEqual(file.tensors, writer.tensors, "layout in the given order, sorted by offset")
        for (spec, payload) in zip(specs, payloads) {
            let info = try XCTUnwrap(file.info(spec.name))
            XCTAssertEqual(info.dtype, spec.dtype)
            XCTAssertEqual(info.shape, spec.shape)
            XCTAssertEqual(info.elementCount, spec.shape.reduce(1, *))
            XCTAssertEqual(Array(file.rawBytes(info)), payload, spec.name)
        }
        XCTAssertEqual(file.info("scalar")?.elementCount, 1)
        XCTAssertEqual(file.info("empty")?.dataRange.count, 0)
        XCTAssertNil(file.info("missing"))
    }

    /// F32 round-trips exactly; F16 and BF16 store the nearest value (ties to even), which reads
    /// back as the value `HalfPrecision` rounds to.
    func testFloatConversionRoundTrip() throws {
        let directory = try makeScratchDirectory("FormatsTests")
        let url = directory.appendingPathComponent("floats.safetensors")
        let values: [Float] = [0, -0.0, 1, -2.5, 0.1, 3e-5, 65504, 70000, 1e-8, .infinity, -.infinity, 1.00390625, 3.14159265]
        let specs = [DType.f32, .f16, .bf16].map { TensorSpec(name: $0.rawValue, dtype: $0, shape: [values.count]) }
        try SafeTensorsWriter.write(url: url, tensors: specs.map { ($0, values) })

        let file = try SafeTensorsFile(url: url)
        let f32 = try file.floats(try XCTUnwrap(file.info("F32")))
        let f16 = try file.floats(try XCTUnwrap(file.info("F16")))
        let bf16 = try file.floats(try XCTUnwrap(file.info("BF16")))
        XCTAssertEqual(f32.map(\.bitPattern), values.map(\.bitPattern))
        XCTAssertEqual(f16.map(\.bitPattern), values.map { HalfPrecision.float(float16Bits: HalfPrecision.float16Bits($0)).bitPattern })
        XCTAssertEqual(bf16.map(\.bitPattern), values.map { HalfPrecision.float(bfloat16Bits: HalfPrecision.bfloat16Bits($0)).bitPattern })
        XCTAssertEqual(f16[6], 65504)
        XCTAssertEqual(f16[7], .infinity, "float16 overflow")
        XCTAssertEqual(bf16[11], 1, "1 + 2^-8 is a tie, rounds to even")
    }

    func testNaNSurvivesHalfPrecision() throws {
        let url = try makeScratchDirectory("FormatsTests").appendingPathComponent("nan.safetensors")
        let specs = [DType.f32, .f16, .bf16].map { TensorSpec(name: $0.rawValue, dtype: $0, shape: [1]) }
        try SafeTensorsWriter.write(url: url, tensors: specs.map { ($0, [Float.nan]) })
        let file = try SafeTensorsFile(url: url)
        for info in file.tensors {
            XCTAssertTrue(try file.floats(info)[0].isNaN, info.name)
        }
    }

    func testFloatsRejectsIntegerDTypes() throws {
        let url = try makeScratchDirectory("FormatsTests").appendingPathComponent("ints.safetensors")
        let writer = try SafeTensorsWriter(url: url, tensors: [TensorSpec(name: "ids", dtype: .i64, shape: [2])])
        let error = expectSafeTensorsError { try writer.write("ids", floats: [1, 2]) }
        XCTAssertEqual(error, .notFloatConvertible(path: url.path, tensor: "ids", dtype: .i64))
        try [Int64(7), -1].withUnsafeBytes { try writer.write("ids", bytes: $0) }
        try writer.commit()

        let file = try SafeTensorsFile(url: url)
        let info = try XCTUnwrap(file.info("ids"))
        XCTAssertEqual(expectSafeTensorsError { try file.floats(info) },
                       .notFloatConvertible(path: url.path, tensor: "ids", dtype: .i64))
        XCTAssertEqual(file.rawBytes(info).loadUnaligned(fromByteOffset: 8, as: Int64.self), -1)
    }

    /// Keys and values needing JSON escapes, and non-ASCII text, survive the header.
    func testMetadataAndNamesWithEscapes() throws {
        let url = try makeScratchDirectory("FormatsTests").appendingPathComponent("escapes.safetensors")
        let metadata = ["format": "pt", "quote\"back\\slash": "line\nbreak\ttab\u{01}", "ünï": "日本語 🎉", "": ""]
        let name = "layers.0.\"odd\"\\name\u{7F}"
        try SafeTensorsWriter.write(url: url, tensors: [(TensorSpec(name: name, dtype: .f32, shape: [1]), [2])],
                                    metadata: metadata)
        let file = try SafeTensorsFile(url: url)
        XCTAssertEqual(file.metadata, metadata)
        XCTAssertEqual(try file.floats(try XCTUnwrap(file.info(name))), [2])
    }

    func testEmptyMetadataAndNoTensors() throws {
        let url = try makeScratchDirectory("FormatsTests").appendingPathComponent("nothing.safetensors")
        try SafeTensorsWriter.write(url: url, tensors: [], metadata: [:])
        let file = try SafeTensorsFile(url: url)
        XCTAssertEqual(file.tensors, [])
        XCTAssertEqual(file.metadata, [:])
        XCTAssertEqual(file.fileSize, 8 + file.headerLength)
        XCTAssertEqual(try Data(contentsOf: url).dropFirst(8), Data("{}      ".utf8))
    }

    /// `release` drops pages but the data stays readable (re-read from the file).
    func testReleaseKeepsDataReadable() throws {
        let url = try makeScratchDirectory("FormatsTests").appendingPathComponent("big.safetensors")
        let values = (0..<300_000).map { Float($0) * 0.5 }
        let specs = (0..<3).map { TensorSpec(name: "w\($0)", dtype: .f32, shape: [1000, 300]) }
        try SafeTensorsWriter.write(url: url, tensors: specs.map { ($0, values) })
        let file = try SafeTensorsFile(url: url)
        for info in file.tensors {
            XCTAssertEqual(try file.floats(info), values)
            file.release(info)
        }
        for info in file.tensors {
            XCTAssertEqual(try file.floats(info), values, "readable again after release")
        }
    }
}
