import Foundation
import Tokenizer
import XCTest
@testable import Training

/// Each record format → token ids and loss mask, against transformers (Fixtures/data/make_reference.py).
final class DataFormatTests: XCTestCase {
    let encoder = ExampleEncoder(tokenizer: DataFixtures.smolLM2)

    func record(_ line: String) throws -> Record { try Record(jsonLine: Array(line.utf8)) }

    /// The line's problem, or a failure when it parses.
    func problem(_ line: String, file: StaticString = #filePath, line number: UInt = #line) -> LineProblem? {
        do throws(LineProblem) {
            let r = try Record(jsonLine: Array(line.utf8))
            XCTFail("parsed \(r)", file: file, line: number)
            return nil
        } catch {
            return error
        }
    }

    /// PiSSA's train.py: source = PROMPT.format(instruction), target = output + "\n" + eos,
    /// labels = ids with the first len(tokenize(source)) set to -100.
    func testAlpacaMatchesPiSSAReference() throws {
        XCTAssertEqual(DataFixtures.reference.eos_token_id, 2)
        XCTAssertEqual(DataFixtures.smolLM2.special.eos, 2)
        for c in DataFixtures.reference.alpaca {
            let r = Record.alpaca(instruction: c.record.instruction, input: c.record.input ?? "", output: c.record.output)
            XCTAssertEqual(ExampleEncoder.alpacaSource(instruction: c.record.instruction, input: c.record.input ?? ""), c.source)
            let example = try encoder.encode(r)
            XCTAssertEqual(example.tokens, c.input_ids.map(Int32.init), c.record.instruction)
            // supervised[t] ⇔ labels[t] ≠ -100 (position 0 is never a target).
            let expected = c.labels.enumerated().map { $0.offset > 0 && $0.element != -100 }
            XCTAssertEqual(example.supervised, expected, c.record.instruction)
        }
        // Case 4's output starts with ":", which merges with the prompt's ":" into "::"; as in
        // the reference, that token stays masked.
        let merged = DataFixtures.reference.alpaca[3]
        XCTAssertNotEqual(Array(merged.input_ids.prefix(DataFixtures.smolLM2.encode(merged.source).count)),
                          DataFixtures.smolLM2.encode(merged.source))
    }

    func testAlpacaTemplatesAreTheReferenceText() {
        XCTAssertEqual(ExampleEncoder.alpacaSource(instruction: "Say {input}", input: ""),
                       "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nSay {input}\n\n### Response:")
        XCTAssertEqual(ExampleEncoder.alpacaSource(instruction: "I", input: "{instruction}"),
                       "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\nI\n\n### Input:\n{instruction}\n\n### Response:")
    }

    func testCompletionMatchesReference() throws {
        for c in DataFixtures.reference.completion {
            let example = try encoder.encode(.completion(prompt: c.record.prompt, completion: c.record.completion))
            XCTAssertEqual(example.tokens, c.input_ids.map(Int32.init))
            XCTAssertEqual(example.supervised, c.supervised)
            XCTAssertEqual(example.tokens.last, 2, "ends with EOS")
            XCTAssertTrue(example.supervised.last!, "EOS is supervised")
        }
        // The supervised tokens decode to the completion and EOS.
        let example = try encoder.encode(.completion(prompt: "Q: 1+1?\nA:", completion: " 2"))
        let target = zip(example.tokens, example.supervised).filter(\.1).map { Int($0.0) }
        XCTAssertEqual(DataFixtures.smolLM2.decode(target), " 2<|im_end|>")
        XCTAssertEqual(DataFixtures.smolLM2.decode(example.tokens.map(Int.init)), "Q: 1+1?\nA: 2<|im_end|>")
    }

    func testChatMatchesReference() throws {
        for c in DataFixtures.reference.chat {
            let example = try encoder.encode(.chat(c.messages))
            XCTAssertEqual(example.tokens, c.input_ids.map(Int32.init))
            XCTAssertEqual(Array(example.supervised.dropFirst()), Array(c.assistant_mask.dropFirst()))
        }
        let c = DataFixtures.reference.chat[1]
        let example = try encoder.encode(.chat(c.messages))
        let target = zip(example.tokens, example.supervised).filter(\.1).map { Int($0.0) }
        XCTAssertEqual(DataFixtures.smolLM2.decode(target), "Blue<|im_end|>Green, or rouge (red) — café au lait ☕.<|im_end|>")
    }

    func testTextSupervisesEveryTokenWithoutEOS() throws {
        let example = try encoder.encode(.text("To be, or not to be, that is the question."))
        XCTAssertEqual(example.tokens, DataFixtures.smolLM2.encode("To be, or not to be, that is the question.").map(Int32.init))
        XCTAssertEqual(example.supervised, [false] + Array(repeating: true, count: example.count - 1))
        XCTAssertEqual(example.supervisedCount, example.count - 1)
    }

    func testFormatIsRecognisedFromKeys() throws {
        XCTAssertEqual(try record(#"{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}"#),
                       .chat([ChatMessage(role: "user", content: "hi"), ChatMessage(role: "assistant", content: "hello")]))
        XCTAssertEqual(try record(#"{"prompt": "a", "completion": "b", "id": 7}"#), .completion(prompt: "a", completion: "b"))
        XCTAssertEqual(try record(#"{"instruction": "i", "input": "x", "output": "o"}"#), .alpaca(instruction: "i", input: "x", output: "o"))
        XCTAssertEqual(try record(#"{"instruction": "i", "output": "o"}"#), .alpaca(instruction: "i", input: "", output: "o"))
        XCTAssertEqual(try record(#"{"instruction": "i", "input": null, "output": "o"}"#), .alpaca(instruction: "i", input: "", output: "o"))
        XCTAssertEqual(try record(#"{"text": "plain \u00e9"}"#), .text("plain é"))
        // Hugging Face's Alpaca copies carry the rendered prompt as "text": the Alpaca keys win.
        XCTAssertEqual(try record(#"{"instruction": "i", "input": "", "output": "o", "text": "Instruction: i Response: o"}"#).format, .alpaca)
        XCTAssertEqual(try record(#"{"prompt": "p", "completion": "c", "text": "t"}"#).format, .completion)
    }

    func testLineProblems() {
        XCTAssertEqual(problem(#"{"prompt": "a", "completion": "b""#).map { if case .invalidJSON = $0 { return true } else { return false } }, true)
        XCTAssertEqual(problem(#"[1, 2]"#), .notAnObject)
        XCTAssertEqual(problem(#""text""#), .notAnObject)
        XCTAssertEqual(problem(#"{"question": "q", "answer": "a"}"#), .unknownFormat(keys: ["answer", "question"]))
        XCTAssertEqual(problem(#"{"prompt": "a"}"#), .missingKey("completion", format: .completion))
        XCTAssertEqual(problem(#"{"completion": "a"}"#), .missingKey("prompt", format: .completion))
        XCTAssertEqual(problem(#"{"output": "a"}"#), .missingKey("instruction", format: .alpaca))
        XCTAssertEqual(problem(#"{"prompt": "a", "completion": 5}"#), .wrongType(key: "completion", expected: "a string"))
        XCTAssertEqual(problem(#"{"text": ["a"]}"#), .wrongType(key: "text", expected: "a string"))
        XCTAssertEqual(problem(#"{"messages": "hi"}"#),
                       .wrongType(key: "messages", expected: "an array of {\"role\", \"content\"} objects"))
        XCTAssertEqual(problem(#"{"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}"#),
                       .wrongType(key: "messages[0].content", expected: "a string"))
        XCTAssertEqual(problem(#"{"messages": [{"role": "user", "content": "a"}, {"content": "b"}]}"#),
                       .missingKey("messages[1].role", format: .chat))
        XCTAssertEqual(problem(#"{"messages": [{"role": "robot", "content": "a"}]}"#), .unknownRole(key: "messages[0].role", role: "robot"))
        XCTAssertEqual(problem(#"{"messages": [{"role": "user", "content": "a"}]}"#), .noAssistantTurn)
        XCTAssertEqual(problem(#"{"messages": []}"#), .emptyContent(key: "messages"))
        XCTAssertEqual(problem(#"{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": " "}]}"#),
                       .emptyContent(key: "messages[1].content"))
        XCTAssertEqual(problem(#"{"prompt": "a", "completion": ""}"#), .emptyContent(key: "completion"))
        XCTAssertEqual(problem(#"{"text": " \n "}"#), .emptyContent(key: "text"))
        do throws(LineProblem) {
            _ = try Record(jsonLine: [0x7B, 0x22, 0xFF, 0x22, 0x7D])
            XCTFail("invalid UTF-8 accepted")
        } catch {
            XCTAssertEqual(error, .invalidUTF8)
        }
        XCTAssertEqual(LineProblem.missingKey("completion", format: .completion).description,
                       "missing key 'completion' (a completion record has \"prompt\" and \"completion\")")
    }

    func testTokenizerProblems() {
        let bare = ExampleEncoder(tokenizer: DataFixtures.bare)
        for r in [Record.completion(prompt: "a", completion: "b"), .alpaca(instruction: "i", input: "", output: "o"),
                  .chat([ChatMessage(role: "user", content: "a"), ChatMessage(role: "assistant", content: "b")])] {
            do throws(LineProblem) {
                _ = try bare.encode(r)
                XCTFail("\(r) encoded without EOS / chat template")
            } catch {
                XCTAssertTrue(error.isTokenizerProblem, "\(error)")
            }
        }
        XCTAssertNoThrow(try bare.encode(.text("no special tokens needed")))
        do throws(LineProblem) {
            _ = try bare.encode(.text("a"))
            XCTFail("one token accepted")
        } catch {
            XCTAssertEqual(error, .tooShort(tokens: 1))
        }
    }
}
