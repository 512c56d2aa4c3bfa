import Foundation
import Tokenizer
import XCTest
@testable import Training

/// The SmolLM2 tokenizer (Tests/TokenizerTests/Fixtures/smollm2_tokenizer.json, with
/// Fixtures/data/smollm2_tokenizer_config.json: EOS = pad = `<|im_end|>` = 2, SmolLM2's chat
/// template) and the reference masks from Fixtures/data/make_reference.py.
enum DataFixtures {
    static var directory: URL { Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("data") }

    static var tokenizerJSON: URL {
        // Tests/TrainingTests/DataFixtures.swift → Tests/TokenizerTests/Fixtures/.
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("TokenizerTests/Fixtures/smollm2_tokenizer.json")
    }

    /// SmolLM2-135M-Instruct's tokenizer.
    static let smolLM2: BPETokenizer = try! BPETokenizer(
        tokenizerJSON: tokenizerJSON, tokenizerConfig: directory.appendingPathComponent("smollm2_tokenizer_config.json"))

    /// The same vocabulary without a configuration: no EOS, no chat template.
    static let bare: BPETokenizer = try! BPETokenizer(tokenizerJSON: tokenizerJSON, tokenizerConfig: nil)

    struct Reference: Decodable {
        struct Alpaca: Decodable {
            struct Fields: Decodable { var instruction: String; var input: String?; var output: String }
            var record: Fields
            var source: String
            var input_ids: [Int]
            var labels: [Int]
        }
        struct Completion: Decodable {
            struct Fields: Decodable { var prompt: String; var completion: String }
            var record: Fields
            var input_ids: [Int]
            var supervised: [Bool]
        }
        struct Chat: Decodable {
            var messages: [ChatMessage]
            var text: String
            var input_ids: [Int]
            var assistant_mask: [Bool]
        }
        var eos_token_id: Int
        var alpaca: [Alpaca]
        var completion: [Completion]
        var chat: [Chat]
    }

    static let reference: Reference = try! JSONDecoder().decode(
        Reference.self, from: Data(contentsOf: directory.appendingPathComponent("data_reference.json")))

    /// A fresh temporary file holding `contents`.
    static func file(_ contents: String, name: String = "data.jsonl") throws -> URL {
        try file(Data(contents.utf8), name: name)
    }

    static func file(_ data: Data, name: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pissa-data-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent(name)
        try data.write(to: url)
        return url
    }
}

/// The `DataError` a throwing call raised, or a failure.
@discardableResult
func expectDataError<T>(
    _ body: () throws -> T, file: StaticString = #filePath, line: UInt = #line
) -> DataError? {
    do {
        _ = try body()
        XCTFail("expected a DataError", file: file, line: line)
        return nil
    } catch let error as DataError {
        return error
    } catch {
        XCTFail("expected a DataError, got \(error)", file: file, line: line)
        return nil
    }
}
