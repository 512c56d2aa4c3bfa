import Formats
import Foundation
import TestSupport
import XCTest

/// Every malformed file of `Malformed/gguf/` (scripts/reference/make_gguf_fixtures.py) is refused
/// with a specific `GGUFError` whose message names the file; cut and corrupted copies of a valid
/// file are refused (or read) without crashing.
final class GGUFMalformedTests: XCTestCase {
    private static let arch = "general.architecture"
    private static let stringLimit = UInt64(GGUFLimits.maximumStringLength)

    /// File name (without `.gguf`) → the error expected, given the file's path.
    private let expectations: [String: (String) -> GGUFError] = [
        "empty": { .truncated(path: $0, offset: 0, needed: 4, fileSize: 0, context: "the magic number") },
        "bad_magic": { .badMagic(path: $0, found: [0x47, 0x47, 0x4D, 0x4C]) },
        "version_1": { .unsupportedVersion(path: $0, version: 1) },
        "version_big_endian": { .unsupportedVersion(path: $0, version: 0x0300_0000) },
        "truncated_magic": { .truncated(path: $0, offset: 0, needed: 4, fileSize: 2, context: "the magic number") },
        "truncated_counts": { .truncated(path: $0, offset: 8, needed: 8, fileSize: 12, context: "the tensor count") },
        "truncated_key": { .truncated(path: $0, offset: 32, needed: 20, fileSize: 47, context: "the key of metadata entry 0") },
        "truncated_value": { .truncated(path: $0, offset: 39, needed: 4, fileSize: 41, context: "the value of 'a.b'") },
        "truncated_array": {
            .truncated(path: $0, offset: 49, needed: 16, fileSize: 57,
                       context: "4 uint32 elements of array 'a' (at least 4 bytes each)")
        },
        "truncated_string_element": {
            .truncated(path: $0, offset: 69, needed: 100, fileSize: 74, context: "element 1 of array 'tok'")
        },
        "truncated_tensor_info": {
            .truncated(path: $0, offset: 90, needed: 8, fileSize: 90, context: "dimension 1 of tensor 'w'")
        },
        "truncated_data": { .dataOutOfRange(path: $0, tensor: "w", offset: 0, byteCount: 32, dataSize: 20) },
        "string_length_huge": {
            .stringTooLong(path: $0, context: "the value of 'general.name'", length: 1 << 63, limit: stringLimit)
        },
        "key_length_huge": {
            .stringTooLong(path: $0, context: "the key of metadata entry 0", length: 1 << 63, limit: 65_535)
        },
        "array_count_negative": {
            .countTooLarge(path: $0, what: "the length of array 'a'", count: .max, limit: UInt64(GGUFLimits.maximumArrayCount))
        },
        "array_count_beyond_file": {
            .truncated(path: $0, offset: 49, needed: 8000, fileSize: 57,
                       context: "1000 uint64 elements of array 'a' (at least 8 bytes each)")
        },
        "tensor_count_huge": {
            .countTooLarge(path: $0, what: "the tensor count", count: 1 << 63, limit: UInt64(GGUFLimits.maximumTensorCount))
        },
        "kv_count_beyond_file": {
            .truncated(path: $0, offset: 24, needed: 13000, fileSize: 69,
                       context: "1000 metadata entries (at least 13 bytes each)")
        },
        "unknown_value_type": { .unknownValueType(path: $0, key: "a", type: 13) },
        "unknown_array_type": { .unknownValueType(path: $0, key: "a", type: 99) },
        "nesting_too_deep": { .nestingTooDeep(path: $0, key: "deep", limit: 4) },
        "bool_invalid": { .invalidValue(path: $0, key: "flag", problem: "bool byte is 2, not 0 or 1") },
        "duplicate_key": { .duplicateKey(path: $0, key: arch) },
        "key_not_utf8": { .invalidUTF8(path: $0, context: "the key of metadata entry 0") },
        "string_not_utf8": { .invalidUTF8(path: $0, context: "the value of 'general.name'") },
        "alignment_not_power_of_two": { .invalidAlignment(path: $0, problem: "is 48, not a power of two") },
        "alignment_zero": { .invalidAlignment(path: $0, problem: "is 0, not a power of two") },
        "alignment_wrong_type": { .invalidAlignment(path: $0, problem: "is a uint64, expected uint32") },
        "dims_count_9": { .tooManyDimensions(path: $0, tensor: "w", count: 9, limit: 4) },
        "element_count_overflow": { .shapeOverflow(path: $0, tensor: "w", dimensions: [1 << 32, 1 << 32]) },
        "byte_size_overflow": { .shapeOverflow(path: $0, tensor: "w", dimensions: [1 << 62]) },
        "dimension_too_large": { .shapeOverflow(path: $0, tensor: "w", dimensions: [1 << 63]) },
        "unknown_tensor_type": { .unknownTensorType(path: $0, tensor: "w", type: 200) },
        "retired_tensor_type": { .unknownTensorType(path: $0, tensor: "w", type: 4) },
        "block_size_mismatch": { .blockSizeMismatch(path: $0, tensor: "w", type: .q4_1, innermost: 33, blockSize: 32) },
        "tensor_offset_past_eof": { .dataOutOfRange(path: $0, tensor: "w", offset: 1 << 40, byteCount: 32, dataSize: 32) },
        "tensor_offset_huge": { .dataOutOfRange(path: $0, tensor: "w", offset: .max - 31, byteCount: 32, dataSize: 32) },
        "misaligned_offset": { .misalignedOffset(path: $0, tensor: "w", offset: 8, alignment: 32) },
        "duplicate_tensor_name": { .duplicateTensor(path: $0, tensor: "w") },
        "overlapping_tensors": { .overlappingTensors(path: $0, first: "a", second: "b") },
        "tensor_name_not_utf8": { .invalidUTF8(path: $0, context: "the name of tensor info 0") },
    ]

    func testEveryMalformedFileIsRejectedSpecifically() throws {
        let folder = try ggufFixture("")
        let fixtures = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.hasSuffix(".gguf") && !$0.hasPrefix("reference_") }
            .map { String($0.dropLast(".gguf".count)) }
        XCTAssertEqual(Set(fixtures), Set(expectations.keys), "every fixture has an expectation and vice versa")
        for name in fixtures.sorted() {
            let url = folder.appendingPathComponent(name + ".gguf")
            guard let error = expectGGUFError({ try GGUFFile(url: url) }) else { continue }
            if let expected = expectations[name]?(url.path) {
                XCTAssertEqual(error, expected, name)
            }
            XCTAssertTrue(error.description.hasPrefix(url.path + ": "), "\(name): message does not name the file: \(error)")
        }
    }

    /// The message shapes promised to users.
    func testMessagesReadWell() throws {
        func message(_ name: String) throws -> (String, String?) {
            let url = try ggufFixture(name + ".gguf")
            return (url.path, expectGGUFError { try GGUFFile(url: url) }?.description)
        }
        var (path, text) = try message("array_count_negative")
        XCTAssertEqual(text, "\(path): the length of array 'a' is 18446744073709551615, more than the limit of 67108864")
        (path, text) = try message("truncated_string_element")
        XCTAssertEqual(text, "\(path): file ends while reading element 1 of array 'tok': needs 100 bytes at offset 69, the file has 74")
        (path, text) = try message("version_1")
        XCTAssertEqual(text?.hasPrefix("\(path): GGUF version 1: version 1 (32-bit counts, 2023) is not supported"), true)
        (path, text) = try message("version_big_endian")
        XCTAssertEqual(text, "\(path): GGUF version 50331648: this looks like a big-endian file, which is not supported")
        (path, text) = try message("bad_magic")
        XCTAssertEqual(text, "\(path): not a GGUF file (magic bytes 47 47 4D 4C, expected 47 47 55 46 \"GGUF\")")
        (path, text) = try message("tensor_offset_huge")
        XCTAssertEqual(text, "\(path): tensor 'w' data [18446744073709551584, 2^64+) runs past the end of the 32-byte data section")
        (path, text) = try message("block_size_mismatch")
        XCTAssertEqual(text, "\(path): tensor 'w' is Q4_1 (blocks of 32) but its innermost dimension 33 is not a multiple of 32")
    }

    func testNotAFile() throws {
        let directory = try makeScratchDirectory("FormatsTests")
        let missing = directory.appendingPathComponent("missing.gguf")
        XCTAssertEqual(expectGGUFError { try GGUFFile(url: missing) },
                       .io(path: missing.path, operation: "open for reading", errno: ENOENT))
        XCTAssertEqual(expectGGUFError { try GGUFFile(url: directory) },
                       .io(path: directory.path, operation: "read as a GGUF file", errno: EISDIR))
    }

    /// Every prefix of a valid file that cuts into its header or tensor data is refused as
    /// truncated (or, cut in the data, as a tensor running past the end).
    func testEveryTruncationIsRefused() throws {
        let source = try ggufFixture("reference_v3.gguf")
        let bytes = try Data(contentsOf: source)
        let file = try GGUFFile(url: source)
        let dataEnd = file.dataOffset + file.tensors.map(\.dataRange.upperBound).max()!
        let url = try makeScratchDirectory("FormatsTests").appendingPathComponent("cut.gguf")
        try bytes.write(to: url)
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        let lengths = Array(0..<file.dataOffset) + Array(stride(from: file.dataOffset, to: dataEnd, by: 7))
        for length in lengths.reversed() {  // cutting shorter and shorter: no data rewritten
            try handle.truncate(atOffset: UInt64(length))
            guard let error = expectGGUFError({ try GGUFFile(url: url) }) else { continue }
            switch error {
            case .truncated(url.path, _, _, length, _), .dataOutOfRange(url.path, _, _, _, _): break
            default: XCTFail("prefix of \(length) bytes: unexpected \(error)")
            }
        }
        try bytes.prefix(dataEnd).write(to: url)
        XCTAssertEqual(try GGUFFile(url: url).tensors.count, file.tensors.count, "the last tensor's padding is optional")
    }

    /// Random corruption of the header (seeded): every copy is refused with a GGUFError or read,
    /// and a copy that is read dequantises without trapping.
    func testCorruptedHeadersNeverCrash() throws {
        let source = try ggufFixture("reference_v3.gguf")
        let original = [UInt8](try Data(contentsOf: source))
        let headerEnd = try GGUFFile(url: source).dataOffset
        let url = try makeScratchDirectory("FormatsTests").appendingPathComponent("corrupt.gguf")
        try Data(original).write(to: url)
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        var noise = pseudoRandomBytes(count: 8 * 800, seed: 7)[...]
        var refused = 0
        for round in 0..<800 {
            var changed: [Int] = []
            for _ in 0..<(Int(noise.removeFirst() % 3) + 1) {
                let position = (Int(noise.removeFirst()) << 8 | round) % headerEnd
                try handle.seek(toOffset: UInt64(position))
                try handle.write(contentsOf: [noise.removeFirst()])
                changed.append(position)
            }
            do {
                let file = try GGUFFile(url: url)
                for info in file.tensors where info.type.isDequantizable { _ = try file.floats(info) }
            } catch {
                refused += 1
            }
            for position in changed {  // restore
                try handle.seek(toOffset: UInt64(position))
                try handle.write(contentsOf: [original[position]])
            }
        }
        XCTAssertGreaterThan(refused, 100, "the corruption should hit structure often")
    }
}
