/// The first symbols of SentencePiece-style BPE with byte fallback (Gemma), and its decoding.
///
/// Hugging Face (`tokenizer.json`: normalizer `Replace(" ", "▁")`, model BPE with
/// `byte_fallback: true`, decoder `Sequence[Replace("▁", " "), ByteFallback, Fuse]`): the text
/// between added tokens, spaces written "▁", is one word; each character is a symbol, its token if
/// the vocabulary has it, else its UTF-8 bytes as the tokens `<0xXX>` (uppercase hex), else the
/// unknown token (consecutive unknown characters fused into one when `fuse_unk`). Then merges
/// apply, lowest rank first. llama.cpp's SPM tokenizer does the same with scores in place of ranks.
struct SentencePieceAlphabet: Sendable {
    /// Scalar → token id for U+0000...U+FFFF (-1: no such token); other scalars in `astralIDs`.
    private let basicIDs: [Int32]
    private let astralIDs: [UInt32: Int32]
    /// Byte → the id of `<0xXX>`, or -1.
    private let byteTokenIDs: [Int32]
    let unknownID: Int32?
    let fuseUnknown: Bool
    /// Token id → the byte a `<0xXX>` token stands for (as HF's ByteFallback decoder reads any
    /// 6-character `<0x..>` token), or -1.
    let fallbackByte: [Int16]

    static let space: Unicode.Scalar = "\u{2581}"

    init(vocabulary: TokenLookup, tokens: [String], unknownID: Int32?, fuseUnknown: Bool) {
        var basic = [Int32](repeating: -1, count: 0x10000)
        var astral: [UInt32: Int32] = [:]
        vocabulary.forEachSpelling { id, bytes in
            guard bytes.count <= 4, let scalar = Self.singleScalar(bytes) else { return }
            if scalar.value < 0x10000 { basic[Int(scalar.value)] = id } else { astral[scalar.value] = id }
        }
        basicIDs = basic
        astralIDs = astral
        byteTokenIDs = (0..<256).map { b in vocabulary.id(Self.byteToken(UInt8(b))) ?? -1 }
        var fallback = [Int16](repeating: -1, count: tokens.count)
        for (id, t) in tokens.enumerated() {
            if let b = Self.parseByteToken(t), vocabulary.id(t) == Int32(id) { fallback[id] = Int16(b) }
        }
        fallbackByte = fallback
        self.unknownID = unknownID
        self.fuseUnknown = fuseUnknown
    }

    /// "<0x0A>": how `tokenizers` spells a byte (`format!("<{:#04X}>", b)`).
    static func byteToken(_ b: UInt8) -> String {
        let hex = String(b, radix: 16, uppercase: true)
        return "<0x" + (hex.count == 1 ? "0" + hex : hex) + ">"
    }

    /// The byte of a token spelled `<0x..>` with two hex digits of either case, as ByteFallback reads it.
    static func parseByteToken(_ t: String) -> UInt8? {
        let u = Array(t.utf8)
        guard u.count == 6, u[0] == UInt8(ascii: "<"), u[1] == UInt8(ascii: "0"), u[2] == UInt8(ascii: "x"),
              u[5] == UInt8(ascii: ">") else { return nil }
        return UInt8(String(decoding: u[3..<5], as: UTF8.self), radix: 16)
    }

    private static func singleScalar(_ bytes: UnsafeBufferPointer<UInt8>) -> Unicode.Scalar? {
        let scalars = String(decoding: bytes, as: UTF8.self).unicodeScalars
        return scalars.count == 1 ? scalars.first : nil
    }

    /// Appends the symbols of valid UTF-8 `bytes[range]`, a space standing for "▁". As in
    /// tokenizers' `BPE::merge_word`, an unknown character's token waits until the next character
    /// that has a token: fused with the unknown characters before it (`fuseUnknown`), and placed
    /// after any byte tokens that come first ("ü日€" with no tokens for ü and 日 → €'s bytes, `<unk>`).
    func appendSymbols(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, to symbols: inout [Int32]) {
        var k = range.lowerBound
        var pendingUnknown = false
        while k < range.upperBound {
            var (v, n) = Self.scalar(bytes, k)
            k += n
            if v == 0x20 { v = Self.space.value }
            let id = v < 0x10000 ? basicIDs[Int(v)] : astralIDs[v] ?? -1
            if id >= 0 {
                if pendingUnknown, let unk = unknownID { symbols.append(unk) }
                pendingUnknown = false
                symbols.append(id)
                continue
            }
            let utf8 = String(Unicode.Scalar(v)!).utf8
            if utf8.allSatisfy({ byteTokenIDs[Int($0)] >= 0 }) {
                for b in utf8 { symbols.append(byteTokenIDs[Int(b)]) }
                continue
            }
            if pendingUnknown, !fuseUnknown, let unk = unknownID { symbols.append(unk) }
            pendingUnknown = true
        }
        if pendingUnknown, let unk = unknownID { symbols.append(unk) }
    }

    /// The scalar starting at `bytes[i]` (valid UTF-8), and its length.
    @inline(__always)
    private static func scalar(_ bytes: UnsafeBufferPointer<UInt8>, _ i: Int) -> (UInt32, Int) {
        let b0 = UInt32(bytes[i])
        if b0 < 0x80 { return (b0, 1) }
        if b0 < 0xE0 { return ((b0 & 0x1F) << 6 | UInt32(bytes[i + 1] & 0x3F), 2) }
        if b0 < 0xF0 {
            return ((b0 & 0x0F) << 12 | UInt32(bytes[i + 1] & 0x3F) << 6 | UInt32(bytes[i + 2] & 0x3F), 3)
        }
        return ((b0 & 0x07) << 18 | UInt32(bytes[i + 1] & 0x3F) << 12 | UInt32(bytes[i + 2] & 0x3F) << 6
                | UInt32(bytes[i + 3] & 0x3F), 4)
    }

    /// The text a token decodes to before byte fallback: its spelling with "▁" as a space.
    static func decodedBytes(_ token: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(token.utf8.count)
        for s in token.unicodeScalars {
            if s == space { out.append(0x20) } else { out.append(contentsOf: String(s).utf8) }
        }
        return out
    }

    /// HF's ByteFallback decoder on a run of consecutive byte tokens: their bytes when they form
    /// valid UTF-8, otherwise one U+FFFD per byte (not per ill-formed subsequence).
    static func flush(_ run: inout [UInt8], into bytes: inout [UInt8]) {
        guard !run.isEmpty else { return }
        if String(validating: run, as: UTF8.self) != nil {
            bytes.append(contentsOf: run)
        } else {
            for _ in run { bytes.append(contentsOf: [0xEF, 0xBF, 0xBD]) }
        }
        run.removeAll(keepingCapacity: true)
    }

    /// Gemma GGUF files store tokens made only of two or more spaces as spaces ("  "), where the
    /// vocabulary that transformers builds spells them "▁▁" (`gemma_tokenizer` in its GGUF loader)
    /// so that BPE reaches them from the normalized text. They then stop being added tokens.
    static func gemmaSpelling(_ token: String) -> String {
        guard token.unicodeScalars.contains(" "), token.unicodeScalars.allSatisfy(\.isPythonWhitespace) else {
            return token
        }
        return String(repeating: "\u{2581}", count: token.unicodeScalars.count)
    }
}

extension Unicode.Scalar {
    /// Python's `str.isspace` (what `str.strip()` and Jinja's `trim` remove): Unicode White_Space
    /// plus the separators U+001C...U+001F.
    var isPythonWhitespace: Bool { properties.isWhitespace || (0x1C...0x1F).contains(value) }
}
