/// Token spellings → ids, compared byte for byte, as Hugging Face `tokenizers` (Rust `String`) and
/// llama.cpp (`std::string`) compare them. Swift `String` equality is canonical equivalence, under
/// which Gemma 3's vocabulary has 434 collisions between distinct tokens ("য়" U+09DF and "য়"
/// U+09AF U+09BC). Open addressing over the spellings' UTF-8 bytes with an FNV-1a hash, which is
/// also several times faster than hashing `String`s.
struct TokenLookup: Sendable {
    /// id + 1 of the token in each slot; 0 marks an empty slot.
    private var slots: [Int32]
    /// id → spelling: `spellings[offsets[id] ..< offsets[id + 1]]`.
    private let spellings: [UInt8]
    private let offsets: [Int32]

    /// Every non-empty spelling, by id. `duplicates` lists (spelling, first id, later id) for each
    /// spelling given twice; the first id is kept.
    init(_ tokens: [String], duplicates: inout [(token: String, first: Int, second: Int)]) {
        var spellings: [UInt8] = []
        var offsets: [Int32] = [0]
        offsets.reserveCapacity(tokens.count + 1)
        for t in tokens {
            spellings.append(contentsOf: t.utf8)
            offsets.append(Int32(spellings.count))
        }
        self.spellings = spellings
        self.offsets = offsets
        var bits = 4
        while (1 << bits) < 2 * tokens.count { bits += 1 }
        slots = [Int32](repeating: 0, count: 1 << bits)
        let mask = slots.count - 1
        spellings.withUnsafeBufferPointer { all in
            for id in tokens.indices where offsets[id + 1] > offsets[id] {
                let key = UnsafeBufferPointer(rebasing: all[Int(offsets[id])..<Int(offsets[id + 1])])
                var s = Int(truncatingIfNeeded: Self.hash(key)) & mask
                while slots[s] != 0 {
                    let other = Int(slots[s] - 1)
                    if Self.equal(all, other, offsets, key) {
                        duplicates.append((tokens[id], other, id))
                        break
                    }
                    s = (s + 1) & mask
                }
                if slots[s] == 0 { slots[s] = Int32(id + 1) }
            }
        }
    }

    @inline(__always)
    static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h ^ (h >> 29)
    }

    @inline(__always)
    private static func equal(_ all: UnsafeBufferPointer<UInt8>, _ id: Int, _ offsets: [Int32], _ key: UnsafeBufferPointer<UInt8>) -> Bool {
        let start = Int(offsets[id])
        guard Int(offsets[id + 1]) - start == key.count else { return false }
        for k in 0..<key.count where all[start + k] != key[k] { return false }
        return true
    }

    /// The id of the token spelled by `key`, or nil.
    @inline(__always)
    func id(_ key: UnsafeBufferPointer<UInt8>) -> Int32? {
        let mask = slots.count - 1
        var s = Int(truncatingIfNeeded: Self.hash(key)) & mask
        return spellings.withUnsafeBufferPointer { all in
            while true {
                let v = slots[s]
                if v == 0 { return nil }
                if Self.equal(all, Int(v - 1), offsets, key) { return v - 1 }
                s = (s + 1) & mask
            }
        }
    }

    func id(_ token: String) -> Int32? {
        var token = token
        return token.withUTF8 { id($0) }
    }

    /// Calls `body` with each id whose spelling is non-empty, and the spelling's bytes.
    func forEachSpelling(_ body: (Int32, UnsafeBufferPointer<UInt8>) -> Void) {
        spellings.withUnsafeBufferPointer { all in
            for id in 0..<(offsets.count - 1) where offsets[id + 1] > offsets[id] {
                body(Int32(id), UnsafeBufferPointer(rebasing: all[Int(offsets[id])..<Int(offsets[id + 1])]))
            }
        }
    }
}
