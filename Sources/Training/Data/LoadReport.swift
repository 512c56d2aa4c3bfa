/// What loading one data file gave, for the user (`pissa data inspect`, the start of training).
public struct LoadReport: Codable, Sendable, Equatable, CustomStringConvertible {
    public var path: String
    /// Records read: non-blank JSONL lines, or 1 for a `.txt` file.
    public var records = 0
    /// Records per format (all parsed records, including any dropped after truncation).
    public var formats: [DataFormat: Int] = [:]
    /// Training sequences (records, or windows of long texts).
    public var examples = 0
    /// Bad lines skipped (`skipBadLines`), and the first few of their messages ("file:line: problem").
    public var skippedLines = 0
    public var skippedMessages: [String] = []
    /// Non-text sequences longer than `maxSeqLen`, cut to their first `maxSeqLen` tokens…
    public var truncated = 0
    /// …of which this many lost every supervised token and were dropped.
    public var droppedAfterTruncation = 0
    /// Texts longer than `maxSeqLen`, split into windows (see `Example.windows(length:)`).
    public var chunkedTexts = 0
    public var maxSeqLen: Int
    /// Tokens in all examples, and how many of them are loss terms.
    public var tokens = 0
    public var supervisedTokens = 0
    /// The longest example, in tokens.
    public var longest = 0

    public init(path: String, maxSeqLen: Int) {
        self.path = path
        self.maxSeqLen = maxSeqLen
    }

    /// Counts one kept example.
    mutating func add(_ example: Example) {
        examples += 1
        tokens += example.count
        supervisedTokens += example.supervisedCount
        longest = max(longest, example.count)
    }

    public var description: String {
        var lines: [String] = []
        let formatList = formats.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key.rawValue)" }.joined(separator: ", ")
        lines.append("\(path): \(records) records (\(formatList.isEmpty ? "none" : formatList)) → \(examples) examples")
        lines.append("tokens: \(tokens) (\(supervisedTokens) supervised), longest \(longest), limit \(maxSeqLen)")
        if truncated > 0 {
            var line = "truncated to \(maxSeqLen) tokens: \(truncated)"
            if droppedAfterTruncation > 0 { line += " (\(droppedAfterTruncation) dropped: nothing supervised left)" }
            lines.append(line)
        }
        if chunkedTexts > 0 { lines.append("texts split into \(maxSeqLen)-token windows: \(chunkedTexts)") }
        if skippedLines > 0 {
            lines.append("skipped bad lines: \(skippedLines)")
            lines += skippedMessages.map { "  " + $0 }
            if skippedLines > skippedMessages.count { lines.append("  …") }
        }
        return lines.joined(separator: "\n")
    }
}

extension DataFormat: CodingKeyRepresentable {}
