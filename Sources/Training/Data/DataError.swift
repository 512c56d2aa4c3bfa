/// Errors of loading training data. Each names the file, and the line where there is one:
/// `train.jsonl:12: missing key 'completion' (a completion record has "prompt" and "completion")`.
public enum DataError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file could not be read.
    case unreadableFile(path: String, reason: String)
    /// One line (1-based) is not a usable record; a loader with `skipBadLines` skips these
    /// (`isSkippable`).
    case badLine(path: String, line: Int, problem: LineProblem)
    /// A whole-file JSON array (as Stanford Alpaca's `alpaca_data.json`) instead of JSON Lines.
    case jsonArray(path: String)
    /// The file gave no example (empty, or every line skipped / emptied by truncation);
    /// `problems` are the first skipped lines' messages.
    case noExamples(path: String, skippedLines: Int, problems: [String])
    /// `maxSeqLen` below 2: a sequence needs two tokens for one prediction.
    case invalidMaxSeqLen(Int)

    /// A bad line that loading with `skipBadLines` would skip (commands that offer it say so).
    public var isSkippable: Bool {
        if case let .badLine(_, _, problem) = self { return !problem.isTokenizerProblem }
        return false
    }

    public var description: String {
        switch self {
        case let .unreadableFile(path, reason):
            return "cannot read \(path): \(reason)"
        case let .badLine(path, line, problem):
            return "\(path):\(line): \(problem)"
        case let .jsonArray(path):
            return "\(path) is one JSON array; training data is JSON Lines (one object per line). "
                + "Convert it with: jq -c '.[]' \(path) > data.jsonl"
        case let .noExamples(path, skipped, problems):
            return "\(path) gave no training example" + (skipped > 0 ? " (\(skipped) bad lines skipped)" : "")
                + problems.map { "\n  " + $0 }.joined()
        case let .invalidMaxSeqLen(n):
            return "the maximum sequence length must be at least 2 tokens (got \(n))"
        }
    }
}

/// What is wrong with one line of a JSONL file.
public enum LineProblem: Error, CustomStringConvertible, Equatable, Sendable {
    case invalidUTF8
    case invalidJSON(String)
    /// The line is JSON but not an object (an array, a string, a number…).
    case notAnObject
    /// None of the format keys is present; `keys` are the line's keys.
    case unknownFormat(keys: [String])
    case missingKey(String, format: DataFormat)
    /// `key` is a path such as `messages[2].content`.
    case wrongType(key: String, expected: String)
    /// A required string is empty or only whitespace.
    case emptyContent(key: String)
    case unknownRole(key: String, role: String)
    /// A chat record without an assistant message: nothing to learn from.
    case noAssistantTurn
    /// A record that tokenizes to fewer than two tokens: nothing to predict.
    case tooShort(tokens: Int)
    /// The tokenizer cannot encode this format (no EOS token, no usable chat template). Not a
    /// data problem: `skipBadLines` does not skip it.
    case tokenizer(String)

    /// Problems of the tokenizer rather than of the line.
    public var isTokenizerProblem: Bool {
        if case .tokenizer = self { return true }
        return false
    }

    public var description: String {
        switch self {
        case .invalidUTF8:
            return "not valid UTF-8"
        case let .invalidJSON(reason):
            return "invalid JSON: \(reason)"
        case .notAnObject:
            return "not a JSON object"
        case let .unknownFormat(keys):
            let found = keys.isEmpty ? "no keys" : "keys " + keys.sorted().map { "\"\($0)\"" }.joined(separator: ", ")
            return "unrecognised record (\(found)); expected \"messages\", \"prompt\" + \"completion\", "
                + "\"instruction\" + \"output\" (+ \"input\"), or \"text\""
        case let .missingKey(key, format):
            return "missing key '\(key)' (a \(format.rawValue) record has \(format.requiredKeys.map { "\"\($0)\"" }.joined(separator: " and ")))"
        case let .wrongType(key, expected):
            return "'\(key)' must be \(expected)"
        case let .emptyContent(key):
            return "'\(key)' is empty"
        case let .unknownRole(key, role):
            return "'\(key)' is \(role.debugDescription); roles are \"system\", \"user\" and \"assistant\""
        case .noAssistantTurn:
            return "no assistant message, so nothing to train on"
        case let .tooShort(tokens):
            return "only \(tokens) token\(tokens == 1 ? "" : "s"); a training sequence needs at least 2"
        case let .tokenizer(reason):
            return reason
        }
    }
}

extension DataFormat {
    /// The keys a record of this format must have.
    public var requiredKeys: [String] {
        switch self {
        case .chat: return ["messages"]
        case .completion: return ["prompt", "completion"]
        case .alpaca: return ["instruction", "output"]
        case .text: return ["text"]
        }
    }
}
