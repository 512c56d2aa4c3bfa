import Foundation
import XCTest

/// The real model and data fetched by `scripts/assets/fetch.sh` (cache: `$PISSA_CACHE`, default
/// `<repo>/.cache/assets`). A missing asset skips the test, unless `PISSA_REQUIRE_ASSETS=1`
/// (set by `scripts/test.sh` and so by CI), where it fails: CI must never pass by skipping.
public enum Assets {
    public static var cache: URL {
        if let path = ProcessInfo.processInfo.environment["PISSA_CACHE"] { return URL(fileURLWithPath: path) }
        // Tests/TestSupport/Assets.swift → repository root.
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".cache/assets")
    }

    public static let miniLM = "all-MiniLM-L6-v2"
    public static let smolLM2GGUF = "SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
    public static let shakespeare = "shakespeare"
    public static let gemma3GGUF = "gemma3-270m/gemma-3-270m-q4_k_m.gguf"

    /// The asset's URL, or a skip (failure when assets are required) naming the fetch command.
    public static func require(_ relativePath: String, file: StaticString = #filePath, line: UInt = #line) throws -> URL {
        let url = cache.appendingPathComponent(relativePath)
        if FileManager.default.fileExists(atPath: url.path) { return url }
        let message = "\(url.path) is missing: run scripts/assets/fetch.sh"
        if ProcessInfo.processInfo.environment["PISSA_REQUIRE_ASSETS"] == "1" {
            XCTFail(message, file: file, line: line)
            throw XCTSkip(message)   // stops the test after recording the failure
        }
        throw XCTSkip(message)
    }
}
