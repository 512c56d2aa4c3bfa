import Formats
import Foundation
import Model
import TestSupport
import Tokenizer
import XCTest

/// `HuggingFaceExport` and `BPETokenizer`'s `tokenizer.json` export: the written directory reads
/// back (through this package's Hugging Face loaders) to the GGUF's tensors and tokenizer.
/// transformers' side is scripts/reference/check_converted_model.py.
final class HuggingFaceExportTests: XCTestCase {
    /// Pre-tokenisation edge cases (digits split one by one, numbers outside ASCII, runs of
    /// spaces and newlines, contractions, special tokens in the text), code and other scripts.
    static let texts = [
        "Hello, world! It's 2024: 3.14159 × 1,000,000 = 3141590.",
        " 1 2  3", " ½ ² ３ ٣", "x 2023年 ⅷ",
        "<|im_start|>user\nWhat's the capital of France?<|im_end|>\n<|im_start|>assistant\n",
        "def f(x):\n\treturn x**2  # squares\n\n\n    end   ",
        "naïve café — Größe, 東京タワー, привет мир, مرحبا 🤗🚀",
        "I'll've we'd THEY'RE don't   \r\n trailing ",
    ]

    private var smolLM2TokenizerJSON: URL {
        // Tests/ModelTests/this file → Tests/TokenizerTests/Fixtures (another target's fixture).
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("TokenizerTests/Fixtures/smollm2_tokenizer.json")
    }

    private func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("hf-export-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    private func jsonObject(_ data: Data) throws -> NSDictionary {
        try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? NSDictionary)
    }

    /// Every top-level part of `actual` equals the real SmolLM2 `tokenizer.json`'s.
    private func assertMatchesSmolLM2Fixture(_ actual: Data, file: StaticString = #filePath, line: UInt = #line) throws {
        let expected = try jsonObject(Data(contentsOf: smolLM2TokenizerJSON))
        let observed = try jsonObject(actual)
        XCTAssertEqual(Set(observed.allKeys as! [String]), Set(expected.allKeys as! [String]), file: file, line: line)
        for key in ["version", "truncation", "padding", "added_tokens", "normalizer", "pre_tokenizer", "post_processor", "decoder"] {
            XCTAssertEqual(observed[key] as? NSObject, expected[key] as? NSObject, key, file: file, line: line)
        }
        let m = try XCTUnwrap(observed["model"] as? NSDictionary), e = try XCTUnwrap(expected["model"] as? NSDictionary)
        for key in e.allKeys as! [String] {
            XCTAssertEqual(m[key] as? NSObject, e[key] as? NSObject, "model.\(key)", file: file, line: line)
        }
    }

    private func assertSameEncoding(_ a: BPETokenizer, _ b: BPETokenizer, file: StaticString = #filePath, line: UInt = #line) {
        for text in Self.texts {
            XCTAssertEqual(a.encode(text), b.encode(text), text.debugDescription, file: file, line: line)
        }
    }

    // MARK: Tokenizer alone (no assets needed)

    func testTokenizerJSONReproducesSmolLM2Fixture() throws {
        let original = try BPETokenizer(tokenizerJSON: smolLM2TokenizerJSON, tokenizerConfig: nil)
        let exported = original.huggingFaceTokenizerJSON()
        try assertMatchesSmolLM2Fixture(exported)

        let dir = try temporaryDirectory()
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try exported.write(to: dir.appendingPathComponent("tokenizer.json"))
        let reloaded = try BPETokenizer(tokenizerJSON: dir.appendingPathComponent("tokenizer.json"), tokenizerConfig: nil)
        XCTAssertEqual(reloaded.preTokenizer, .smolLM)
        assertSameEncoding(original, reloaded)
    }

    func testBOSAndEOSGoToTheTemplateAndTheConfig() throws {
        let tokens = ["<s>", "</s>", "a", "b", "ab", "Ġ", "Ġab"]
        let tokenizer = try BPETokenizer(
            tokens: tokens, merges: ["a b", "Ġ ab"], tokenTypes: [3, 3, 1, 1, 1, 1, 1],
            special: SpecialTokens(bos: 0, eos: 1, addBOS: true, addEOS: true), preTokenizer: .gpt2, chatTemplate: nil)
        let dir = try temporaryDirectory()
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let json = dir.appendingPathComponent("tokenizer.json"), config = dir.appendingPathComponent("tokenizer_config.json")
        try tokenizer.huggingFaceTokenizerJSON().write(to: json)
        try tokenizer.huggingFaceTokenizerConfig(modelMaxLength: 64).write(to: config)

        let processor = try XCTUnwrap(try jsonObject(Data(contentsOf: json))["post_processor"] as? NSDictionary)
        XCTAssertEqual(processor["type"] as? String, "TemplateProcessing")
        XCTAssertEqual((processor["single"] as? [Any])?.count, 3)
        XCTAssertNotNil((processor["special_tokens"] as? NSDictionary)?["<s>"])
        let settings = try jsonObject(Data(contentsOf: config))
        XCTAssertEqual(settings["bos_token"] as? String, "<s>")
        XCTAssertEqual(settings["add_bos_token"] as? Bool, true)
        XCTAssertEqual(settings["model_max_length"] as? Int, 64)

        for configURL in [config, nil] {   // from the config's flags, and from the template alone
            let reloaded = try BPETokenizer(tokenizerJSON: json, tokenizerConfig: configURL)
            XCTAssertEqual(reloaded.encode(" ab ab", addSpecialTokens: true), [0, 6, 6, 1])
            XCTAssertEqual(reloaded.special.addBOS, true)
            XCTAssertEqual(reloaded.special.addEOS, true)
        }
    }

    // MARK: The real model

    func testExportOfSmolLM2ReadsBackToTheGGUF() throws {
        let ggufURL = try Assets.require(Assets.smolLM2GGUF)
        let gguf = try GGUFModel(url: ggufURL)
        let tokenizer = try BPETokenizer(gguf: gguf.file)
        let dir = try temporaryDirectory()
        var reported: [String] = []
        let summary = try HuggingFaceExport.write(gguf: gguf, tokenizer: tokenizer, to: dir, dtype: .f32) { p in
            reported.append(p.tensor)
            XCTAssertEqual(p.completed, reported.count)
        }
        XCTAssertEqual(reported, gguf.huggingFaceTensorNames)
        XCTAssertEqual(summary.tensors, 272)
        XCTAssertEqual(summary.skippedTensors, [])
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        XCTAssertEqual(names, ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"])

        // Weights and config.
        let source = try SafeTensorsWeightSource(directory: dir)
        XCTAssertEqual(source.config, gguf.config)
        XCTAssertTrue(source.config.tieWordEmbeddings)
        XCTAssertFalse(source.has("lm_head.weight"))
        var parameters = 0
        for name in gguf.huggingFaceTensorNames {
            let expected = try gguf.huggingFaceTensor(named: name)
            let observed = try source.tensor(name)
            XCTAssertEqual(observed.shape, expected.shape, name)
            XCTAssertEqual(observed.floats.count, expected.floats.count, name)
            let identical = observed.floats.withUnsafeBytes { a in
                expected.floats.withUnsafeBytes { b in a.count == b.count && memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0 }
            }
            if !identical {
                let differing = zip(observed.floats, expected.floats).filter { $0.0.bitPattern != $0.1.bitPattern }.count
                XCTFail("\(name): \(differing) of \(expected.floats.count) values differ")
            }
            parameters += expected.floats.count
        }
        XCTAssertEqual(summary.parameters, parameters)
        let generation = try jsonObject(Data(contentsOf: dir.appendingPathComponent("generation_config.json")))
        XCTAssertEqual(generation, ["bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2])

        // Tokenizer: the real SmolLM2 tokenizer.json, and the GGUF's tokenizer read back.
        let tokenizerJSON = dir.appendingPathComponent("tokenizer.json")
        try assertMatchesSmolLM2Fixture(Data(contentsOf: tokenizerJSON))
        let reloaded = try BPETokenizer(tokenizerJSON: tokenizerJSON,
                                        tokenizerConfig: dir.appendingPathComponent("tokenizer_config.json"))
        XCTAssertEqual(reloaded.special, tokenizer.special)
        XCTAssertEqual(reloaded.chatTemplateSource, tokenizer.chatTemplateSource)
        XCTAssertEqual(reloaded.vocabularySize, tokenizer.vocabularySize)
        for id in 0..<tokenizer.vocabularySize where reloaded.token(id) != tokenizer.token(id) || reloaded.isSpecial(id) != tokenizer.isSpecial(id) {
            XCTFail("token \(id): \(String(describing: reloaded.token(id))) vs \(String(describing: tokenizer.token(id)))")
            break
        }
        assertSameEncoding(tokenizer, reloaded)
        let config = try jsonObject(Data(contentsOf: dir.appendingPathComponent("tokenizer_config.json")))
        XCTAssertEqual(config["bos_token"] as? String, "<|im_start|>")
        XCTAssertEqual(config["eos_token"] as? String, "<|im_end|>")
        XCTAssertEqual(config["pad_token"] as? String, "<|im_end|>")
        XCTAssertEqual(config["unk_token"] as? String, "<|endoftext|>")
        XCTAssertEqual(config["add_bos_token"] as? Bool, false)
        XCTAssertEqual(config["model_max_length"] as? Int, 8192)
    }

    func testBFloat16ExportRoundsEachTensor() throws {
        let gguf = try GGUFModel(url: try Assets.require(Assets.smolLM2GGUF))
        let dir = try temporaryDirectory()
        try HuggingFaceExport.write(gguf: gguf, tokenizer: try BPETokenizer(gguf: gguf.file), to: dir, dtype: .bf16)
        let source = try SafeTensorsWeightSource(directory: dir)
        XCTAssertEqual(source.config.torchDtype, "bfloat16")
        let file = try SafeTensorsFile(url: dir.appendingPathComponent("model.safetensors"))
        XCTAssertEqual(Set(file.tensors.map(\.dtype)), [.bf16])
        for name in ["model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight", "model.norm.weight"] {
            let expected = try gguf.huggingFaceTensor(named: name).floats
            let observed = try source.tensor(name).floats
            // Round to nearest: within half a unit in the last place of bf16's 8-bit significand.
            let worst = zip(observed, expected).map { abs($0 - $1) / max(abs($1), .leastNormalMagnitude) }.max() ?? 0
            XCTAssertLessThanOrEqual(worst, 1.0 / 256, name)
        }
    }

    func testRefusesOtherDTypesAndDirectoriesWithOtherWeights() throws {
        let gguf = try GGUFModel(url: try Assets.require(Assets.smolLM2GGUF))
        let tokenizer = try BPETokenizer(gguf: gguf.file)
        let dir = try temporaryDirectory()
        XCTAssertThrowsError(try HuggingFaceExport.write(gguf: gguf, tokenizer: tokenizer, to: dir, dtype: .i32)) { error in
            XCTAssertTrue("\(error)".contains("I32"), "\(error)")
        }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Data().write(to: dir.appendingPathComponent("model-00001-of-00002.safetensors"))
        XCTAssertThrowsError(try HuggingFaceExport.write(gguf: gguf, tokenizer: tokenizer, to: dir)) { error in
            XCTAssertTrue("\(error)".contains("model-00001-of-00002.safetensors"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("config.json").path))
    }
}
