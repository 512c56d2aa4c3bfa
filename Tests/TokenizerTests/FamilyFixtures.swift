import Foundation
import TestSupport
import XCTest
@testable import Tokenizer

/// `Fixtures/family_tokenizer_cases.json`, written by
/// scripts/reference/make_family_tokenizer_fixtures.py with transformers / tokenizers from the real
/// Gemma 3, Llama 3 and Qwen vocabularies (see the script for each tokenizer's origin).
struct FamilyCases: Decodable {
    struct Encode: Decodable {
        var ids: [Int]
        var decoded: String
        var decoded_skip_special: String
    }

    struct Decode: Decodable {
        var ids: [Int]
        var text: String
        var text_skip_special: String
    }

    /// A conversation as transformers renders it, or the error its template raises.
    struct Chat: Decodable {
        var messages: [ChatMessage]
        var add_generation_prompt: Bool
        var text: String?
        var ids: [Int]?
        /// Per assistant message, UTF-8 offsets: where the generation prompt before it ends, and
        /// where its turn ends.
        var assistant_turns: [[Int]]?
        var error: String?
    }

    struct Fingerprints: Decodable, Equatable {
        var vocab_size: Int
        var vocab: String
        var merge_count: Int
        var merges: String
        var added_count: Int
        var added: String
    }

    struct Play: Decodable {
        var file: String
        var count: Int
        var fnv1a64: String
    }

    struct Family: Decodable {
        var encode: [Encode]
        var with_special_tokens: [Int]
        var fingerprints: Fingerprints
        var chats: [Chat]
        var shakespeare: [Play]
        var decode: [Decode]?
    }

    struct Templates: Decodable {
        var gemma: String
        var llama3: String
        var qwen: String
    }

    /// [content, id]
    struct SpecialToken: Decodable {
        var content: String
        var id: Int

        init(from decoder: Decoder) throws {
            var c = try decoder.unkeyedContainer()
            content = try c.decode(String.self)
            id = try c.decode(Int.self)
        }
    }

    /// A text of the tiny SentencePiece vocabulary.
    struct Tiny: Decodable {
        var text: String
        var ids: [Int]
        var decoded: String
    }

    var texts: [String]
    var templates: Templates
    var spm_tiny: [Tiny]
    var qwen_special_tokens: [SpecialToken]
    var gemma_small: Family
    var gemma: Family
    var llama3: Family
    var qwen: Family

    static let shared: FamilyCases = {
        let data = try! Data(contentsOf: Fixtures.url("family_tokenizer_cases.json"))
        return try! JSONDecoder().decode(FamilyCases.self, from: data)
    }()
}

/// Checks a tokenizer against one family's fixture: ids and decodes of every text, BOS, and that
/// streaming reassembles the decodes.
func assertMatchesHuggingFace(_ t: BPETokenizer, _ family: FamilyCases.Family, _ label: String,
                              file: StaticString = #filePath, line: UInt = #line) {
    let texts = FamilyCases.shared.texts
    XCTAssertEqual(texts.count, family.encode.count, file: file, line: line)
    for (text, c) in zip(texts, family.encode) {
        let ids = t.encode(text)
        assertSameIDs(ids, c.ids, "\(label) \(text.debugDescription)", file: file, line: line)
        XCTAssertEqual(t.decode(c.ids), c.decoded, "\(label) decode \(text.debugDescription)", file: file, line: line)
        XCTAssertEqual(t.decode(c.ids, skipSpecialTokens: true), c.decoded_skip_special,
                       "\(label) decode skipping specials \(text.debugDescription)", file: file, line: line)
        var stream = t.makeStreamingDecoder()
        XCTAssertEqual(stream.append(contentsOf: c.ids) + stream.finish(), c.decoded, "\(label) stream", file: file, line: line)
    }
    XCTAssertEqual(t.encode("Hello", addSpecialTokens: true), family.with_special_tokens, "\(label) BOS", file: file, line: line)
    for d in family.decode ?? [] {
        XCTAssertEqual(t.decode(d.ids), d.text, "\(label) \(d.ids)", file: file, line: line)
        XCTAssertEqual(t.decode(d.ids, skipSpecialTokens: true), d.text_skip_special, "\(label) \(d.ids)", file: file, line: line)
        for skip in [false, true] {
            var stream = t.makeStreamingDecoder(skipSpecialTokens: skip)
            let pieces = d.ids.map { stream.append($0) } + [stream.finish()]
            XCTAssertEqual(pieces.joined(), skip ? d.text_skip_special : d.text, "\(label) stream \(d.ids)", file: file, line: line)
        }
    }
}

/// Renders each conversation with `template` and, given `t`, encodes it: text, ids, and assistant
/// spans that start where the generation prompt ends and close before the turn does.
func assertChatsMatchTransformers(_ t: BPETokenizer?, _ template: ChatTemplate, _ family: FamilyCases.Family, _ label: String,
                                  file: StaticString = #filePath, line: UInt = #line) throws {
    XCTAssertFalse(family.chats.isEmpty, file: file, line: line)
    for c in family.chats {
        let where_ = "\(label) \(c.messages.map(\.role))"
        if let error = c.error {
            XCTAssertThrowsError(try template.render(c.messages, addGenerationPrompt: c.add_generation_prompt), where_, file: file, line: line) {
                XCTAssertEqual($0 as? TokenizerError, .invalidConversation(reason: error), file: file, line: line)
            }
            continue
        }
        let rendered = try template.render(c.messages, addGenerationPrompt: c.add_generation_prompt)
        XCTAssertEqual(rendered.text, c.text, where_, file: file, line: line)
        let turns = c.assistant_turns ?? []
        XCTAssertEqual(rendered.assistantUTF8Spans.count, turns.count, where_, file: file, line: line)
        let utf8 = Array(rendered.text.utf8)
        for (span, turn) in zip(rendered.assistantUTF8Spans, turns) {
            XCTAssertEqual(span.lowerBound, turn[0], "\(where_): an assistant span starts where the generation prompt ends",
                           file: file, line: line)
            XCTAssertLessThanOrEqual(span.upperBound, turn[1], where_, file: file, line: line)
            XCTAssertTrue(String(decoding: utf8[span.upperBound..<turn[1]], as: UTF8.self).allSatisfy(\.isWhitespace),
                          "\(where_): only a newline may follow the span in its turn", file: file, line: line)
        }
        guard let t else { continue }
        XCTAssertEqual(t.encode(rendered.text), c.ids, where_, file: file, line: line)
        let chat = try t.encodeChat(c.messages, addGenerationPrompt: c.add_generation_prompt, template: template)
        XCTAssertEqual(chat.ids, c.ids, where_, file: file, line: line)
        // The masked tokens spell exactly the spans.
        let masked = zip(chat.ids, chat.assistantMask).filter(\.1).map(\.0)
        let spanText = rendered.assistantUTF8Spans.map { String(decoding: utf8[$0], as: UTF8.self) }.joined()
        XCTAssertEqual(t.decode(masked), spanText, where_, file: file, line: line)
    }
}

/// The fixture's fingerprints of a `tokenizer.json`: FNV-1a over its vocabulary, merges and added
/// tokens, as the fixture script computes them.
func fingerprints(ofTokenizerJSON url: URL) throws -> FamilyCases.Fingerprints {
    struct FNV {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        mutating func add(_ s: String) { for b in s.utf8 { add(b) } }
        mutating func add(_ b: UInt8) { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        var hex: String {
            let hex = String(h, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }
    }
    let file = try HFTokenizerFile(contentsOf: url)
    var vocab = FNV(), merges = FNV(), added = FNV()
    for (token, id) in file.model.vocab.sorted(by: { $0.1 < $1.1 }) {
        vocab.add("\(id)\u{0}")
        vocab.add(token)
        vocab.add(1)
    }
    for (l, r) in file.model.merges {
        merges.add(l)
        merges.add(0)
        merges.add(r)
        merges.add(1)
    }
    for a in file.added_tokens.sorted(by: { $0.id < $1.id }) { added.add("\(a.id)\u{0}\(a.content)\u{0}\(a.special ? 1 : 0)\u{1}") }
    return .init(vocab_size: file.model.vocab.count, vocab: vocab.hex, merge_count: file.model.merges.count,
                 merges: merges.hex, added_count: file.added_tokens.count, added: added.hex)
}

extension XCTestCase {
    /// Writes `t`'s tokenizer.json to a scratch directory and returns its URL.
    func exportTokenizerJSON(_ t: BPETokenizer) throws -> URL {
        let url = try makeScratchDirectory("TokenizerTests").appendingPathComponent("tokenizer.json")
        try t.huggingFaceTokenizerJSON().write(to: url)
        return url
    }

    /// Writes `t`'s tokenizer.json and tokenizer_config.json, as `convert-model` does: the
    /// tokenizer.json holds Hugging Face's vocabulary, merges and added tokens (the fixture's
    /// fingerprints), and both read back to a tokenizer that matches Hugging Face again.
    func assertExportIsHuggingFace(_ t: BPETokenizer, _ family: FamilyCases.Family, _ label: String,
                                   file: StaticString = #filePath, line: UInt = #line) throws {
        let url = try exportTokenizerJSON(t)
        let config = url.deletingLastPathComponent().appendingPathComponent("tokenizer_config.json")
        try t.huggingFaceTokenizerConfig(modelMaxLength: 32_768).write(to: config)
        // For scripts/reference/check_exported_tokenizers.py, which loads these with HF.
        if let keep = ProcessInfo.processInfo.environment["PISSA_KEEP_TOKENIZER_EXPORTS"] {
            let dir = URL(fileURLWithPath: keep).appendingPathComponent(label)
            try? FileManager.default.removeItem(at: dir)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: url, to: dir.appendingPathComponent("tokenizer.json"))
            try FileManager.default.copyItem(at: config, to: dir.appendingPathComponent("tokenizer_config.json"))
        }
        XCTAssertEqual(try fingerprints(ofTokenizerJSON: url), family.fingerprints, label, file: file, line: line)
        let back = try BPETokenizer(tokenizerJSON: url, tokenizerConfig: config)
        XCTAssertEqual(back.kind, t.kind, label, file: file, line: line)
        XCTAssertEqual(back.special, t.special, label, file: file, line: line)
        assertMatchesHuggingFace(back, family, "\(label) exported", file: file, line: line)
    }
}
