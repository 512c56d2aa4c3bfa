/// Added tokens ("<|im_start|>", "<|im_end|>", …) matched verbatim in the text before
/// pre-tokenisation, leftmost-longest, as Hugging Face `tokenizers` does for added tokens
/// (`normalized: false`, no lstrip / rstrip / single_word).
struct AddedTokenMatcher: Sendable {
    /// `candidates[firstByte]`: (content bytes, id), longest first.
    private let candidates: [[(bytes: [UInt8], id: Int32)]]

    init(_ tokens: [(content: String, id: Int32)]) {
        var table = [[(bytes: [UInt8], id: Int32)]](repeating: [], count: 256)
        for t in tokens where !t.content.isEmpty {
            let bytes = Array(t.content.utf8)
            table[Int(bytes[0])].append((bytes, t.id))
        }
        for i in 0..<256 { table[i].sort { $0.bytes.count > $1.bytes.count } }
        candidates = table
    }

    var isEmpty: Bool { candidates.allSatisfy(\.isEmpty) }

    /// The added token starting at `bytes[i]` (the longest when several do), and its length.
    @inline(__always)
    func match(_ bytes: UnsafeBufferPointer<UInt8>, at i: Int) -> (id: Int32, length: Int)? {
        let list = candidates[Int(bytes[i])]
        if list.isEmpty { return nil }
        let remaining = bytes.count - i
        for c in list where c.bytes.count <= remaining {
            var equal = true
            for k in 1..<c.bytes.count where bytes[i + k] != c.bytes[k] {
                equal = false
                break
            }
            if equal { return (c.id, c.bytes.count) }
        }
        return nil
    }
}

/// A token matched verbatim in the text before anything else runs (Hugging Face `added_tokens`;
/// GGUF tokens of type unknown, control or user-defined).
struct AddedToken: Sendable, Equatable {
    var content: String
    var id: Int32
    /// Special tokens are dropped by `decode(_:skipSpecialTokens: true)`.
    var special: Bool

    /// GGUF `tokenizer.ggml.token_type` (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused,
    /// 6 byte): types 2, 3 and 4 are added tokens, 2 and 3 special. `tokens[id]` is the content.
    static func fromTokenTypes(_ types: [Int32]?, tokens: [String], source: String) throws(TokenizerError) -> [AddedToken] {
        guard let types else { return [] }
        guard types.count == tokens.count else {
            throw .unsupported(source: source, key: "tokenizer.ggml.token_type",
                               value: "\(types.count) entries for \(tokens.count) tokens")
        }
        return types.enumerated().compactMap { id, type in
            type == 2 || type == 3 || type == 4 ? AddedToken(content: tokens[id], id: Int32(id), special: type != 4) : nil
        }
    }
}
