import Foundation
import Tokenizer
import XCTest
@testable import Training

/// Files → examples: bad lines with file:line, skipping, truncation, chunking, reports.
final class DataLoaderTests: XCTestCase {
    let tokenizer = DataFixtures.smolLM2

    func loader(maxSeqLen: Int = 512, skip: Bool = false) -> DatasetLoader {
        DatasetLoader(tokenizer: tokenizer, maxSeqLen: maxSeqLen, skipBadLines: skip)
    }

    static let mixed = """
        {"prompt": "Question: 2 + 2?\\nAnswer:", "completion": " 2 + 2 = 4\\n#### 4"}
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}

        {"instruction": "Say yes.", "input": "", "output": "Yes."}
        {"text": "Once upon a time."}
        """

    func testLoadsMixedFormatsAndReports() throws {
        let url = try DataFixtures.file(Self.mixed + "\n")
        let data = try loader().load(path: url.path)
        XCTAssertEqual(data.examples.count, 4)
        let r = data.report
        XCTAssertEqual(r.records, 4)
        XCTAssertEqual(r.formats, [.completion: 1, .chat: 1, .alpaca: 1, .text: 1])
        XCTAssertEqual(r.skippedLines, 0)
        XCTAssertEqual(r.truncated, 0)
        XCTAssertEqual(r.tokens, data.examples.map(\.count).reduce(0, +))
        XCTAssertEqual(r.supervisedTokens, data.examples.map(\.supervisedCount).reduce(0, +))
        XCTAssertEqual(r.longest, data.examples.map(\.count).max())
        // Each example is what the encoder gives for its record.
        let encoder = ExampleEncoder(tokenizer: tokenizer)
        XCTAssertEqual(data.examples[2], try encoder.encode(.alpaca(instruction: "Say yes.", input: "", output: "Yes.")))
        // The report round-trips through JSON (formats as an object keyed by name).
        let json = try JSONEncoder().encode(r)
        XCTAssertTrue(String(decoding: json, as: UTF8.self).contains(#""formats":{"#))
        XCTAssertEqual(try JSONDecoder().decode(LoadReport.self, from: json), r)
    }

    func testCRLFAndByteOrderMarkAreAccepted() throws {
        let text = "\u{FEFF}" + Self.mixed.replacingOccurrences(of: "\n", with: "\r\n")
        let url = try DataFixtures.file(text)
        let a = try loader().load(path: url.path).examples
        let b = try loader().load(path: try DataFixtures.file(Self.mixed).path).examples
        XCTAssertEqual(a, b)
    }

    func testBadLineNamesFileAndLine() throws {
        let lines = Self.mixed + "\n{\"prompt\": \"a\"}\n{\"text\": \"ok\"}\n"
        let url = try DataFixtures.file(lines)
        let error = expectDataError { try loader().load(path: url.path) }
        XCTAssertEqual(error, .badLine(path: url.path, line: 6, problem: .missingKey("completion", format: .completion)))
        XCTAssertEqual(error?.description.hasPrefix("\(url.path):6: missing key 'completion'"), true, error?.description ?? "")
        // The library names no flag (commands with --skip-bad-lines add the hint); the line is skippable.
        XCTAssertEqual(error?.description.contains("--skip-bad-lines"), false)
        XCTAssertEqual(error?.isSkippable, true)

        let invalid = try DataFixtures.file("{\"text\": \"a b\"}\n{\"text\": \"a\" \"b\"}\n")
        guard case let .badLine(path, line, .invalidJSON(reason))? = expectDataError({ try loader().load(path: invalid.path) }) else {
            return XCTFail("expected invalid JSON")
        }
        XCTAssertEqual(path, invalid.path)
        XCTAssertEqual(line, 2)
        XCTAssertFalse(reason.isEmpty)
    }

    func testInvalidUTF8IsReportedWithItsLine() throws {
        var bytes = Data("{\"text\": \"fine words\"}\n{\"text\": \"".utf8)
        bytes.append(contentsOf: [0xC3, 0x28])
        bytes.append(contentsOf: Data("\"}\n".utf8))
        let url = try DataFixtures.file(bytes, name: "bad.jsonl")
        XCTAssertEqual(expectDataError { try loader().load(path: url.path) }, .badLine(path: url.path, line: 2, problem: .invalidUTF8))

        var text = Data("line one\nline two\nline ".utf8)
        text.append(0xFF)
        let txt = try DataFixtures.file(text, name: "bad.txt")
        XCTAssertEqual(expectDataError { try loader().load(path: txt.path) }, .badLine(path: txt.path, line: 3, problem: .invalidUTF8))
        // Skipping drops the lines that are not UTF-8.
        let skipped = try loader(skip: true).load(path: txt.path)
        XCTAssertEqual(skipped.report.skippedLines, 1)
        XCTAssertEqual(skipped.report.skippedMessages, ["\(txt.path):3: not valid UTF-8"])
        XCTAssertEqual(skipped.examples.map(\.tokens), [tokenizer.encode("line one\nline two").map(Int32.init)])
    }

    func testSkipBadLinesCountsThem() throws {
        var lines = [Self.mixed]
        for i in 0..<7 { lines.append(i % 2 == 0 ? "{\"prompt\": \"only\"}" : "not json \(i)") }
        lines.append(#"{"text": "last good line"}"#)
        let url = try DataFixtures.file(lines.joined(separator: "\n"))
        let data = try loader(skip: true).load(path: url.path)
        XCTAssertEqual(data.examples.count, 5)
        XCTAssertEqual(data.report.records, 12)
        XCTAssertEqual(data.report.skippedLines, 7)
        XCTAssertEqual(data.report.skippedMessages.count, 5)
        XCTAssertEqual(data.report.skippedMessages[0], "\(url.path):6: missing key 'completion' (a completion record has \"prompt\" and \"completion\")")
        XCTAssertTrue(data.report.skippedMessages[1].hasPrefix("\(url.path):7: invalid JSON"), data.report.skippedMessages[1])
        XCTAssertTrue(data.report.description.contains("skipped bad lines: 7"), data.report.description)
    }

    func testTokenizerProblemsAreNotSkipped() throws {
        let url = try DataFixtures.file(Self.mixed)
        let bare = DatasetLoader(tokenizer: DataFixtures.bare, maxSeqLen: 512, skipBadLines: true)
        guard case let .badLine(_, line, problem)? = expectDataError({ try bare.load(path: url.path) }) else {
            return XCTFail("expected a tokenizer problem")
        }
        XCTAssertEqual(line, 1)
        XCTAssertTrue(problem.isTokenizerProblem)
    }

    func testTruncationKeepsTheStartAndCounts() throws {
        let long = String(repeating: "word ", count: 40)
        let lines = [
            #"{"prompt": "\#(long)", "completion": " short"}"#,   // prompt alone is over the limit: dropped
            #"{"prompt": "Q:", "completion": " \#(long)"}"#,       // truncated, keeps supervised tokens
            #"{"prompt": "Q:", "completion": " fits"}"#,
        ].joined(separator: "\n")
        let url = try DataFixtures.file(lines)
        let data = try loader(maxSeqLen: 16).load(path: url.path)
        XCTAssertEqual(data.report.truncated, 2)
        XCTAssertEqual(data.report.droppedAfterTruncation, 1)
        XCTAssertEqual(data.examples.count, 2)
        XCTAssertEqual(data.examples[0].count, 16)
        let full = try ExampleEncoder(tokenizer: tokenizer).encode(.completion(prompt: "Q:", completion: " " + long))
        XCTAssertEqual(data.examples[0], full.truncated(to: 16))
        XCTAssertEqual(data.report.longest, 16)
        XCTAssertTrue(data.report.description.contains("truncated to 16 tokens: 2 (1 dropped"), data.report.description)
    }

    func testLongTextsAreSplitIntoOverlappingWindows() throws {
        let text = (0..<60).map { "Line \($0) of the play." }.joined(separator: "\n")
        let url = try DataFixtures.file(text, name: "play.txt")
        let data = try loader(maxSeqLen: 32).load(path: url.path)
        let all = tokenizer.encode(text).map(Int32.init)
        XCTAssertGreaterThan(all.count, 64)
        XCTAssertEqual(data.report.chunkedTexts, 1)
        XCTAssertEqual(data.report.formats, [.text: 1])
        XCTAssertEqual(data.report.truncated, 0)
        XCTAssertTrue(data.examples.allSatisfy { $0.count <= 32 && $0.count >= 2 })
        // Windows overlap by one token; together they are the text, and every token but the
        // first is a target exactly once.
        var joined = data.examples[0].tokens
        for w in data.examples.dropFirst() {
            XCTAssertEqual(w.tokens.first, joined.last)
            joined += w.tokens.dropFirst()
        }
        XCTAssertEqual(joined, all)
        XCTAssertEqual(data.report.supervisedTokens, all.count - 1)
        XCTAssertEqual(data.examples.count, (all.count - 1 + 30) / 31)

        // A JSONL text record is split the same way.
        let line = try JSONEncoder().encode(["text": text])
        let jsonl = try loader(maxSeqLen: 32).load(path: try DataFixtures.file(line, name: "t.jsonl").path)
        XCTAssertEqual(jsonl.examples, data.examples)
    }

    func testWindowsOfShortSequencesAreTheSequence() {
        let e = Example(tokens: [5, 6, 7], supervised: [true, true, true])
        XCTAssertEqual(e.supervised, [false, true, true], "nothing predicts token 0")
        XCTAssertEqual(e.windows(length: 3), [e])
        XCTAssertEqual(e.windows(length: 2), [Example(tokens: [5, 6], supervised: [false, true]),
                                              Example(tokens: [6, 7], supervised: [false, true])])
    }

    func testFileLevelErrors() throws {
        let missing = "/nonexistent/data.jsonl"
        guard case .unreadableFile(missing, _)? = expectDataError({ try loader().load(path: missing) }) else {
            return XCTFail("expected unreadable file")
        }
        let array = try DataFixtures.file(#"[{"text": "a b c"}]"#, name: "alpaca_data.json")
        let error = expectDataError { try loader().load(path: array.path) }
        XCTAssertEqual(error, .jsonArray(path: array.path))
        XCTAssertEqual(error?.description.contains("jq -c"), true)
        let empty = try DataFixtures.file("\n\n", name: "empty.jsonl")
        XCTAssertEqual(expectDataError { try loader().load(path: empty.path) }, .noExamples(path: empty.path, skippedLines: 0, problems: []))
        let allBad = try DataFixtures.file("x\ny\n", name: "bad.jsonl")
        let none = expectDataError { try loader(skip: true).load(path: allBad.path) }
        guard case let .noExamples(path, skipped, problems)? = none else { return XCTFail("expected no examples") }
        XCTAssertEqual(path, allBad.path)
        XCTAssertEqual(skipped, 2)
        XCTAssertEqual(problems.count, 2)
        XCTAssertTrue(none!.description.contains("\(allBad.path):2: invalid JSON"), none!.description)
        XCTAssertEqual(expectDataError { try loader(maxSeqLen: 1).load(path: allBad.path) }, .invalidMaxSeqLen(1))
    }
}
