import Foundation
import Synchronization
import TestSupport
import XCTest
@testable import Tokenizer

/// Encoding against Hugging Face `tokenizers` (Fixtures/tokenizer_cases.json).
final class EncodeTests: XCTestCase {
    func testTokenizerJSONIsSmolLM2() {
        let t = Fixtures.smolLM2
        XCTAssertEqual(t.preTokenizer, .smolLM)
        XCTAssertEqual(t.vocabularySize, 49152)
        XCTAssertEqual(t.id("<|im_start|>"), 1)
        XCTAssertEqual(t.id("<|im_end|>"), 2)
        XCTAssertEqual(t.token(216), "Ġ")
        XCTAssertEqual(t.id("Ġthe"), 260)
        XCTAssertNil(t.token(49152))
        XCTAssertTrue(t.isSpecial(0))
        XCTAssertFalse(t.isSpecial(17))
        // No tokenizer_config given: nothing in the post-processor, so no BOS / EOS.
        XCTAssertEqual(t.special, SpecialTokens())
    }

    func testIDsMatchHuggingFace() {
        let t = Fixtures.smolLM2
        for c in Fixtures.cases.encode {
            assertSameIDs(t.encode(c.text), c.ids_smollm, c.text.debugDescription)
        }
    }

    /// The GGUF route (`pre = smollm`) gives the same ids as the corrected tokenizer.json, and
    /// `.gpt2` gives what the converted tokenizer.json (no digit split) gives.
    func testGGUFArraysMatchHuggingFace() throws {
        let smol = try Fixtures.gguf(try PreTokenizer(ggufPre: "smollm"))
        let gpt2 = try Fixtures.gguf(.gpt2)
        for c in Fixtures.cases.encode {
            assertSameIDs(smol.encode(c.text), c.ids_smollm, "smollm " + c.text.debugDescription)
            assertSameIDs(gpt2.encode(c.text), c.ids_gpt2, "gpt2 " + c.text.debugDescription)
        }
        XCTAssertEqual(smol.encode("x\n\n1"), [104, 1116, 33])
        XCTAssertEqual(gpt2.encode("x\n\n1"), [104, 198, 198, 33])
    }

    func testDecodeRoundTrip() {
        let t = Fixtures.smolLM2
        for c in Fixtures.cases.encode {
            let decoded = t.decode(t.encode(c.text))
            XCTAssertEqual(decoded, c.decoded, c.text.debugDescription)
            if !Fixtures.dropsBytes(c.text) { XCTAssertEqual(decoded, c.text) }
            XCTAssertEqual(t.decode(c.ids_smollm, skipSpecialTokens: true), c.decoded_skip_special, c.text.debugDescription)
        }
    }

    func testAddSpecialTokensFollowsConfig() throws {
        let t = Fixtures.smolLM2
        XCTAssertEqual(t.encode("hi", addSpecialTokens: true), t.encode("hi"))
        let withBOS = try BPETokenizer(
            tokens: Fixtures.ggufArrays.tokens, merges: Fixtures.ggufArrays.merges, tokenTypes: Fixtures.ggufArrays.types,
            special: SpecialTokens(bos: 1, eos: 2, addBOS: true, addEOS: true), preTokenizer: .smolLM, chatTemplate: nil)
        XCTAssertEqual(withBOS.encode("hi", addSpecialTokens: true), [1] + t.encode("hi") + [2])
        XCTAssertEqual(withBOS.encode("hi"), t.encode("hi"))
    }

    /// The converted model directory's tokenizer_config.json: unk/pad/bos/eos and no BOS added.
    func testTokenizerConfig() throws {
        let dir = try makeScratchDirectory("TokenizerTests")
        let config = dir.appendingPathComponent("tokenizer_config.json")
        try #"{"bos_token": "<|im_start|>", "eos_token": {"content": "<|im_end|>"}, "pad_token": "<|im_end|>", "unk_token": "<|endoftext|>", "chat_template": "{{ x }}"}"#
            .write(to: config, atomically: true, encoding: .utf8)
        let t = try BPETokenizer(tokenizerJSON: Fixtures.url("smollm2_tokenizer.json"), tokenizerConfig: config)
        XCTAssertEqual(t.special, SpecialTokens(bos: 1, eos: 2, unk: 0, pad: 2, addBOS: false, addEOS: false))
        XCTAssertEqual(t.chatTemplateSource, "{{ x }}")
        try #"{"bos_token": "<|im_start|>", "add_bos_token": true}"#.write(to: config, atomically: true, encoding: .utf8)
        let b = try BPETokenizer(tokenizerJSON: Fixtures.url("smollm2_tokenizer.json"), tokenizerConfig: config)
        XCTAssertEqual(b.encode("hi", addSpecialTokens: true).first, 1)
        try #"{"bos_token": "<nope>"}"#.write(to: config, atomically: true, encoding: .utf8)
        let e = expectTokenizerError { try BPETokenizer(tokenizerJSON: Fixtures.url("smollm2_tokenizer.json"), tokenizerConfig: config) }
        XCTAssertTrue(e?.description.contains("<nope>") ?? false, e?.description ?? "")
    }

    /// Long words take the heap-based merge path (> 64 symbols); both paths agree.
    func testLongWordsAgreeWithShortPath() {
        let t = Fixtures.smolLM2
        let word = String(repeating: "abracadabra", count: 20)
        let long = t.encode(word)
        XCTAssertEqual(t.decode(long), word)
        var pieces: [Int] = []
        for _ in 0..<20 { pieces += t.encode("abracadabra") }
        XCTAssertLessThanOrEqual(long.count, pieces.count)
        var symbols = Array(word.utf8).map { Int32(t.id(String(ByteLevel.scalar[Int($0)]))!) }
        var reference = symbols
        t.merges.applyWithHeap(&symbols)
        t.merges.applyByScanning(&reference)
        XCTAssertEqual(symbols, reference)
        XCTAssertEqual(symbols.map(Int.init), long)
        XCTAssertGreaterThan(word.utf8.count, 64)
    }

    func testThreadSafety() {
        let t = Fixtures.smolLM2
        let cases = Fixtures.cases.encode
        let failures = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for c in cases where t.encode(c.text) != c.ids_smollm {
                failures.withLock { $0 += 1 }
            }
        }
        XCTAssertEqual(failures.withLock { $0 }, 0)
    }
}
