import Formats
import Foundation
import Tokenizer

/// A data file's examples and what loading it gave.
public struct LoadedDataset: Sendable {
    public var examples: [Example]
    public var report: LoadReport
}

/// Loads a training file into examples of at most `maxSeqLen` tokens.
///
/// - A `.txt` file is one text: every token supervised, split into windows of `maxSeqLen`.
/// - Anything else is JSON Lines, one `Record` per line (formats may be mixed; blank lines,
///   a UTF-8 byte-order mark and `\r\n` line ends are accepted). `.text` records longer than
///   `maxSeqLen` are split into windows like `.txt`; other records are truncated to their first
///   `maxSeqLen` tokens (counted in `LoadReport.truncated`) and dropped if no supervised token
///   is left.
///
/// A bad line throws `DataError.badLine` naming file and line; with `skipBadLines` it is
/// skipped and counted instead, keeping the first `reportedProblems` messages (in a `.txt`
/// file, the bad lines are those that are not UTF-8). Tokenizer problems (no EOS, no chat
/// template) are never skipped.
public struct DatasetLoader: Sendable {
    public var tokenizer: BPETokenizer
    public var maxSeqLen: Int
    public var skipBadLines: Bool
    public var reportedProblems = 5

    public init(tokenizer: BPETokenizer, maxSeqLen: Int = 512, skipBadLines: Bool = false) {
        self.tokenizer = tokenizer
        self.maxSeqLen = maxSeqLen
        self.skipBadLines = skipBadLines
    }

    /// Reads and loads `path` (`.txt`: plain text; otherwise JSONL).
    public func load(path: String) throws(DataError) -> LoadedDataset {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw .unreadableFile(path: path, reason: "it is a directory; training data is one .jsonl or .txt file")
        }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw .unreadableFile(path: path, reason: ErrorText.reason(error))
        }
        if (path as NSString).pathExtension.lowercased() == "txt" {
            return try load(text: data, path: path)
        }
        return try load(jsonl: data, path: path)
    }

    /// Loads JSON Lines; `path` names the source in messages.
    public func load(jsonl data: Data, path: String) throws(DataError) -> LoadedDataset {
        guard maxSeqLen >= 2 else { throw .invalidMaxSeqLen(maxSeqLen) }
        let encoder = ExampleEncoder(tokenizer: tokenizer)
        var report = LoadReport(path: path, maxSeqLen: maxSeqLen)
        var examples: [Example] = []
        let bytes = [UInt8](data)
        var start = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        var lineNumber = 0
        while start < bytes.count {
            lineNumber += 1
            let newline = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count
            var end = newline
            if end > start, bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            let line = bytes[start..<end]
            start = newline + 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            if lineNumber == 1, line.first == UInt8(ascii: "["), path.lowercased().hasSuffix(".json") {
                throw .jsonArray(path: path)
            }
            report.records += 1
            do throws(LineProblem) {
                let record = try Record(jsonLine: line)
                let example = try encoder.encode(record)
                if record.format == .text {
                    add(text: example, to: &examples, report: &report)
                } else {
                    add(example, to: &examples, report: &report)
                }
                report.formats[record.format, default: 0] += 1
            } catch {
                guard skipBadLines, !error.isTokenizerProblem else {
                    throw .badLine(path: path, line: lineNumber, problem: error)
                }
                report.skippedLines += 1
                if report.skippedMessages.count < reportedProblems {
                    report.skippedMessages.append("\(path):\(lineNumber): \(error)")
                }
            }
        }
        guard !examples.isEmpty else {
            throw .noExamples(path: path, skippedLines: report.skippedLines, problems: report.skippedMessages)
        }
        return LoadedDataset(examples: examples, report: report)
    }

    /// Loads plain UTF-8 text as one `.text` record.
    public func load(text data: Data, path: String) throws(DataError) -> LoadedDataset {
        guard maxSeqLen >= 2 else { throw .invalidMaxSeqLen(maxSeqLen) }
        var report = LoadReport(path: path, maxSeqLen: maxSeqLen)
        var examples: [Example] = []
        var text: String
        if let valid = String(validating: data, as: UTF8.self) {
            text = valid
        } else if skipBadLines {
            text = validLines(of: data, report: &report)
        } else {
            throw .badLine(path: path, line: Self.invalidUTF8Lines(data).first ?? 1, problem: .invalidUTF8)
        }
        if text.hasPrefix("\u{FEFF}") { text.removeFirst() }
        guard !text.allSatisfy(\.isWhitespace) else {
            throw .noExamples(path: path, skippedLines: report.skippedLines, problems: report.skippedMessages)
        }
        report.records = 1
        do throws(LineProblem) {
            let example = try ExampleEncoder(tokenizer: tokenizer).encode(.text(text))
            add(text: example, to: &examples, report: &report)
            report.formats[.text] = 1
        } catch {
            throw .badLine(path: path, line: 1, problem: error)
        }
        return LoadedDataset(examples: examples, report: report)
    }

    private func add(text example: Example, to examples: inout [Example], report: inout LoadReport) {
        if example.count > maxSeqLen { report.chunkedTexts += 1 }
        for window in example.windows(length: maxSeqLen) {
            examples.append(window)
            report.add(window)
        }
    }

    private func add(_ example: Example, to examples: inout [Example], report: inout LoadReport) {
        var example = example
        if example.count > maxSeqLen {
            report.truncated += 1
            example = example.truncated(to: maxSeqLen)
            if example.supervisedCount == 0 {
                report.droppedAfterTruncation += 1
                return
            }
        }
        examples.append(example)
        report.add(example)
    }

    /// The text without its lines that are not UTF-8, which are counted as skipped.
    private func validLines(of data: Data, report: inout LoadReport) -> String {
        let bad = Set(Self.invalidUTF8Lines(data))
        var kept: [String] = []
        for (i, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            if bad.contains(i + 1) {
                report.skippedLines += 1
                if report.skippedMessages.count < reportedProblems {
                    report.skippedMessages.append("\(report.path):\(i + 1): \(LineProblem.invalidUTF8)")
                }
                continue
            }
            kept.append(String(decoding: line, as: UTF8.self))
        }
        return kept.joined(separator: "\n")
    }

    /// The 1-based lines that are not valid UTF-8.
    static func invalidUTF8Lines(_ data: Data) -> [Int] {
        var lines: [Int] = []
        var line = 1
        var start = data.startIndex
        while start < data.endIndex {
            let newline = data[start...].firstIndex(of: UInt8(ascii: "\n")) ?? data.endIndex
            if String(validating: data[start..<newline], as: UTF8.self) == nil { lines.append(line) }
            line += 1
            start = newline + 1
        }
        return lines
    }
}

extension Example {
    /// Windows of at most `length` tokens covering the sequence, each starting with the last
    /// token of the one before (stride `length − 1`), so that every token after the first is a
    /// target in exactly one window. A sequence of at most `length` tokens is its only window.
    /// - Precondition: `length ≥ 2`.
    public func windows(length: Int) -> [Example] {
        precondition(length >= 2, "windows(length:) needs at least 2 tokens per window")
        guard count > length else { return [self] }
        var out: [Example] = []
        var start = 0
        while true {
            let end = min(start + length, count)
            out.append(Example(tokens: Array(tokens[start..<end]), supervised: Array(supervised[start..<end])))
            if end == count { break }
            start = end - 1
        }
        return out
    }
}
