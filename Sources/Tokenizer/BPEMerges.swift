/// Merge ranks keyed by the pair of token ids: an open-addressing hash table with a multiplicative
/// hash (the standard library's SipHash dominates the merge loop otherwise).
struct MergeTable: Sendable {
    private static let empty = UInt64.max
    private var keys: [UInt64]      // (left << 32) | right, or `empty`
    private var values: [UInt64]    // (rank << 32) | merged id
    private let shift: UInt64

    /// `merges[rank] = (left, right, merged)`; a pair listed twice keeps its last rank, as in
    /// Hugging Face `tokenizers`.
    init(_ merges: [(left: Int32, right: Int32, merged: Int32)]) {
        var bits = 4
        while (1 << bits) < 2 * merges.count { bits += 1 }
        keys = [UInt64](repeating: Self.empty, count: 1 << bits)
        values = [UInt64](repeating: 0, count: 1 << bits)
        shift = UInt64(64 - bits)
        for (rank, m) in merges.enumerated() {
            let key = UInt64(UInt32(bitPattern: m.left)) << 32 | UInt64(UInt32(bitPattern: m.right))
            var slot = slot(for: key)
            while keys[slot] != Self.empty && keys[slot] != key { slot = (slot + 1) & (keys.count - 1) }
            keys[slot] = key
            values[slot] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: m.merged))
        }
    }

    /// The pairs in rank order (a pair listed twice appears once, at the rank it kept): the
    /// merge list that builds an equal table. Used to export the tokenizer.
    func pairsByRank() -> [(left: Int32, right: Int32)] {
        var ranked: [(rank: UInt64, left: Int32, right: Int32)] = []
        for (key, value) in zip(keys, values) where key != Self.empty {
            ranked.append((value >> 32, Int32(bitPattern: UInt32(key >> 32)), Int32(bitPattern: UInt32(key & 0xFFFF_FFFF))))
        }
        ranked.sort { $0.rank < $1.rank }
        return ranked.map { ($0.left, $0.right) }
    }

    @inline(__always)
    private func slot(for key: UInt64) -> Int { Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift) }

    /// `(rank << 32) | merged` for the pair, or `UInt64.max` when the pair never merges.
    @inline(__always)
    func lookup(_ left: Int32, _ right: Int32) -> UInt64 {
        let key = UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
        var slot = slot(for: key)
        while true {
            let k = keys[slot]
            if k == key { return values[slot] }
            if k == Self.empty { return .max }
            slot = (slot + 1) & (keys.count - 1)
        }
    }

    /// Applies merges to `symbols` until none applies, always the lowest-ranked pair first and,
    /// among equal ranks, the leftmost: byte-level BPE as `tokenizers` and llama.cpp do it.
    func apply(to symbols: inout [Int32]) {
        if symbols.count < 2 { return }
        if symbols.count <= 64 { applyByScanning(&symbols) } else { applyWithHeap(&symbols) }
    }

    /// O(n²) and allocation-free: the common case of short words.
    func applyByScanning(_ symbols: inout [Int32]) {
        var ranks = [UInt64](repeating: .max, count: symbols.count - 1)
        for p in 0..<(symbols.count - 1) { ranks[p] = lookup(symbols[p], symbols[p + 1]) }
        while true {
            var best = 0
            for p in 1..<max(ranks.count, 1) where ranks[p] < ranks[best] { best = p }
            guard !ranks.isEmpty, ranks[best] != .max else { return }
            symbols[best] = Int32(truncatingIfNeeded: ranks[best] & 0xFFFF_FFFF)
            symbols.remove(at: best + 1)
            ranks.remove(at: best)
            if best > 0 { ranks[best - 1] = lookup(symbols[best - 1], symbols[best]) }
            if best < ranks.count { ranks[best] = lookup(symbols[best], symbols[best + 1]) }
        }
    }

    /// O(n log n): a linked list of symbols and a min-heap of candidate merges keyed by
    /// (rank, position). Ranks are unique per pair, so an entry is still valid exactly when the
    /// pair now at its position has the same rank.
    func applyWithHeap(_ symbols: inout [Int32]) {
        let n = symbols.count
        var next = [Int32](unsafeUninitializedCapacity: n) { b, c in for i in 0..<n { b[i] = Int32(i + 1) }; c = n }
        var prev = [Int32](unsafeUninitializedCapacity: n) { b, c in for i in 0..<n { b[i] = Int32(i - 1) }; c = n }
        next[n - 1] = -1
        var alive = [Bool](repeating: true, count: n)
        var heap = MinHeap()
        for p in 0..<(n - 1) {
            let r = lookup(symbols[p], symbols[p + 1])
            if r != .max { heap.push((r & 0xFFFF_FFFF_0000_0000) | UInt64(p)) }
        }
        while let top = heap.pop() {
            let p = Int(top & 0xFFFF_FFFF)
            let rank = top >> 32
            guard alive[p], next[p] >= 0 else { continue }
            let q = Int(next[p])
            let r = lookup(symbols[p], symbols[q])
            guard r != .max, r >> 32 == rank else { continue }
            symbols[p] = Int32(truncatingIfNeeded: r & 0xFFFF_FFFF)
            alive[q] = false
            next[p] = next[q]
            if next[q] >= 0 { prev[Int(next[q])] = Int32(p) }
            if prev[p] >= 0 {
                let l = Int(prev[p])
                let rl = lookup(symbols[l], symbols[p])
                if rl != .max { heap.push((rl & 0xFFFF_FFFF_0000_0000) | UInt64(l)) }
            }
            if next[p] >= 0 {
                let rr = lookup(symbols[p], symbols[Int(next[p])])
                if rr != .max { heap.push((rr & 0xFFFF_FFFF_0000_0000) | UInt64(p)) }
            }
        }
        var out: [Int32] = []
        out.reserveCapacity(n)
        var p = 0
        while p >= 0 {
            out.append(symbols[p])
            p = Int(next[p])
        }
        symbols = out
    }
}

/// A binary min-heap of packed UInt64 keys.
private struct MinHeap {
    private var items: [UInt64] = []

    mutating func push(_ x: UInt64) {
        items.append(x)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if items[parent] <= x { break }
            items[i] = items[parent]
            i = parent
        }
        items[i] = x
    }

    mutating func pop() -> UInt64? {
        guard let last = items.popLast() else { return nil }
        guard !items.isEmpty else { return last }
        let top = items[0]
        var i = 0
        let n = items.count
        while true {
            var child = 2 * i + 1
            if child >= n { break }
            if child + 1 < n && items[child + 1] < items[child] { child += 1 }
            if last <= items[child] { break }
            items[i] = items[child]
            i = child
        }
        items[i] = last
        return top
    }
}

/// Pre-token bytes → token ids, so that each distinct word is merged once. Open addressing over a
/// byte arena; cleared when it reaches `maxEntries`.
struct ChunkCache: ~Copyable {
    private struct Slot {
        var hash: UInt64 = 0
        var keyStart: Int32 = -1        // -1: empty
        var keyLength: Int32 = 0
        var idsStart: Int32 = 0
        var idsLength: Int32 = 0
    }

    private var slots = [Slot](repeating: Slot(), count: 1 << 12)
    private var keyBytes: [UInt8] = []
    private var ids: [Int32] = []
    private var count = 0
    private let maxEntries = 1 << 19

    static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h
    }

    /// Appends the cached ids of `key` to `out`; false when `key` is not cached.
    func append(_ key: UnsafeBufferPointer<UInt8>, hash: UInt64, to out: inout [Int]) -> Bool {
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: hash) & mask
        while true {
            let s = slots[i]
            if s.keyStart < 0 { return false }
            if s.hash == hash && Int(s.keyLength) == key.count {
                let equal = keyBytes.withUnsafeBufferPointer { stored in
                    memcmpEqual(stored.baseAddress! + Int(s.keyStart), key.baseAddress!, key.count)
                }
                if equal {
                    for j in Int(s.idsStart)..<Int(s.idsStart + s.idsLength) { out.append(Int(ids[j])) }
                    return true
                }
            }
            i = (i + 1) & mask
        }
    }

    mutating func insert(_ key: UnsafeBufferPointer<UInt8>, hash: UInt64, ids value: [Int32]) {
        if count >= maxEntries { self = ChunkCache() }
        if 2 * (count + 1) > slots.count { grow() }
        let slot = Slot(hash: hash, keyStart: Int32(keyBytes.count), keyLength: Int32(key.count),
                        idsStart: Int32(ids.count), idsLength: Int32(value.count))
        keyBytes.append(contentsOf: key)
        ids.append(contentsOf: value)
        place(slot)
        count += 1
    }

    private mutating func place(_ slot: Slot) {
        let mask = slots.count - 1
        var i = Int(truncatingIfNeeded: slot.hash) & mask
        while slots[i].keyStart >= 0 { i = (i + 1) & mask }
        slots[i] = slot
    }

    private mutating func grow() {
        let old = slots
        slots = [Slot](repeating: Slot(), count: old.count * 2)
        for s in old where s.keyStart >= 0 { place(s) }
    }
}

@inline(__always)
private func memcmpEqual(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ n: Int) -> Bool {
    for i in 0..<n where a[i] != b[i] { return false }
    return true
}
