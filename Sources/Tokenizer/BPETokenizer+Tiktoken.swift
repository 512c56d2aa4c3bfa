import Formats
import Foundation

extension BPETokenizer {
    /// A byte-level tokenizer from tiktoken BPE ranks (Qwen's `qwen.tiktoken`: each line a token's
    /// bytes in base64, a space, and its rank), built as transformers' `TikTokenConverter` builds
    /// a `tokenizer.json` from them: token `rank` has id `rank`, spelled in GPT-2's byte alphabet;
    /// merges derived from the ranks (`DerivedMerges`, `.lowerIDsFirst`); `ignore_merges`, so a
    /// pre-token that is a token is that token (as tiktoken encodes); `specialTokens` are special
    /// added tokens at their ids. No BOS / EOS are added unless `special` says so.
    public convenience init(
        tiktoken url: URL, preTokenizer: PreTokenizer, specialTokens: [(content: String, id: Int)],
        special: SpecialTokens = SpecialTokens(), chatTemplate: String? = nil, defaultChatTemplate: ChatTemplate? = nil
    ) throws(TokenizerError) {
        let path = url.path
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw .unreadableFile(path: path, reason: ErrorText.reason(error))
        }
        let limit = Self.maximumVocabularySize
        var ranked: [(rank: Int, spelling: String)] = []
        var lineNumber = 0
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.isEmpty { continue }
            let fields = line.split(separator: UInt8(ascii: " "))
            guard fields.count == 2, let bytes = Data(base64Encoded: Data(fields[0])), !bytes.isEmpty,
                  let rank = Int(String(decoding: fields[1], as: UTF8.self)), (0..<limit).contains(rank)
            else {
                throw .malformedLine(path: path, line: lineNumber, reason: "expected a base64 token, a space and a rank below \(limit)")
            }
            ranked.append((rank, ByteLevel.encode(bytes)))
        }
        var size = ranked.reduce(0) { max($0, $1.rank + 1) }
        for s in specialTokens {
            guard (0..<limit).contains(s.id) else {
                throw .tokenIDOutOfRange(source: path, key: "special token \(s.content.debugDescription)", id: s.id, vocabularySize: limit)
            }
            size = max(size, s.id + 1)
        }
        var vocabulary = [String](repeating: "", count: size)
        for r in ranked {
            guard vocabulary[r.rank].isEmpty else { throw .duplicateToken(source: path, token: r.spelling, ids: [r.rank]) }
            vocabulary[r.rank] = r.spelling
        }
        try self.init(
            source: path, kind: .byteLevel(preTokenizer), vocabulary: vocabulary,
            added: specialTokens.map { AddedToken(content: $0.content, id: Int32($0.id), special: true) },
            merges: .derived(.lowerIDsFirst), special: special, ignoreMerges: true, unknownID: nil,
            chatTemplate: chatTemplate, defaultChatTemplate: defaultChatTemplate)
    }
}
