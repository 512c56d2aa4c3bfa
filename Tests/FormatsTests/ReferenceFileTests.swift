import Formats
import Foundation
import TestSupport
import XCTest

/// Files written by the Python `safetensors` library (scripts/reference/make_malformed_safetensors.py)
/// read with the values recorded next to them, and re-written byte for byte by our writer.
final class ReferenceFileTests: XCTestCase {
    private struct Expected: Decodable {
        var headerLength: Int
        var fileSize: Int
        var metadata: [String: String]
        var tensors: [String: Tensor]
    }

    private struct Tensor: Decodable {
        var dtype: String
        var shape: [Int]
        var dataOffsets: [Int]
        var hex: String
        var floats: [Double]?
        var integers: [Int64]?
        var bools: [Bool]?
    }

    private func expectations() throws -> [String: Expected] {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode([String: Expected].self, from: Data(contentsOf: try fixtureURL("reference_expected.json")))
    }

    private static func hex(_ bytes: UnsafeRawBufferPointer) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    /// Integers of any integer dtype, widened to Int64 (U64 values above Int64.max wrap; the
    /// fixture has none, and the hex comparison covers the bytes anyway).
    private static func integers(_ bytes: UnsafeRawBufferPointer, _ dtype: DType) -> [Int64] {
        let count = bytes.count / dtype.byteSize
        return (0..<count).map { i in
            let at = i * dtype.byteSize
            switch dtype {
            case .i64: return bytes.loadUnaligned(fromByteOffset: at, as: Int64.self)
            case .u64: return Int64(truncatingIfNeeded: bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self))
            case .i32: return Int64(bytes.loadUnaligned(fromByteOffset: at, as: Int32.self))
            case .u32: return Int64(bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self))
            case .i16: return Int64(bytes.loadUnaligned(fromByteOffset: at, as: Int16.self))
            case .u16: return Int64(bytes.loadUnaligned(fromByteOffset: at, as: UInt16.self))
            case .i8: return Int64(bytes.load(fromByteOffset: at, as: Int8.self))
            default: return Int64(bytes[at])
            }
        }
    }

    func testReadsFilesWrittenByPythonLibrary() throws {
        let all = try expectations()
        XCTAssertEqual(all.count, 2)
        var dtypesSeen: Set<DType> = []
        for (fileName, expected) in all.sorted(by: { $0.key < $1.key }) {
            let file = try SafeTensorsFile(url: try fixtureURL(fileName))
            XCTAssertEqual(file.headerLength, expected.headerLength, fileName)
            XCTAssertEqual(file.fileSize, expected.fileSize, fileName)
            XCTAssertEqual(file.metadata, expected.metadata, fileName)
            XCTAssertEqual(Set(file.tensors.map(\.name)), Set(expected.tensors.keys), fileName)
            XCTAssertEqual(file.tensors.map(\.dataRange.lowerBound), file.tensors.map(\.dataRange.lowerBound).sorted())

            for (name, tensor) in expected.tensors {
                let label = "\(fileName) \(name)"
                let info = try XCTUnwrap(file.info(name), label)
                let dtype = try XCTUnwrap(DType(rawValue: tensor.dtype), label)
                dtypesSeen.insert(dtype)
                XCTAssertEqual(info.dtype, dtype, label)
                XCTAssertEqual(info.shape, tensor.shape, label)
                XCTAssertEqual([info.dataRange.lowerBound, info.dataRange.upperBound], tensor.dataOffsets, label)
                XCTAssertEqual(Self.hex(file.rawBytes(info)), tensor.hex, label)
                if let floats = tensor.floats {
                    let observed = try file.floats(info)
                    XCTAssertEqual(observed.map(\.bitPattern), floats.map { Float($0).bitPattern }, label)
                }
                if let integers = tensor.integers {
                    XCTAssertEqual(Self.integers(file.rawBytes(info), dtype), integers, label)
                }
                if let bools = tensor.bools {
                    XCTAssertEqual(file.rawBytes(info).map { $0 != 0 }, bools, label)
                }
            }
        }
        XCTAssertEqual(dtypesSeen, Set(DType.allCases), "the reference covers every dtype")
    }

    /// Same tensors, same order, same single metadata key: our writer produces the very bytes
    /// the Python library wrote (header JSON spelling, padding, layout).
    func testWriterMatchesPythonLibraryByteForByte() throws {
        let source = try fixtureURL("reference_torch.safetensors")
        let reference = try SafeTensorsFile(url: source)
        XCTAssertEqual(reference.metadata, ["format": "pt"])
        let url = try makeScratchDirectory("FormatsTests").appendingPathComponent("rewritten.safetensors")
        let specs = reference.tensors.map { TensorSpec(name: $0.name, dtype: $0.dtype, shape: $0.shape) }
        let writer = try SafeTensorsWriter(url: url, tensors: specs, metadata: reference.metadata)
        for info in reference.tensors {
            try writer.write(info.name, bytes: reference.rawBytes(info))
        }
        try writer.commit()
        XCTAssertEqual(try Data(contentsOf: url), try Data(contentsOf: source))
    }
}
