import Formats
import Foundation
import XCTest

/// Names of the entries of `directory` (hidden ones included), sorted.
func directoryListing(_ directory: URL) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
}

/// Deterministic bytes (SplitMix64), so failures reproduce.
func pseudoRandomBytes(count: Int, seed: UInt64) -> [UInt8] {
    var state = seed
    var bytes: [UInt8] = []
    bytes.reserveCapacity(count)
    while bytes.count < count {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        withUnsafeBytes(of: z) { bytes.append(contentsOf: $0.prefix(count - bytes.count)) }
    }
    return bytes
}

/// Asserts that `body` throws a `SafeTensorsError` and returns it (nil, after failing, otherwise).
@discardableResult
func expectSafeTensorsError<T>(
    _ body: () throws -> T, file: StaticString = #filePath, line: UInt = #line
) -> SafeTensorsError? {
    do {
        _ = try body()
        XCTFail("expected a SafeTensorsError, nothing was thrown", file: file, line: line)
    } catch let error as SafeTensorsError {
        return error
    } catch {
        XCTFail("expected a SafeTensorsError, got \(error)", file: file, line: line)
    }
    return nil
}

/// The fixture folder copied into the test bundle.
func fixtureURL(_ name: String) throws -> URL {
    let folder = try XCTUnwrap(Bundle.module.resourceURL).appendingPathComponent("Malformed")
    return folder.appendingPathComponent(name)
}
