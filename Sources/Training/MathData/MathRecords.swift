import Foundation

/// The `{"prompt", "completion"}` records of a JSONL file, for exact-match math evaluation.
public enum MathRecords {
    /// The records, or nil when the file is not all prompt/completion records whose completion
    /// has a final answer (`#### N`): such a file has no exact-match task.
    public static func read(path: String) throws(DataError) -> [(prompt: String, completion: String)]? {
        struct Record: Decodable { var prompt: String; var completion: String }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .unreadableFile(path: path, reason: "missing or unreadable")
        }
        guard let content = String(data: data, encoding: .utf8) else {
            throw .unreadableFile(path: path, reason: "not UTF-8 text")
        }
        var records: [(prompt: String, completion: String)] = []
        for line in content.split(separator: "\n") where !line.allSatisfy(\.isWhitespace) {
            guard let r = try? JSONDecoder().decode(Record.self, from: Data(line.utf8)),
                  r.completion.contains("####"), MathAnswer.extract(from: r.completion) != nil else { return nil }
            records.append((r.prompt, r.completion))
        }
        return records
    }
}
