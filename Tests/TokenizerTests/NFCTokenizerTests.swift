import Foundation
import TestSupport
import XCTest
@testable import Tokenizer

/// `Fixtures/nfc_tokenizer_cases.json` and `qwen_nfc_small_tokenizer.json`, written by
/// scripts/reference/make_nfc_tokenizer_fixtures.py with Hugging Face `tokenizers` from the real
/// Qwen ranks cut to 4096, with Qwen2.5's NFC normalizer.
struct NFCCases: Decodable {
    struct Encode: Decodable {
        var text: String
        var ids: [Int]
        var ids_without_normalizer: [Int]
        var decoded: String
    }

    var normalizer: [String: String]
    var template: String
    var encode: [Encode]
    var chats: [FamilyCases.Chat]

    static let shared: NFCCases = {
        let data = try! Data(contentsOf: Fixtures.url("nfc_tokenizer_cases.json"))
        return try! JSONDecoder().decode(NFCCases.self, from: data)
    }()
}

/// Byte-level BPE with an NFC normalizer (Qwen2.5's tokenizer.json) against `tokenizers`:
/// precomposed, decomposed, singleton, excluded and reordered sequences, combining marks right
/// after added tokens, and chats whose assistant masks must survive the normalisation.
final class NFCTokenizerTests: XCTestCase {
    static let tokenizer = try! BPETokenizer(tokenizerJSON: Fixtures.url("qwen_nfc_small_tokenizer.json"), tokenizerConfig: nil)

    func testEncodesAsTokenizersWithNFC() throws {
        let t = Self.tokenizer
        XCTAssertEqual(t.normalizer, .nfc)
        XCTAssertEqual(t.preTokenizer, .qwen2)
        let cases = NFCCases.shared.encode
        XCTAssertGreaterThanOrEqual(cases.filter { $0.ids != $0.ids_without_normalizer }.count, 15,
                                    "the corpus exercises the normalizer")
        for c in cases {
            assertSameIDs(t.encode(c.text), c.ids, c.text.debugDescription)
            XCTAssertEqual(t.decode(c.ids), c.decoded, c.text.debugDescription)
        }
    }

    /// The export writes the normalizer as `tokenizers` does, and reads back to the same encoding.
    func testExportKeepsTheNormalizer() throws {
        let data = Self.tokenizer.huggingFaceTokenizerJSON()
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        XCTAssertEqual(object["normalizer"] as? [String: String], NFCCases.shared.normalizer)
        let url = try makeScratchDirectory("TokenizerTests").appendingPathComponent("tokenizer.json")
        try data.write(to: url)
        let reloaded = try BPETokenizer(tokenizerJSON: url, tokenizerConfig: nil)
        XCTAssertEqual(reloaded.normalizer, .nfc)
        for c in NFCCases.shared.encode { XCTAssertEqual(reloaded.encode(c.text), c.ids, c.text.debugDescription) }
    }

    /// Chats render as transformers renders them, encode to its ids, and the assistant mask covers
    /// exactly the assistant turns: the masked tokens decode to the spans' text in NFC.
    func testChatsKeepTheirAssistantMasks() throws {
        let t = Self.tokenizer
        let template = try ChatTemplate(jinja: NFCCases.shared.template)
        XCTAssertEqual(NFCCases.shared.chats.count, 3)
        for c in NFCCases.shared.chats {
            let label = "\(c.messages.map(\.content))"
            let rendered = try template.render(c.messages, addGenerationPrompt: c.add_generation_prompt)
            XCTAssertEqual(rendered.text, c.text, label)
            let chat = try t.encodeChat(c.messages, addGenerationPrompt: c.add_generation_prompt, template: template)
            XCTAssertEqual(chat.ids, c.ids, label)
            XCTAssertEqual(chat.assistantMask.count, chat.ids.count, label)
            let utf8 = Array(rendered.text.utf8)
            XCTAssertEqual(rendered.assistantUTF8Spans.count, c.assistant_turns?.count, label)
            let spans = rendered.assistantUTF8Spans.map { String(decoding: utf8[$0], as: UTF8.self) }.joined()
            let masked = zip(chat.ids, chat.assistantMask).filter(\.1).map(\.0)
            XCTAssertEqual(t.decode(masked), spans.precomposedStringWithCanonicalMapping, label)
        }
    }

    /// Normalised pieces map back to the raw characters they came from.
    func testNormalizedTextMapsBackToRawBytes() throws {
        let raw = "xe\u{301}\u{212B}y"   // x, e + combining acute, Angstrom sign, y
        let bytes = Array(raw.utf8)
        let n = try XCTUnwrap(bytes.withUnsafeBufferPointer { TextNormalizer.nfc.normalize($0) })
        XCTAssertEqual(String(decoding: n.bytes, as: UTF8.self), "x\u{E9}\u{C5}y")
        // x; é ← e + U+0301; Å ← U+212B; from é to y
        XCTAssertEqual(n.rawRanges([0..<1, 1..<3, 3..<5, 1..<6]), [0..<1, 1..<4, 4..<7, 1..<8])
        XCTAssertNil(Array("plain".utf8).withUnsafeBufferPointer { TextNormalizer.nfc.normalize($0) })
        XCTAssertNil(Array("d\u{E9}j\u{E0}".utf8).withUnsafeBufferPointer { TextNormalizer.nfc.normalize($0) }, "already NFC")
    }

    /// Opt-in: NFC of every assigned code point (alone and decomposed), of every Hangul LV + T
    /// pair and of mark pairs, against `tokenizers`' (scripts/reference/make_nfc_exhaustive.py
    /// writes the files). Foundation alone misses the 10,773 LV + T pairs; one difference is left,
    /// U+11935 U+11930 (Dives Akuru, Unicode 13), which Foundation composes to U+11938 and
    /// tokenizers does not.
    func testEveryCodePointAsTokenizers() throws {
        guard let dir = ProcessInfo.processInfo.environment["PISSA_NFC_EXHAUSTIVE"] else {
            throw XCTSkip("set PISSA_NFC_EXHAUSTIVE to the output of scripts/reference/make_nfc_exhaustive.py")
        }
        func lines(_ name: String) throws -> [Substring] {
            try String(contentsOfFile: dir + "/" + name, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        }
        let input = try lines("in.txt"), expected = try lines("expected.txt")
        XCTAssertEqual(input.count, expected.count)
        var differing: [String] = []
        for (text, want) in zip(input, expected) where TextNormalizer.nfc.utf8(String(text)) != Array(want.utf8) {
            differing.append(text.unicodeScalars.map { String($0.value, radix: 16, uppercase: true) }.joined(separator: " "))
        }
        XCTAssertGreaterThan(input.count, 300_000)
        XCTAssertTrue(differing.allSatisfy { $0 == "11935 11930" }, "\(differing.count) texts differ: \(differing.prefix(20))")
    }

    /// Other normalizers stay refused for byte-level BPE, naming the key.
    func testOtherNormalizersAreRefused() throws {
        let original = try String(contentsOf: Fixtures.url("qwen_nfc_small_tokenizer.json"), encoding: .utf8)
        let url = try makeScratchDirectory("TokenizerTests").appendingPathComponent("tokenizer.json")
        for other in [#"{"type":"NFKC"}"#, #"{"type":"NFD"}"#, #"{"type":"Lowercase"}"#] {
            XCTAssertTrue(original.contains(#""normalizer":{"type":"NFC"}"#))
            try original.replacingOccurrences(of: #""normalizer":{"type":"NFC"}"#, with: #""normalizer":"# + other)
                .write(to: url, atomically: true, encoding: .utf8)
            let error = expectTokenizerError { try BPETokenizer(tokenizerJSON: url, tokenizerConfig: nil) }
            XCTAssertTrue(error?.description.contains("normalizer") ?? false, "\(other): \(String(describing: error))")
        }
    }
}
