/// Decodes ids one at a time during generation: each `append` returns the text completed so far
/// and holds back the bytes of a character still being spelled across tokens (an emoji is often
/// three or four byte tokens). The concatenation of every `append` and the final `finish()` is
/// exactly `tokenizer.decode(ids)`. A SentencePiece tokenizer's byte tokens are held until a token
/// of another kind ends their run, since a later byte can still turn the whole run into U+FFFDs.
public struct StreamingDecoder: Sendable {
    public let tokenizer: BPETokenizer
    public let skipSpecialTokens: Bool
    /// Bytes not yet returned: at most the first 1...3 bytes of one UTF-8 sequence.
    private var pending: [UInt8] = []
    /// SentencePiece: the bytes of the current run of byte tokens.
    private var byteRun: [UInt8] = []

    init(tokenizer: BPETokenizer, skipSpecialTokens: Bool) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
    }

    /// The text that `id` completes (possibly empty).
    public mutating func append(_ id: Int) -> String {
        tokenizer.appendBytes(of: id, skipSpecialTokens: skipSpecialTokens, to: &pending, byteRun: &byteRun)
        let keep = Self.incompleteSuffixLength(pending)
        let text = String(decoding: pending[..<(pending.count - keep)], as: UTF8.self)
        pending.removeFirst(pending.count - keep)
        return text
    }

    /// The text that `ids` complete.
    public mutating func append(contentsOf ids: some Sequence<Int>) -> String {
        var text = ""
        for id in ids { text += append(id) }
        return text
    }

    /// The held-back bytes (as U+FFFD where the stream ended inside a character); resets the decoder.
    public mutating func finish() -> String {
        SentencePieceAlphabet.flush(&byteRun, into: &pending)
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// The length of the longest suffix of `bytes` that is a proper prefix of a well-formed UTF-8
    /// sequence (its lead byte and valid continuation bytes so far), 0 when there is none.
    /// Decoding up to such a suffix equals what decoding the whole stream gives for those bytes:
    /// a lead byte always starts a new sequence for the maximal-subpart rule.
    static func incompleteSuffixLength(_ bytes: [UInt8]) -> Int {
        let n = bytes.count
        for k in 1...min(3, max(n, 1)) where n >= k {
            let lead = bytes[n - k]
            if lead & 0xC0 == 0x80 { continue }            // continuation: look further back
            let length: Int
            var secondRange: ClosedRange<UInt8> = 0x80...0xBF
            switch lead {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; secondRange = 0xA0...0xBF
            case 0xED: length = 3; secondRange = 0x80...0x9F
            case 0xE1...0xEF: length = 3
            case 0xF0: length = 4; secondRange = 0x90...0xBF
            case 0xF4: length = 4; secondRange = 0x80...0x8F
            case 0xF1...0xF3: length = 4
            default: return 0                              // ASCII or a byte that never leads
            }
            guard k < length else { return 0 }             // the sequence is complete (or too long)
            if k >= 2 && !secondRange.contains(bytes[n - k + 1]) { return 0 }
            return k
        }
        return 0
    }
}
