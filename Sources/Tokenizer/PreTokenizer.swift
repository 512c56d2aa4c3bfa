/// How text is cut into pre-tokens before BPE runs on each piece. Each case is one of the regular
/// expressions Hugging Face `tokenizers` and llama.cpp use, implemented by hand over Unicode scalars
/// (letter \p{L}, number \p{N}, whitespace \s = White_Space, other), so that no regex engine runs.
public enum PreTokenizer: String, Sendable, Codable, CaseIterable {
    /// GPT-2's `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    /// (tokenizers `ByteLevel(use_regex: true)`; llama.cpp `gpt-2`). Contractions are
    /// case-sensitive ASCII, the optional leading character is the space U+0020 only.
    case gpt2
    /// Every numeric scalar (\p{N}) is a piece on its own, then GPT-2's regex runs on the text
    /// between them: tokenizers `Sequence[Digits(individual_digits: true), ByteLevel]`, llama.cpp
    /// `smollm` (SmolLM, SmolLM2) and `starcoder`, whose `regex_exprs` are `\p{N}` then GPT-2's.
    case smolLM
    /// Llama 3's `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
    /// ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+` (tokenizers `Split(…, isolated)` then
    /// `ByteLevel(use_regex: false)`; llama.cpp `llama-bpe`). Used with `ignore_merges`.
    case llama3
    /// Qwen's: Llama 3's regex with `\p{N}` in place of `\p{N}{1,3}`, every digit a piece
    /// (`PAT_STR` of Qwen's tiktoken tokenizer, Qwen2's `tokenizer.json`; llama.cpp `qwen2`).
    case qwen2

    /// The kind named by GGUF `tokenizer.ggml.pre`, as llama.cpp's `llama-vocab.cpp` maps it.
    public init(ggufPre: String) throws(TokenizerError) {
        switch ggufPre {
        case "gpt-2", "gpt2": self = .gpt2
        case "smollm", "starcoder": self = .smolLM
        case "llama-bpe", "llama3", "llama-v3": self = .llama3
        case "qwen2", "deepseek-r1-qwen": self = .qwen2
        default: throw .unknownPreTokenizer(source: "tokenizer.ggml.pre", description: ggufPre)
        }
    }

    /// Whether BPE first looks the whole piece up in the vocabulary (tokenizers `ignore_merges`):
    /// Llama 3's `tokenizer.json` says so. Qwen2's says nothing (false) and llama.cpp looks up no
    /// whole pieces for it.
    var ignoresMerges: Bool { self == .llama3 }
}

/// The regex character classes of a scalar.
enum ScalarClass: UInt8 {
    case letter, number, whitespace, other

    /// \p{L} = Lu Ll Lt Lm Lo, \p{N} = Nd Nl No, \s = White_Space (Oniguruma's Unicode classes;
    /// Rust's `char::is_numeric`, used by the Digits pre-tokenizer, is the same \p{N}).
    static func of(_ scalar: Unicode.Scalar) -> ScalarClass {
        let p = scalar.properties
        if p.isWhitespace { return .whitespace }
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        default: return .other
        }
    }

    /// Classes of U+0000...U+FFFF, computed once (64 KiB); astral scalars are classified on demand.
    static let basicPlane: [ScalarClass] = (0..<0x10000).map { v in
        Unicode.Scalar(UInt32(v)).map(ScalarClass.of) ?? .other   // surrogates never occur in a String
    }
}

/// Iterates over the pre-tokens of valid UTF-8 `bytes[range]` as byte ranges.
struct PreTokenSplitter {
    let bytes: UnsafeBufferPointer<UInt8>
    let kind: PreTokenizer
    private(set) var position: Int
    let end: Int
    /// `.smolLM`: the start of the next numeric scalar at or after `position` (or `end`); -1 when unknown.
    private var pieceEnd = -1

    init(bytes: UnsafeBufferPointer<UInt8>, range: Range<Int>, kind: PreTokenizer) {
        self.bytes = bytes
        self.kind = kind
        self.position = range.lowerBound
        self.end = range.upperBound
    }

    mutating func next() -> Range<Int>? {
        let start = position
        guard start < end else { return nil }
        switch kind {
        case .gpt2:
            position = gpt2(start, end)
        case .llama3:
            position = llama3(start, end, maxDigits: 3)
        case .qwen2:
            position = llama3(start, end, maxDigits: 1)
        case .smolLM:
            if start >= pieceEnd {
                let (c, n) = scalarClass(start)
                if c == .number {
                    position = start + n
                    pieceEnd = -1
                    return start..<position
                }
                var k = start + n
                while k < end {
                    let (c, n) = scalarClass(k)
                    if c == .number { break }
                    k += n
                }
                pieceEnd = k
            }
            position = gpt2(start, pieceEnd)
        }
        return start..<position
    }

    // MARK: - Scalars

    private static let asciiClass: [ScalarClass] = (0..<128).map { ScalarClass.of(Unicode.Scalar(UInt8($0))) }

    /// The class of the scalar starting at `i`, and its length in bytes.
    @inline(__always)
    func scalarClass(_ i: Int) -> (ScalarClass, Int) {
        let b0 = bytes[i]
        if b0 < 0x80 { return (Self.asciiClass[Int(b0)], 1) }
        if b0 < 0xE0 {
            let v = (UInt32(b0 & 0x1F) << 6) | UInt32(bytes[i + 1] & 0x3F)
            return (ScalarClass.basicPlane[Int(v)], 2)
        }
        if b0 < 0xF0 {
            let v = (UInt32(b0 & 0x0F) << 12) | (UInt32(bytes[i + 1] & 0x3F) << 6) | UInt32(bytes[i + 2] & 0x3F)
            return (ScalarClass.basicPlane[Int(v)], 3)
        }
        let v = (UInt32(b0 & 0x07) << 18) | (UInt32(bytes[i + 1] & 0x3F) << 12)
            | (UInt32(bytes[i + 2] & 0x3F) << 6) | UInt32(bytes[i + 3] & 0x3F)
        return (Unicode.Scalar(v).map(ScalarClass.of) ?? .other, 4)
    }

    /// The end of the run of scalars of class `c` starting at `k`.
    @inline(__always)
    private func run(of c: ScalarClass, from k: Int, to hi: Int) -> Int {
        var k = k
        while k < hi {
            let (ck, n) = scalarClass(k)
            if ck != c { break }
            k += n
        }
        return k
    }

    /// `\s+(?!\S)|\s+` at a whitespace scalar `i`: the whole run when it reaches `hi`, otherwise
    /// the run minus its last scalar (which then leads the next piece), but at least one scalar.
    @inline(__always)
    private func whitespace(_ i: Int, _ hi: Int) -> Int {
        var k = i
        var last = i
        while k < hi {
            let (c, n) = scalarClass(k)
            if c != .whitespace { break }
            last = k
            k += n
        }
        return k == hi || last == i ? k : last
    }

    // MARK: - GPT-2

    private func gpt2(_ i: Int, _ hi: Int) -> Int {
        let b = bytes[i]
        if b == UInt8(ascii: "'"), i + 1 < hi {
            switch bytes[i + 1] {
            case UInt8(ascii: "s"), UInt8(ascii: "t"), UInt8(ascii: "m"), UInt8(ascii: "d"): return i + 2
            case UInt8(ascii: "r"), UInt8(ascii: "v"):
                if i + 2 < hi, bytes[i + 2] == UInt8(ascii: "e") { return i + 3 }
            case UInt8(ascii: "l"):
                if i + 2 < hi, bytes[i + 2] == UInt8(ascii: "l") { return i + 3 }
            default: break
            }
        }
        var (c, n) = scalarClass(i)
        var j = i
        if b == UInt8(ascii: " "), i + 1 < hi {
            let (c1, n1) = scalarClass(i + 1)
            if c1 != .whitespace { (c, n, j) = (c1, n1, i + 1) }
        }
        if c == .whitespace { return whitespace(i, hi) }
        return run(of: c, from: j + n, to: hi)
    }

    // MARK: - Llama 3 and Qwen

    /// The length of a case-insensitive contraction at `i` ('s 't 're 've 'm 'll 'd), or 0.
    private func contraction(_ i: Int, _ hi: Int) -> Int {
        guard bytes[i] == UInt8(ascii: "'"), i + 1 < hi else { return 0 }
        let c = bytes[i + 1] | 0x20
        switch c {
        case UInt8(ascii: "s"), UInt8(ascii: "t"), UInt8(ascii: "m"), UInt8(ascii: "d"):
            return bytes[i + 1] < 0x80 ? 2 : 0
        case UInt8(ascii: "r"), UInt8(ascii: "v"):
            return i + 2 < hi && bytes[i + 1] < 0x80 && bytes[i + 2] | 0x20 == UInt8(ascii: "e") ? 3 : 0
        case UInt8(ascii: "l"):
            return i + 2 < hi && bytes[i + 1] < 0x80 && bytes[i + 2] | 0x20 == UInt8(ascii: "l") ? 3 : 0
        default:
            // U+017F LATIN SMALL LETTER LONG S case-folds to "s".
            return i + 2 < hi && bytes[i + 1] == 0xC5 && bytes[i + 2] == 0xBF ? 3 : 0
        }
    }

    /// Llama 3's regex, or Qwen's with `maxDigits` 1.
    private func llama3(_ i: Int, _ hi: Int, maxDigits: Int) -> Int {
        let m = contraction(i, hi)
        if m > 0 { return i + m }
        let b = bytes[i]
        let (c, n) = scalarClass(i)
        let isNewline = b == 0x0A || b == 0x0D
        switch c {
        case .letter:
            return run(of: .letter, from: i + n, to: hi)
        case .number:
            var k = i + n
            for _ in 0..<(maxDigits - 1) where k < hi {
                let (ck, nk) = scalarClass(k)
                if ck != .number { break }
                k += nk
            }
            return k
        case .other, .whitespace:
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if !isNewline, i + n < hi, scalarClass(i + n).0 == .letter { return run(of: .letter, from: i + n, to: hi) }
            //  ?[^\s\p{L}\p{N}]+[\r\n]*
            var j = i
            if b == UInt8(ascii: " "), i + 1 < hi, scalarClass(i + 1).0 == .other { j = i + 1 }
            if scalarClass(j).0 == .other {
                var k = run(of: .other, from: j, to: hi)
                while k < hi, bytes[k] == 0x0A || bytes[k] == 0x0D { k += 1 }
                return k
            }
            // \s*[\r\n]+ : through the last CR or LF of the whitespace run
            var k = i
            var afterNewline = -1
            while k < hi {
                let (ck, nk) = scalarClass(k)
                if ck != .whitespace { break }
                if bytes[k] == 0x0A || bytes[k] == 0x0D { afterNewline = k + 1 }
                k += nk
            }
            if afterNewline > 0 { return afterNewline }
            return whitespace(i, hi)
        }
    }
}
