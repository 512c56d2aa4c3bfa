import XCTest
@testable import Tokenizer

/// Decoding and streaming against Hugging Face `tokenizers` (`Tokenizer.decode`).
final class DecodeTests: XCTestCase {
    /// Invalid UTF-8 (single-byte tokens) becomes U+FFFD per maximal ill-formed subsequence,
    /// exactly as HF's `String::from_utf8_lossy`; special tokens decode as written or are skipped.
    func testDecodeMatchesHuggingFace() {
        let t = Fixtures.smolLM2
        for c in Fixtures.cases.decode {
            XCTAssertEqual(t.decode(c.ids), c.text, "\(c.ids)")
            if let skipped = c.text_skip_special {
                XCTAssertEqual(t.decode(c.ids, skipSpecialTokens: true), skipped, "\(c.ids)")
            }
        }
    }

    func testOutOfRangeIDsDecodeToNothing() {
        let t = Fixtures.smolLM2
        XCTAssertEqual(t.decode([81, -1, 49152, 1_000_000, 82]), "ab")
    }

    /// Streaming: the pieces concatenate to the full decode, and no piece ends inside a character
    /// that later tokens complete.
    func testStreamingMatchesFullDecode() {
        let t = Fixtures.smolLM2
        var sequences = Fixtures.cases.encode.map(\.ids_smollm) + Fixtures.cases.decode.map(\.ids)
        // Every byte of a text as its own token: the worst case for held-back bytes.
        let emoji = "a👨‍👩‍👧é中\u{10FFFF}z"
        sequences.append(Array(emoji.utf8).map { t.id(String(ByteLevel.scalar[Int($0)]))! })
        for skip in [false, true] {
            for ids in sequences {
                var decoder = t.makeStreamingDecoder(skipSpecialTokens: skip)
                var pieces: [String] = []
                for id in ids { pieces.append(decoder.append(id)) }
                pieces.append(decoder.finish())
                XCTAssertEqual(pieces.joined(), t.decode(ids, skipSpecialTokens: skip), "\(ids)")
                // Valid text never yields U+FFFD mid-stream.
                if !t.decode(ids, skipSpecialTokens: skip).contains("\u{FFFD}") {
                    XCTAssertFalse(pieces.contains { $0.contains("\u{FFFD}") }, "\(ids)")
                }
            }
        }
        var decoder = t.makeStreamingDecoder()
        let bytes = sequences.last!
        XCTAssertEqual(decoder.append(bytes[0]), "a")
        XCTAssertEqual(decoder.append(bytes[1]), "")          // F0: first byte of 👨
        XCTAssertEqual(decoder.append(contentsOf: bytes[2...]), String(emoji.dropFirst()))
        XCTAssertEqual(decoder.finish(), "")
    }

    func testStreamingHoldsBackOnlyValidPrefixes() {
        XCTAssertEqual(StreamingDecoder.incompleteSuffixLength([0x61, 0xE2, 0x82]), 2)
        XCTAssertEqual(StreamingDecoder.incompleteSuffixLength([0xF0, 0x9F, 0x98]), 3)
        XCTAssertEqual(StreamingDecoder.incompleteSuffixLength([0xF0, 0x9F, 0x98, 0x80]), 0)
        XCTAssertEqual(StreamingDecoder.incompleteSuffixLength([0xED, 0xA0]), 0)     // surrogate: invalid now
        XCTAssertEqual(StreamingDecoder.incompleteSuffixLength([0xE0, 0x80]), 0)     // overlong
        XCTAssertEqual(StreamingDecoder.incompleteSuffixLength([0xC0]), 0)
        XCTAssertEqual(StreamingDecoder.incompleteSuffixLength([0x80, 0x80, 0x80]), 0)
        XCTAssertEqual(StreamingDecoder.incompleteSuffixLength([]), 0)
    }
}
