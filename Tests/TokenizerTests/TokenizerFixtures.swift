import Foundation
import XCTest
@testable import Tokenizer

/// `Fixtures/tokenizer_cases.json`, written by scripts/reference/make_tokenizer_fixtures.py with
/// Hugging Face `tokenizers` / `transformers` (see the script for what each field means).
struct TokenizerCases: Decodable {
    struct Encode: Decodable {
        var text: String
        var ids_smollm: [Int]
        var ids_gpt2: [Int]
        var pieces_llama3: [String]
        var decoded: String
        var decoded_skip_special: String
    }

    struct Decode: Decodable {
        var ids: [Int]
        var text: String
        var text_skip_special: String?
    }

    struct Chat: Decodable {
        var messages: [ChatMessage]
        var add_generation_prompt: Bool
        var text: String
        var ids_smollm: [Int]
    }

    struct Play: Decodable {
        var file: String
        var sha256_text: String
        var count_smollm: Int
        var fnv1a64_smollm: String
        var count_gpt2: Int
        var fnv1a64_gpt2: String
    }

    /// [first scalar, last scalar, class]: class "L", "N", "S" or "O", then "D" when numeric.
    struct ClassRange: Decodable {
        var first: UInt32
        var last: UInt32
        var kind: String

        init(from decoder: Decoder) throws {
            var c = try decoder.unkeyedContainer()
            first = try c.decode(UInt32.self)
            last = try c.decode(UInt32.self)
            kind = try c.decode(String.self)
        }
    }

    var chat_template: String
    var encode: [Encode]
    var decode: [Decode]
    var chat: [Chat]
    var shakespeare: [Play]
    var char_classes: [ClassRange]
}

enum Fixtures {
    static func url(_ name: String) -> URL {
        Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil)!
    }

    static let cases: TokenizerCases = {
        let data = try! Data(contentsOf: url("tokenizer_cases.json"))
        return try! JSONDecoder().decode(TokenizerCases.self, from: data)
    }()

    /// SmolLM2's tokenizer from its tokenizer.json (pre-tokenizer Digits + ByteLevel: `.smolLM`).
    static let smolLM2: BPETokenizer = try! BPETokenizer(tokenizerJSON: url("smollm2_tokenizer.json"), tokenizerConfig: nil)

    /// The vocabulary and merges of the fixture file, as GGUF arrays.
    static let ggufArrays: (tokens: [String], merges: [String], types: [Int32]) = {
        let file = try! HFTokenizerFile(contentsOf: url("smollm2_tokenizer.json"))
        var tokens = [String](repeating: "", count: file.model.vocab.count)
        for (t, id) in file.model.vocab { tokens[id] = t }
        var types = [Int32](repeating: 1, count: tokens.count)
        for a in file.added_tokens { types[a.id] = 3 }
        return (tokens, file.model.merges.map { $0.0 + " " + $0.1 }, types)
    }()

    /// SmolLM2 built the way the GGUF loader builds it, with the given pre-tokenizer.
    static func gguf(_ pre: PreTokenizer, chatTemplate: String? = nil) throws -> BPETokenizer {
        let a = ggufArrays
        return try BPETokenizer(
            tokens: a.tokens, merges: a.merges, tokenTypes: a.types,
            special: SpecialTokens(bos: 1, eos: 2, unk: 0, pad: 2, addBOS: false, addEOS: false),
            preTokenizer: pre, chatTemplate: chatTemplate)
    }

    /// The texts HF cannot round-trip: they contain bytes without a token, which BPE drops.
    static func dropsBytes(_ text: String) -> Bool {
        text.unicodeScalars.contains { [0x04, 0x06, 0x13, 0x14, 0x16, 0x1D].contains($0.value) || (0x40000..<0x80000).contains($0.value) }
    }
}

/// FNV-1a over ids as little-endian UInt32 bytes (as in the fixture script), in hex.
func fnv1a64(_ ids: [Int]) -> String {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for id in ids {
        var v = UInt32(id)
        for _ in 0..<4 {
            h = (h ^ UInt64(v & 0xFF)) &* 0x0000_0100_0000_01B3
            v >>= 8
        }
    }
    let hex = String(h, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}

/// Fails with the first differing position and the ids around it.
func assertSameIDs(_ observed: [Int], _ expected: [Int], _ label: String, file: StaticString = #filePath, line: UInt = #line) {
    guard observed != expected else { return }
    let i = zip(observed, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(observed.count, expected.count)
    let window = max(0, i - 3)..<(i + 4)
    XCTFail("\(label): ids differ at \(i) (counts \(observed.count) vs \(expected.count)); "
            + "observed \(Array(observed[window.clamped(to: observed.indices)])) "
            + "expected \(Array(expected[window.clamped(to: expected.indices)]))", file: file, line: line)
}

/// Asserts that `body` throws a `TokenizerError` and returns it.
@discardableResult
func expectTokenizerError<T>(_ body: () throws -> T, file: StaticString = #filePath, line: UInt = #line) -> TokenizerError? {
    do {
        _ = try body()
        XCTFail("expected a TokenizerError", file: file, line: line)
    } catch let error as TokenizerError {
        return error
    } catch {
        XCTFail("expected a TokenizerError, got \(error)", file: file, line: line)
    }
    return nil
}
