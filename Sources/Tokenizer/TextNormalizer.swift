import Foundation

/// A Hugging Face `normalizer` that byte-level BPE applies to the text between added tokens
/// before pre-tokenising it. Qwen2 / Qwen2.5's `tokenizer.json` has `{"type": "NFC"}`.
///
/// As in `tokenizers`' `AddedVocabulary::extract_and_normalize`, added tokens are found in the
/// raw text first and each piece between them is normalised on its own (a combining mark right
/// after `<|im_end|>` stays a lone mark). Caveat: `tokenizers` also matches added tokens marked
/// `normalized: true` in the normalised pieces; here every added token is matched in the raw text,
/// so such a token written in a non-NFC form is not found (the tokenizers this reads, Qwen's,
/// have only ASCII added tokens, which NFC leaves as they are).
public enum TextNormalizer: String, Sendable, Equatable, CaseIterable {
    /// Unicode Normalization Form C (canonical decomposition, then canonical composition), by
    /// Foundation's `precomposedStringWithCanonicalMapping` and `composingHangulLVT` (Foundation
    /// on Linux leaves an LV syllable before a trailing jamo, 가 + ᆨ, uncomposed). Checked against
    /// `tokenizers`' NFC on every assigned code point (NFCTokenizerTests, opt-in): the one
    /// difference left is U+11935 U+11930, which Foundation composes (Unicode 13) and it does not.
    case nfc = "NFC"

    /// The UTF-8 of `text` in this form.
    func utf8(_ text: String) -> [UInt8] {
        Self.composingHangulLVT(Array(text.precomposedStringWithCanonicalMapping.utf8))
    }

    /// Composes each precomposed Hangul LV syllable (U+AC00 + 28k) followed by a trailing
    /// consonant jamo (U+11A8 ... U+11C2) into its LVT syllable, as Unicode's canonical
    /// composition does (UAX #15, Hangul). `utf8` is valid UTF-8; other bytes are kept.
    static func composingHangulLVT(_ utf8: [UInt8]) -> [UInt8] {
        // An LV syllable is EA B0 80 ... ED 9E A3 in UTF-8, a trailing jamo E1 86 A8 ... E1 87 82.
        guard utf8.count >= 6, utf8.contains(0xE1) else { return utf8 }
        func scalar(_ i: Int) -> UInt32 {
            (UInt32(utf8[i] & 0x0F) << 12) | (UInt32(utf8[i + 1] & 0x3F) << 6) | UInt32(utf8[i + 2] & 0x3F)
        }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count)
        var i = 0
        while i < utf8.count {
            if utf8[i] >= 0xEA, utf8[i] <= 0xED, i + 5 < utf8.count, utf8[i + 3] == 0xE1 {
                let s = scalar(i), t = scalar(i + 3)
                if (0xAC00..<0xD7A4).contains(s), (s - 0xAC00) % 28 == 0, (0x11A8...0x11C2).contains(t) {
                    let lvt = s + (t - 0x11A7)
                    out += [0xE0 | UInt8(lvt >> 12), 0x80 | UInt8((lvt >> 6) & 0x3F), 0x80 | UInt8(lvt & 0x3F)]
                    i += 6
                    continue
                }
            }
            out.append(utf8[i])
            i += 1
        }
        return out
    }

    /// `text` normalised, or nil when it is already normalised (always for ASCII).
    func normalize(_ text: UnsafeBufferPointer<UInt8>) -> NormalizedText? {
        guard text.contains(where: { $0 >= 0x80 }) else { return nil }
        let raw = String(decoding: text, as: UTF8.self)
        let whole = utf8(raw)
        guard !whole.elementsEqual(text) else { return nil }
        return NormalizedText(raw: raw, normalized: whole, form: self)
    }
}

/// Normalised text; `rawRanges` maps places in it back to the raw text's bytes, so that a
/// token's pre-token can be found in the caller's text (`encodeChat`'s assistant spans). The
/// map is built only when asked for: plain encoding never needs it.
struct NormalizedText {
    /// The normalised text's UTF-8.
    let bytes: [UInt8]
    private let raw: String
    private let form: TextNormalizer

    init(raw: String, normalized: [UInt8], form: TextNormalizer) {
        self.raw = raw
        self.bytes = normalized
        self.form = form
    }

    /// The raw bytes each non-empty range of normalised bytes came from: the characters (as Swift
    /// segments them) whose normal forms the range touches. NFC never composes across a grapheme
    /// boundary in practice; where the characters' forms do not add up to the whole text's, every
    /// range maps to the whole raw text.
    func rawRanges(_ ranges: [Range<Int>]) -> [Range<Int>] {
        var start: [Int] = [], end: [Int] = [], joined: [UInt8] = []
        start.reserveCapacity(bytes.count)
        end.reserveCapacity(bytes.count)
        joined.reserveCapacity(bytes.count)
        var offset = 0
        for character in raw {
            let length = character.utf8.count
            let normal = form.utf8(String(character))
            joined.append(contentsOf: normal)
            start.append(contentsOf: repeatElement(offset, count: normal.count))
            end.append(contentsOf: repeatElement(offset + length, count: normal.count))
            offset += length
        }
        guard joined == bytes else { return ranges.map { _ in 0..<offset } }
        return ranges.map { start[$0.lowerBound]..<end[$0.upperBound - 1] }
    }
}
