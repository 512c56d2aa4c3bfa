import Foundation
import TestSupport
import XCTest
@testable import Tokenizer

final class PreTokenizerTests: XCTestCase {
    func testGGUFNames() throws {
        XCTAssertEqual(try PreTokenizer(ggufPre: "smollm"), .smolLM)
        XCTAssertEqual(try PreTokenizer(ggufPre: "gpt-2"), .gpt2)
        XCTAssertEqual(try PreTokenizer(ggufPre: "gpt2"), .gpt2)
        XCTAssertEqual(try PreTokenizer(ggufPre: "llama-bpe"), .llama3)
        XCTAssertEqual(try PreTokenizer(ggufPre: "qwen2"), .qwen2)
        let error = expectTokenizerError { try PreTokenizer(ggufPre: "falcon") }
        XCTAssertEqual(error, .unknownPreTokenizer(source: "tokenizer.ggml.pre", description: "falcon"))
        XCTAssertTrue(error!.description.contains("falcon"))
    }

    /// Every Unicode scalar is classified as Oniguruma (inside `tokenizers`) classifies it, except
    /// the 4,657 scalars new in Unicode 17.0: Swift 6.3 knows them (4,644 letters, 13 numbers),
    /// tokenizers 0.23's Oniguruma treats them as unassigned ("other").
    func testScalarClassesMatchHuggingFace() {
        var mismatches: [String] = []
        for r in Fixtures.cases.char_classes {
            let expected: ScalarClass = switch r.kind.first! {
                case "L": .letter
                case "N": .number
                case "S": .whitespace
                default: .other
            }
            for v in r.first...r.last {
                guard let scalar = Unicode.Scalar(v) else { continue }
                let observed = ScalarClass.of(scalar)
                let numeric = observed == .number
                let swiftNewer = (scalar.properties.age?.major ?? 0) >= 17
                if (observed != expected || numeric != r.kind.hasSuffix("D")) && !swiftNewer {
                    mismatches.append(String(format: "U+%04X %@ (observed %@)", v, r.kind, "\(observed)"))
                }
            }
        }
        XCTAssertEqual(mismatches.count, 0, mismatches.prefix(20).joined(separator: "\n"))
    }

    /// The hand-written Llama 3 regex against `tokenizers`' Split(Regex(...), isolated).
    func testLlama3PiecesMatchHuggingFace() {
        for c in Fixtures.cases.encode {
            XCTAssertEqual(pieces(c.text, .llama3), c.pieces_llama3, c.text.debugDescription)
        }
    }

    func testPiecesReassembleText() {
        for kind in PreTokenizer.allCases {
            for c in Fixtures.cases.encode {
                XCTAssertEqual(pieces(c.text, kind).joined(), c.text)
            }
        }
        XCTAssertEqual(pieces("don't  stop 42x", .gpt2), ["don", "'t", " ", " stop", " 42", "x"])
        XCTAssertEqual(pieces("don't  stop 42x", .smolLM), ["don", "'t", " ", " stop", " ", "4", "2", "x"])
    }

    private func pieces(_ text: String, _ kind: PreTokenizer) -> [String] {
        var text = text
        return text.withUTF8 { bytes in
            var splitter = PreTokenSplitter(bytes: bytes, range: 0..<bytes.count, kind: kind)
            var out: [String] = []
            while let r = splitter.next() { out.append(String(decoding: bytes[r], as: UTF8.self)) }
            return out
        }
    }

    // MARK: - tokenizer.json variants

    /// A tiny byte-level tokenizer.json with the given pre-tokenizer (and other overrides).
    private func tinyTokenizer(
        _ pre: String, normalizer: String = "null", merges: String = #"["h e", "he l"]"#
    ) throws -> URL {
        var entries = [String: Int]()
        for b in 0..<256 { entries[String(ByteLevel.scalar[b])] = b }
        let object = try JSONSerialization.data(withJSONObject: entries, options: [.sortedKeys])
        let vocab = String(decoding: object.dropFirst().dropLast(), as: UTF8.self)
        let json = """
            {"added_tokens": [{"id": 259, "content": "<|x|>", "special": true}], "normalizer": \(normalizer),
             "pre_tokenizer": \(pre), "post_processor": null, "decoder": {"type": "ByteLevel"},
             "model": {"type": "BPE", "vocab": {\(vocab), "he": 256, "hel": 257}, "merges": \(merges)}}
            """
        let url = try makeScratchDirectory("TokenizerTests").appendingPathComponent("tokenizer.json")
        try json.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    func testTokenizerJSONPreTokenizers() throws {
        let byteLevel = #"{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}"#
        let t = try BPETokenizer(tokenizerJSON: tinyTokenizer(byteLevel), tokenizerConfig: nil)
        XCTAssertEqual(t.preTokenizer, .gpt2)
        XCTAssertEqual(t.vocabularySize, 260)
        XCTAssertEqual(t.encode("hel<|x|>he"), [257, 259, 256])
        XCTAssertEqual(t.decode([257, 259, 256]), "hel<|x|>he")

        let digits = #"{"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true}, \#(byteLevel)]}"#
        XCTAssertEqual(try BPETokenizer(tokenizerJSON: tinyTokenizer(digits), tokenizerConfig: nil).preTokenizer, .smolLM)

        let regex = String(decoding: try JSONEncoder().encode(PreTokenizer.llama3.splitRegex!), as: UTF8.self)
        let llama = #"{"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": \#(regex)}, "behavior": "Isolated", "invert": false}, {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]}"#
        XCTAssertEqual(try BPETokenizer(tokenizerJSON: tinyTokenizer(llama), tokenizerConfig: nil).preTokenizer, .llama3)

        // Pairs as arrays (newer files) work like "a b" strings.
        let pairs = try BPETokenizer(tokenizerJSON: tinyTokenizer(byteLevel, merges: #"[["h", "e"], ["he", "l"]]"#), tokenizerConfig: nil)
        XCTAssertEqual(pairs.encode("hel"), [257])
    }

    func testTokenizerJSONErrorsNameTheProblem() throws {
        let unknown = #"{"type": "Whitespace"}"#
        let e1 = expectTokenizerError { try BPETokenizer(tokenizerJSON: tinyTokenizer(unknown), tokenizerConfig: nil) }
        guard case .unknownPreTokenizer(_, let description) = e1 else { return XCTFail("\(String(describing: e1))") }
        XCTAssertEqual(description, "Whitespace")

        let prefixSpace = #"{"type": "ByteLevel", "add_prefix_space": true}"#
        let e2 = expectTokenizerError { try BPETokenizer(tokenizerJSON: tinyTokenizer(prefixSpace), tokenizerConfig: nil) }
        XCTAssertTrue(e2?.description.contains("add_prefix_space: true") ?? false, e2?.description ?? "")

        let byteLevel = #"{"type": "ByteLevel"}"#
        XCTAssertEqual(try BPETokenizer(tokenizerJSON: tinyTokenizer(byteLevel, normalizer: #"{"type": "NFC"}"#), tokenizerConfig: nil).normalizer,
                       .nfc, "Qwen2.5's NFC is read (NFCTokenizerTests)")
        let e3 = expectTokenizerError {
            try BPETokenizer(tokenizerJSON: tinyTokenizer(byteLevel, normalizer: #"{"type": "NFKC"}"#), tokenizerConfig: nil)
        }
        XCTAssertTrue(e3?.description.contains("normalizer") ?? false, e3?.description ?? "")

        let e4 = expectTokenizerError { try BPETokenizer(tokenizerJSON: tinyTokenizer(byteLevel, merges: #"["h e", "x y"]"#), tokenizerConfig: nil) }
        guard case .unknownToken(_, let key, let token) = e4 else { return XCTFail("\(String(describing: e4))") }
        XCTAssertEqual(key, "merge 1")
        XCTAssertEqual(token, "xy")

        let e5 = expectTokenizerError { try BPETokenizer(tokenizerJSON: tinyTokenizer(byteLevel, merges: #"["h e", "hel"]"#), tokenizerConfig: nil) }
        XCTAssertEqual(e5.map { if case .malformedMerge(_, let i, let m) = $0 { "\(i) \(m)" } else { "\($0)" } }, "1 hel")

        let missing = URL(fileURLWithPath: "/nonexistent/tokenizer.json")
        let e6 = expectTokenizerError { try BPETokenizer(tokenizerJSON: missing, tokenizerConfig: nil) }
        XCTAssertTrue(e6?.description.contains("/nonexistent/tokenizer.json") ?? false)

        let e7 = expectTokenizerError {
            try BPETokenizer(tokens: ["a", "b"], merges: ["a b"], tokenTypes: nil, special: SpecialTokens(),
                             preTokenizer: .gpt2, chatTemplate: nil)
        }
        XCTAssertEqual(e7, .unknownToken(source: "GGUF tokenizer", key: "merge 0", token: "ab"))
        let e8 = expectTokenizerError {
            try BPETokenizer(tokens: ["a", "b"], merges: [], tokenTypes: nil, special: SpecialTokens(eos: 7),
                             preTokenizer: .gpt2, chatTemplate: nil)
        }
        XCTAssertEqual(e8, .tokenIDOutOfRange(source: "GGUF tokenizer", key: "eos", id: 7, vocabularySize: 2))
    }
}
