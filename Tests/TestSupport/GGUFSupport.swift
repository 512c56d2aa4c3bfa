import Formats
import Foundation
import TestSupport
import XCTest

/// The GGUF fixtures (scripts/reference/make_gguf_fixtures.py), in
/// `Tests/FormatsTests/Malformed/gguf/` (read from the source tree, so other test targets share them).
public func ggufFixture(_ name: String) throws -> URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("FormatsTests/Malformed/gguf").appendingPathComponent(name)
}

/// An optional asset of the cache that scripts/assets/fetch.sh does not make (so a missing one
/// always skips, even where assets are required): `hint` says how to make it.
public func optionalAsset(_ relativePath: String, hint: String) throws -> URL {
    let url = Assets.cache.appendingPathComponent(relativePath)
    guard FileManager.default.fileExists(atPath: url.path) else { throw XCTSkip("\(url.path) is missing: \(hint)") }
    return url
}

/// Asserts that `body` throws a `GGUFError` and returns it (nil, after failing, otherwise).
@discardableResult
public func expectGGUFError<T>(_ body: () throws -> T, file: StaticString = #filePath, line: UInt = #line) -> GGUFError? {
    do {
        _ = try body()
        XCTFail("expected a GGUFError, nothing was thrown", file: file, line: line)
    } catch let error as GGUFError {
        return error
    } catch {
        XCTFail("expected a GGUFError, got \(error)", file: file, line: line)
    }
    return nil
}

/// Compares values element by element: equal bit for bit, or within `relative` of the expected
/// magnitude. Prints the first mismatches and the largest relative error on failure.
public func assertValuesEqual(
    _ observed: [Float], _ expected: [Float], relative: Float = 1e-6, _ label: String,
    file: StaticString = #filePath, line: UInt = #line
) {
    guard observed.count == expected.count else {
        XCTFail("\(label): \(observed.count) values, expected \(expected.count)", file: file, line: line)
        return
    }
    var mismatches: [String] = []
    var worst: Float = 0
    for i in observed.indices where observed[i].bitPattern != expected[i].bitPattern {
        let error = abs(observed[i] - expected[i]) / max(abs(expected[i]), .leastNormalMagnitude)
        worst = max(worst, error.isNaN ? .infinity : error)
        if !(error <= relative), mismatches.count < 5 {
            mismatches.append("  [\(i)] observed \(observed[i]) expected \(expected[i]) (relative error \(error))")
        }
    }
    if !mismatches.isEmpty {
        XCTFail("\(label): values differ, worst relative error \(worst)\n" + mismatches.joined(separator: "\n"),
                file: file, line: line)
    }
}
