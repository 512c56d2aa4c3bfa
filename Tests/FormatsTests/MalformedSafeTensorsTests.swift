import Formats
import Foundation
import TestSupport
import XCTest

/// Every file in `Malformed/` (made by scripts/reference/make_malformed_safetensors.py) is
/// rejected with a specific error whose message names the file.
final class MalformedSafeTensorsTests: XCTestCase {
    /// File name (without extension) → check of the error, given the file's path.
    private let expectations: [String: (SafeTensorsError, String) -> Bool] = [
        "truncated": { $0 == .fileTooShort(path: $1, size: 5) },
        "header_length_zero": { $0 == .emptyHeader(path: $1) },
        "header_length_past_end": { $0 == .headerLengthExceedsFile(path: $1, headerLength: .max, fileSize: 16) },
        "header_length_beyond_data": { $0 == .headerLengthExceedsFile(path: $1, headerLength: 1000, fileSize: 32) },
        "header_not_utf8": { $0 == .headerNotUTF8(path: $1) },
        "header_bad_json": { if case .headerNotJSON($1, _) = $0 { true } else { false } },
        "header_not_object": { $0 == .headerNotObject(path: $1) },
        "metadata_not_strings": { if case let .invalidMetadata($1, problem) = $0 { problem.contains("'step' is 1") } else { false } },
        "metadata_not_object": { if case .invalidMetadata($1, _) = $0 { true } else { false } },
        "entry_not_object": { if case .malformedEntry($1, "a", _) = $0 { true } else { false } },
        "dtype_missing": { if case let .malformedEntry($1, "a", problem) = $0 { problem.contains("dtype") } else { false } },
        "dtype_unknown": { $0 == .unknownDType(path: $1, tensor: "a", dtype: "Q4_K") },
        "shape_negative": { if case let .malformedEntry($1, "a", problem) = $0 { problem.contains("[-1, 4]") } else { false } },
        "shape_fractional": { if case let .malformedEntry($1, "a", problem) = $0 { problem.contains("shape") } else { false } },
        "shape_bool": { if case let .malformedEntry($1, "a", problem) = $0 { problem.contains("shape") } else { false } },
        "shape_overflow": { $0 == .shapeOverflow(path: $1, tensor: "a", shape: [1 << 32, 1 << 32, 4]) },
        "shape_bytes_overflow": { $0 == .shapeOverflow(path: $1, tensor: "a", shape: [1 << 61]) },
        "offsets_negative": { if case let .invalidOffsets($1, "a", problem) = $0 { problem.contains("-8") } else { false } },
        "offsets_huge_float": { if case .invalidOffsets($1, "a", _) = $0 { true } else { false } },
        "offsets_huge_int": { if case .invalidOffsets($1, "a", _) = $0 { true } else { false } },
        "offsets_reversed": { if case let .invalidOffsets($1, "a", problem) = $0 { problem.contains("[8, 0]") } else { false } },
        "offsets_three": { if case .invalidOffsets($1, "a", _) = $0 { true } else { false } },
        "shape_size_mismatch": { $0 == .byteSizeMismatch(path: $1, tensor: "a.weight", shape: [3, 4], dtype: .f32, span: 40) },
        "span_out_of_range": { $0 == .spanOutOfRange(path: $1, tensor: "a", begin: 0, end: 16, dataSize: 8) },
        "overlapping": { $0 == .overlappingTensors(path: $1, first: "a", firstSpan: 0..<8, second: "b", secondSpan: 4..<12) },
        "gap": { $0 == .gapInData(path: $1, gap: 4..<8, after: "a", before: "b") },
        "trailing_bytes": { $0 == .gapInData(path: $1, gap: 4..<8, after: "a", before: nil) },
    ]

    func testEveryMalformedFileIsRejectedSpecifically() throws {
        let folder = try fixtureURL("")
        let fixtures = try directoryListing(folder)
            .filter { $0.hasSuffix(".safetensors") && !$0.hasPrefix("reference_") }
            .map { String($0.dropLast(".safetensors".count)) }
        XCTAssertEqual(Set(fixtures), Set(expectations.keys), "every fixture has an expectation and vice versa")
        for name in fixtures.sorted() {
            let url = folder.appendingPathComponent(name + ".safetensors")
            guard let error = expectSafeTensorsError({ try SafeTensorsFile(url: url) }) else { continue }
            XCTAssertTrue(expectations[name]?(error, url.path) ?? false, "\(name): unexpected \(error)")
            XCTAssertTrue(error.description.hasPrefix(url.path + ": ") || error.description.contains(name + ".safetensors"),
                          "\(name): message does not name the file: \(error)")
        }
    }

    /// The message shape promised to users, on the file that triggers it.
    func testMessagesReadWell() throws {
        let mismatch = try fixtureURL("shape_size_mismatch.safetensors")
        XCTAssertEqual(expectSafeTensorsError { try SafeTensorsFile(url: mismatch) }?.description,
                       "\(mismatch.path): tensor 'a.weight' shape [3, 4] × F32 = 48 bytes but data_offsets span 40 bytes")
        let pastEnd = try fixtureURL("header_length_past_end.safetensors")
        XCTAssertEqual(expectSafeTensorsError { try SafeTensorsFile(url: pastEnd) }?.description,
                       "\(pastEnd.path): header length 18446744073709551615 exceeds file size 16")
        let gap = try fixtureURL("gap.safetensors")
        XCTAssertEqual(expectSafeTensorsError { try SafeTensorsFile(url: gap) }?.description,
                       "\(gap.path): data bytes [4, 8) between tensors 'a' and 'b' belong to no tensor"
                           + " (the data section must be covered contiguously)")
    }

    /// A header length within the file but over the 100 MB cap (sparse file: no disk used).
    func testHeaderOverLimitIsRejected() throws {
        let url = try makeScratchDirectory("FormatsTests").appendingPathComponent("huge.safetensors")
        let length = 100_000_008
        var prefix = Data()
        withUnsafeBytes(of: UInt64(length).littleEndian) { prefix.append(contentsOf: $0) }
        try prefix.write(to: url)
        let handle = try FileHandle(forWritingTo: url)
        try handle.truncate(atOffset: UInt64(8 + length))
        try handle.close()
        XCTAssertEqual(expectSafeTensorsError { try SafeTensorsFile(url: url) },
                       .headerTooLarge(path: url.path, headerLength: length, limit: 100_000_000))
    }

    func testMissingFileAndDirectory() throws {
        let directory = try makeScratchDirectory("FormatsTests")
        let missing = directory.appendingPathComponent("absent.safetensors")
        XCTAssertEqual(expectSafeTensorsError { try SafeTensorsFile(url: missing) },
                       .io(path: missing.path, operation: "open for reading", errno: ENOENT))
        let error = expectSafeTensorsError { try SafeTensorsFile(url: directory) }
        guard case let .io(path, _, code)? = error else { return XCTFail("\(String(describing: error))") }
        XCTAssertEqual(path, directory.path)
        XCTAssertEqual(code, EISDIR)
    }

    func testEmptyFile() throws {
        let url = try makeScratchDirectory("FormatsTests").appendingPathComponent("empty.safetensors")
        try Data().write(to: url)
        XCTAssertEqual(expectSafeTensorsError { try SafeTensorsFile(url: url) }, .fileTooShort(path: url.path, size: 0))
    }

    /// Deeply nested JSON is refused by the decoder, not a stack overflow.
    func testDeepNestingIsRejected() throws {
        let url = try makeScratchDirectory("FormatsTests").appendingPathComponent("deep.safetensors")
        var header = Data("{\"a\":".utf8) + Data(repeating: UInt8(ascii: "["), count: 100_000)
            + Data(repeating: UInt8(ascii: "]"), count: 100_000) + Data("}".utf8)
        header += Data(repeating: UInt8(ascii: " "), count: (8 - header.count % 8) % 8)
        var file = Data()
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { file.append(contentsOf: $0) }
        try (file + header).write(to: url)
        let error = expectSafeTensorsError { try SafeTensorsFile(url: url) }
        XCTAssertNotNil(error)
    }
}
