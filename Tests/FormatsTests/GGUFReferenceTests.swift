import Formats
import Foundation
import TestSupport
import XCTest

/// The valid fixtures of `Malformed/gguf/` (scripts/reference/make_gguf_fixtures.py):
/// reference_v3.gguf written by gguf-py's GGUFWriter and reference_v2.gguf built byte by byte.
/// reference_expected.json says what gguf-py's GGUFReader finds in them, reference_values.f32
/// holds gguf-py's `dequantize` of every tensor.
final class GGUFReferenceTests: XCTestCase {
    private struct ExpectedTensor: Decodable {
        var name: String
        var type: String
        var dimensions: [Int]
        var offset: Int
        var values_offset: Int?
        var count: Int?
    }

    private struct ExpectedFile: Decodable {
        var version: UInt32
        var alignment: Int
        var data_offset: Int
        var tensors: [ExpectedTensor]
    }

    private func expectations() throws -> (files: [String: ExpectedFile], values: [Float]) {
        let files = try JSONDecoder().decode(
            [String: ExpectedFile].self, from: Data(contentsOf: try ggufFixture("reference_expected.json")))
        let bytes = try Data(contentsOf: try ggufFixture("reference_values.f32"))
        let values = bytes.withUnsafeBytes { raw in
            (0..<(raw.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
        }
        return (files, values)
    }

    /// Header, alignment, data offset and every tensor info agree with gguf-py's reader.
    func testTensorInfosMatchGGUFPy() throws {
        let (files, _) = try expectations()
        XCTAssertEqual(Set(files.keys), ["reference_v3.gguf", "reference_v2.gguf"])
        for (name, expected) in files {
            let file = try GGUFFile(url: try ggufFixture(name))
            XCTAssertEqual(file.version, expected.version, name)
            XCTAssertEqual(file.alignment, expected.alignment, name)
            XCTAssertEqual(file.dataOffset, expected.data_offset, name)
            XCTAssertEqual(file.tensors.map(\.name), expected.tensors.map(\.name), name)
            for (info, want) in zip(file.tensors, expected.tensors) {
                XCTAssertEqual(info.type.name, want.type, "\(name): \(info.name)")
                XCTAssertEqual(info.dimensions, want.dimensions, "\(name): \(info.name)")
                XCTAssertEqual(info.shape, want.dimensions.reversed(), "\(name): \(info.name)")
                XCTAssertEqual(info.offset, want.offset, "\(name): \(info.name)")
                XCTAssertEqual(info.offset % file.alignment, 0)
                XCTAssertEqual(file.rawBytes(info).count, info.byteCount)
                XCTAssertEqual(info.byteCount, info.elementCount / info.type.blockSize * info.type.typeSize)
                XCTAssertEqual(file.info(info.name), info)
            }
        }
    }

    /// F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K: bit for bit gguf-py's values.
    func testEveryTypeDequantisesLikeGGUFPy() throws {
        let (files, values) = try expectations()
        var types = Set<String>()
        for (name, expected) in files {
            let file = try GGUFFile(url: try ggufFixture(name))
            for want in expected.tensors {
                let info = try XCTUnwrap(file.info(want.name))
                guard let start = want.values_offset, let count = want.count else { continue }
                types.insert(want.type)
                let reference = Array(values[start..<(start + count)])
                let observed = try file.floats(info)
                assertValuesEqual(observed, reference, relative: 0, "\(name): \(want.name) (\(want.type))")
                // The single-threaded public kernel gives the same.
                var direct = [Float](repeating: .nan, count: count)
                if count > 0 {
                    info.type.dequantize(file.rawBytes(info).baseAddress!, into: &direct, count: count)
                }
                assertValuesEqual(direct, reference, relative: 0, "\(name): \(want.name) via GGMLType.dequantize")
            }
        }
        XCTAssertEqual(types, ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"])
    }

    /// A type it cannot dequantise is refused with the tensor and type named; lookups by name.
    func testUnsupportedTypeAndLookups() throws {
        let url = try ggufFixture("reference_v3.gguf")
        let file = try GGUFFile(url: url)
        let q2 = try XCTUnwrap(file.info("q2_k"))
        XCTAssertEqual(q2.type, .q2_K)
        XCTAssertEqual(q2.dimensions, [512, 2])
        let error = expectGGUFError { try file.floats(q2) }
        XCTAssertEqual(error, .unsupportedTensorType(path: url.path, tensor: "q2_k", type: .q2_K))
        XCTAssertEqual(error?.description.hasPrefix("\(url.path): tensor 'q2_k' is Q2_K, which cannot be dequantised"), true)
        XCTAssertEqual(expectGGUFError { try file.floats(named: "nope") }, .tensorNotFound(path: url.path, tensor: "nope"))
        XCTAssertNil(file.info("nope"))
        XCTAssertEqual(try file.floats(named: "f32"), try file.floats(XCTUnwrap(file.info("f32"))))
        XCTAssertEqual(file.architecture, "llama")
    }

    /// Every value type gguf-py writes, with the accessors.
    func testMetadataOfEveryType() throws {
        let file = try GGUFFile(url: try ggufFixture("reference_v3.gguf"))
        let m = file.metadata
        let expected: [String: GGUFValue] = [
            "general.architecture": .string("llama"),
            "general.name": .string("GGUF reader fixture"),
            "test.uint8": .uint8(200), "test.int8": .int8(-100),
            "test.uint16": .uint16(60000), "test.int16": .int16(-30000),
            "test.uint32": .uint32(4_000_000_000), "test.int32": .int32(-2_000_000_000),
            "test.float32": .float32(0.1), "test.uint64": .uint64(.max), "test.int64": .int64(.min),
            "test.float64": .float64(-1.0e300), "test.bool_true": .bool(true), "test.bool_false": .bool(false),
            "test.string": .string("héllo, 世界 🦙"),
            "test.array.uint8": .array(.uint8([0, 1, 255])),
            "test.array.int8": .array(.int8([-128, 0, 127])),
            "test.array.uint16": .array(.uint16([0, 65535])),
            "test.array.int16": .array(.int16([-32768, 32767])),
            "test.array.uint32": .array(.uint32([0, .max])),
            "test.array.int32": .array(.int32([.min, .max])),
            "test.array.uint64": .array(.uint64([0, .max])),
            "test.array.int64": .array(.int64([.min, .max])),
            "test.array.float32": .array(.float32([1.5, -0.25, 3.0e38])),
            "test.array.float64": .array(.float64([1.0e-300, -2.5])),
            "test.array.bool": .array(.bool([true, false, true])),
            "test.array.string": .array(.string(["a", "", "ü", "<|im_start|>"])),
            "test.array.nested_int": .array(.array([.int32([1, 2]), .int32([3]), .int32([4, 5, 6])])),
            "test.array.nested_string": .array(.array([.string(["x", "y"]), .string(["z"])])),
        ]
        XCTAssertEqual(Set(m.keys), Set(expected.keys))
        for (key, value) in expected { XCTAssertEqual(m[key], value, key) }
        XCTAssertEqual(file.metadataKeys.first, "general.architecture")
        XCTAssertEqual(file.metadataKeys.last, "general.name")
        XCTAssertEqual(file.metadataKeys.count, expected.count)

        // Accessors convert only where nothing is lost.
        XCTAssertEqual(m["test.uint32"]?.int, 4_000_000_000)
        XCTAssertEqual(m["test.int64"]?.int, Int.min)
        XCTAssertNil(m["test.uint64"]?.int)
        XCTAssertNil(m["test.bool_true"]?.int)
        XCTAssertEqual(m["test.float32"]?.float, 0.1)
        XCTAssertEqual(m["test.float32"]?.double, Double(Float(0.1)))
        XCTAssertEqual(m["test.int8"]?.double, -100)
        XCTAssertNil(m["test.string"]?.double)
        XCTAssertEqual(m["test.bool_true"]?.bool, true)
        XCTAssertEqual(m["test.array.string"]?.stringArray, ["a", "", "ü", "<|im_start|>"])
        XCTAssertEqual(m["test.array.int16"]?.intArray, [-32768, 32767])
        XCTAssertNil(m["test.array.uint64"]?.intArray)
        XCTAssertNil(m["test.array.string"]?.intArray)
        XCTAssertEqual(m["test.array.float32"]?.floatArray, [1.5, -0.25, 3.0e38])
        XCTAssertEqual(m["test.array.float64"]?.doubleArray, [1.0e-300, -2.5])
        XCTAssertEqual(m["test.array.float64"]?.floatArray, [Float(1.0e-300), -2.5])
        XCTAssertEqual(m["test.array.nested_int"]?.array?.count, 3)
        XCTAssertEqual(m["test.array.nested_int"]?.array?[2], .array(.int32([4, 5, 6])))
        XCTAssertEqual(m["test.array.bool"]?.array?.values, [.bool(true), .bool(false), .bool(true)])
        XCTAssertEqual(m["test.array.uint8"]?.description, "[3 × uint8]")
        XCTAssertEqual(m["test.uint16"]?.description, "60000")
    }

    /// Version 2, general.alignment 64, empty array and string, arrays nested four deep,
    /// 1-D, 4-D and empty tensors.
    func testVersion2AlignmentNestingAndEdgeShapes() throws {
        let url = try ggufFixture("reference_v2.gguf")
        let file = try GGUFFile(url: url)
        XCTAssertEqual(file.version, 2)
        XCTAssertEqual(file.alignment, 64)
        XCTAssertEqual(file.dataOffset % 64, 0)
        XCTAssertEqual(file.metadata["general.alignment"], .uint32(64))
        XCTAssertEqual(file.metadata["test.empty_array"], .array(.float32([])))
        XCTAssertEqual(file.metadata["test.empty_array"]?.floatArray, [])
        XCTAssertEqual(file.metadata["test.empty_string"], .string(""))
        XCTAssertEqual(file.metadata["test.nested4"],
                       .array(.array([.array([.array([.int16([-1, 2])])]), .array([])])))
        XCTAssertEqual(try file.floats(named: "one_d"), [1.0, -2.0, 0.5, 3.25])
        let four = try XCTUnwrap(file.info("four_d"))
        XCTAssertEqual(four.shape, [2, 2, 2, 2])
        XCTAssertEqual(try file.floats(four), (0..<16).map { Float($0) / 8 })
        let empty = try XCTUnwrap(file.info("empty"))
        XCTAssertEqual(empty.elementCount, 0)
        XCTAssertEqual(empty.shape, [3, 0])
        XCTAssertEqual(try file.floats(empty), [])
        XCTAssertEqual(file.rawBytes(empty).count, 0)
        file.release(four)
        XCTAssertEqual(try file.floats(four), (0..<16).map { Float($0) / 8 }, "readable again after release")
    }

    /// The kernels on hand-made blocks whose values are known without gguf-py: ggml's formulas.
    func testHandMadeBlocks() throws {
        // Q4_1: d = 0.5, m = -1; byte j = (j+1)<<4 | j → value j = j·0.5 − 1, value j+16 = (j+1)·0.5 − 1.
        var q41: [UInt8] = []
        q41 += withUnsafeBytes(of: Float16(0.5).bitPattern.littleEndian, Array.init)
        q41 += withUnsafeBytes(of: Float16(-1).bitPattern.littleEndian, Array.init)
        q41 += (0..<16).map { UInt8(($0 + 1) % 16) << 4 | UInt8($0) }
        var out = [Float](repeating: 0, count: 32)
        GGMLType.q4_1.dequantize(q41, into: &out, count: 32)
        XCTAssertEqual(Array(out[0..<16]), (0..<16).map { Float($0) * 0.5 - 1 })
        XCTAssertEqual(Array(out[16..<32]), (0..<16).map { Float(($0 + 1) % 16) * 0.5 - 1 })

        // Q8_0: d = 0.25, q = −128…−97 → q / 4.
        var q80: [UInt8] = withUnsafeBytes(of: Float16(0.25).bitPattern.littleEndian, Array.init)
        q80 += (0..<32).map { UInt8(bitPattern: Int8(-128 + $0)) }
        GGMLType.q8_0.dequantize(q80, into: &out, count: 32)
        XCTAssertEqual(out, (0..<32).map { Float(-128 + $0) / 4 })

        // Q5_0: d = 1, qh bit j set for odd j → value j = (nibble | 16·bit) − 16.
        var q50: [UInt8] = withUnsafeBytes(of: Float16(1).bitPattern.littleEndian, Array.init)
        q50 += withUnsafeBytes(of: UInt32(0xAAAA_AAAA).littleEndian, Array.init)
        q50 += (0..<16).map { UInt8(15 - $0) << 4 | UInt8($0) }
        GGMLType.q5_0.dequantize(q50, into: &out, count: 32)
        for j in 0..<16 {
            XCTAssertEqual(out[j], Float(j + (j % 2) * 16 - 16), "Q5_0 value \(j)")
            XCTAssertEqual(out[j + 16], Float(15 - j + ((j + 16) % 2) * 16 - 16), "Q5_0 value \(j + 16)")
        }
    }
}
