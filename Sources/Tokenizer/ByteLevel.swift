/// GPT-2's byte-level alphabet: every byte 0...255 is spelled as one printable Unicode scalar, so
/// that byte-level BPE vocabularies are ordinary strings. Printable Latin-1 bytes ("!"..."~",
/// "¡"..."¬", "®"..."ÿ") stand for themselves; the other 68 bytes (controls, space, 0x7F...0xA0,
/// 0xAD) become U+0100, U+0101, ... in byte order, so the space 0x20 is "Ġ" (U+0120) and the
/// newline 0x0A is "Ċ" (U+010A).
enum ByteLevel {
    /// `scalar[byte]`: the character that spells `byte`.
    static let scalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            if (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte) {
                table[byte] = Unicode.Scalar(UInt8(byte))
            } else {
                table[byte] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// The inverse of `scalar`: the byte a scalar spells, or nil when it is not in the alphabet.
    static func byte(for scalar: Unicode.Scalar) -> UInt8? {
        let v = scalar.value
        switch v {
        case 0x21...0x7E, 0xA1...0xAC, 0xAE...0xFF: return UInt8(v)
        case 256..<(256 + 68): return inverseExtended[Int(v - 256)]
        default: return nil
        }
    }

    private static let inverseExtended: [UInt8] = {
        var table = [UInt8](repeating: 0, count: 68)
        for byte in 0..<256 where scalar[byte].value >= 256 { table[Int(scalar[byte].value) - 256] = UInt8(byte) }
        return table
    }()

    /// The bytes a byte-level token spells ("Ġthe" → " the"), or nil when a character of `token` is
    /// outside the alphabet (such a token is raw text, e.g. an added token).
    static func decode(_ token: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(token.unicodeScalars.count)
        for s in token.unicodeScalars {
            guard let b = byte(for: s) else { return nil }
            bytes.append(b)
        }
        return bytes
    }

    /// The byte-level spelling of raw bytes (" the" → "Ġthe").
    static func encode<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> String {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(scalar[Int(b)]) }
        return String(s)
    }

    /// Calls `body` with the UTF-8 bytes of the byte-level spelling of `bytes` (every scalar of the
    /// alphabet is below U+0800, so one or two bytes each), without building a `String`.
    static func withSpelling<R>(of bytes: UnsafeBufferPointer<UInt8>, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 2 * bytes.count) { buffer in
            var n = 0
            for b in bytes {
                let v = scalar[Int(b)].value
                if v < 0x80 {
                    buffer[n] = UInt8(v)
                    n += 1
                } else {
                    buffer[n] = 0xC0 | UInt8(v >> 6)
                    buffer[n + 1] = 0x80 | UInt8(v & 0x3F)
                    n += 2
                }
            }
            return body(UnsafeBufferPointer(rebasing: buffer[..<n]))
        }
    }
}
