@testable import Formats
import Foundation
import XCTest

/// The GGUF writer's files read back through `GGUFFile` (every metadata type, alignment, F32
/// tensors), and what a reader would refuse is refused before writing.
final class GGUFWriterTests: XCTestCase {
    func testEveryValueTypeAndTensorReadsBack() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("writer-\(UUID().uuidString).gguf")
        defer { try? FileManager.default.removeItem(at: url) }
        let metadata: [(key: String, value: GGUFValue)] = [
            ("general.architecture", .string("llama")), ("u8", .uint8(7)), ("i8", .int8(-7)), ("u16", .uint16(65000)),
            ("i16", .int16(-300)), ("u32", .uint32(4_000_000_000)), ("i32", .int32(-5)), ("u64", .uint64(1 << 40)),
            ("i64", .int64(-(1 << 40))), ("f32", .float32(0.25)), ("f64", .float64(-1.5)), ("b", .bool(true)),
            ("s", .string("naïve ✓")), ("ints", .array(.int32([1, -2, 3]))), ("strings", .array(.string(["a", "", "ç"]))),
            ("nested", .array(.array([.uint8([1, 2]), .float32([0.5])]))),
        ]
        let tensors = [
            GGUFWriter.Tensor(name: "blk.0.attn_q.weight.lora_a", dimensions: [5, 3], values: (0..<15).map { Float($0) / 4 }),
            GGUFWriter.Tensor(name: "odd", dimensions: [3], values: [1, -2, 3]),
            GGUFWriter.Tensor(name: "blk.0.attn_q.weight.lora_b", dimensions: [3, 2], values: [-1, 2, -3, 4, -5, 6]),
        ]
        try GGUFWriter.write(to: url, metadata: metadata, tensors: tensors)
        let file = try GGUFFile(url: url)
        XCTAssertEqual(file.version, 3)
        XCTAssertEqual(file.metadataKeys, metadata.map(\.key))
        for (key, value) in metadata { XCTAssertEqual(file.metadata[key], value, key) }
        XCTAssertEqual(file.alignment, 32)
        XCTAssertEqual(file.dataOffset % 32, 0)
        for t in tensors {
            let info = try XCTUnwrap(file.info(t.name))
            XCTAssertEqual(info.dimensions, t.dimensions)
            XCTAssertEqual(info.type, .f32)
            XCTAssertEqual(info.offset % 32, 0, "every tensor starts aligned")
            XCTAssertEqual(try file.floats(info), t.values)
        }
    }

    func testCustomAlignmentIsHonoured() throws {
        let data = try GGUFWriter.encode(metadata: [("general.alignment", .uint32(64))],
                                         tensors: [.init(name: "a", dimensions: [3], values: [1, 2, 3]), .init(name: "b", dimensions: [1], values: [4])])
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("writer-\(UUID().uuidString).gguf")
        defer { try? FileManager.default.removeItem(at: url) }
        try data.write(to: url)
        let file = try GGUFFile(url: url)
        XCTAssertEqual(file.alignment, 64)
        XCTAssertEqual(file.info("b")?.offset, 64)
        XCTAssertEqual(try file.floats(named: "b"), [4])
    }

    func testInvalidInputIsRefused() {
        XCTAssertThrowsError(try GGUFWriter.encode(metadata: [("k", .bool(true)), ("k", .bool(false))], tensors: [])) {
            XCTAssertEqual($0 as? GGUFError, .duplicateKey(path: "<memory>", key: "k"))
        }
        XCTAssertThrowsError(try GGUFWriter.encode(metadata: [], tensors: [.init(name: "t", dimensions: [2], values: [1]), ])) {
            guard case .shapeOverflow? = $0 as? GGUFError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try GGUFWriter.encode(metadata: [], tensors: [.init(name: "t", dimensions: [1], values: [1]),
                                                                          .init(name: "t", dimensions: [1], values: [1])])) {
            XCTAssertEqual($0 as? GGUFError, .duplicateTensor(path: "<memory>", tensor: "t"))
        }
    }
}
