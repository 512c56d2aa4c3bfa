import Dispatch
import Foundation

/// Dequantisation of ggml blocks to `Float`, value for value what llama.cpp's reference
/// `dequantize_row_*` (ggml/src/ggml-quants.c) computes, with the block layouts of ggml-common.h.
///
/// Each formula keeps ggml's order of float operations (`q·d + m`, `(d·sc)·q − dmin·m`,
/// `(d·sc)·q`), and Swift does not fuse them into FMAs, so results equal gguf-py's numpy
/// reference bit for bit. A block (`type.blockSize` values in `type.typeSize` bytes):
/// - Q4_0: f16 d, 16 bytes; value j from the low nibble of byte j, j+16 from its high nibble;
///   x = (q − 8)·d.
/// - Q4_1: f16 d, f16 m, 16 bytes of nibbles as Q4_0; x = q·d + m.
/// - Q5_0: f16 d, 32 high bits qh (bit j for value j), 16 bytes of nibbles; x = (q − 16)·d.
/// - Q5_1: f16 d, f16 m, qh, nibbles; x = q·d + m.
/// - Q8_0: f16 d, 32 int8; x = q·d.
/// - Q4_K (256 values): f16 d, f16 dmin, 12 bytes of eight 6-bit scales and mins, 128 bytes; per
///   64 values, the low nibbles of 32 bytes then their high nibbles, each half with its own
///   scale and min: x = (d·sc)·q − dmin·m.
/// - Q5_K: as Q4_K plus 32 bytes qh; bit 2i (low half) / 2i+1 (high half) of qh[l] adds 16.
/// - Q6_K: 128 bytes low nibbles, 64 bytes 2-bit highs, 16 int8 scales (one per 16 values),
///   f16 d last; x = (d·sc)·(q − 32).
enum GGMLDequantizer {
    /// Elements from which a tensor is split across the cores. Measured (2 cores, SmolLM2 and
    /// Gemma 3): the kernels run at 0.1–0.2 ns/value, so below this a tensor is memory- or
    /// allocation-bound and two threads gain nothing; a large embedding (28 M, 168 M values) is
    /// bound by the page faults of its fresh output array, which two threads take ≈ 1.4–1.8× faster.
    static let parallelThreshold = 1 << 22

    /// Dequantises `count` values (a whole number of blocks of `type`, which must be
    /// dequantisable) from `source` into `destination`. With `parallel`, large tensors are split
    /// into block-aligned chunks run on all cores.
    static func dequantize(
        _ type: GGMLType, _ source: UnsafeRawPointer, into destination: UnsafeMutablePointer<Float>,
        count: Int, parallel: Bool
    ) {
        precondition(type.isDequantizable && count % type.blockSize == 0, "dequantize: \(type.name) × \(count)")
        let blocks = count / type.blockSize
        let lanes = parallel && count >= parallelThreshold ? ProcessInfo.processInfo.activeProcessorCount : 1
        guard lanes > 1 else {
            dequantizeBlocks(type, source, destination, blocks: blocks)
            return
        }
        let chunks = lanes * 4  // a little slack for an uneven machine
        let perChunk = (blocks + chunks - 1) / chunks
        let pointers = SendablePointers(source: source, destination: destination)
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            let first = chunk * perChunk
            let last = min(blocks, first + perChunk)
            guard first < last else { return }
            dequantizeBlocks(type, pointers.source + first * type.typeSize,
                             pointers.destination + first * type.blockSize, blocks: last - first)
        }
    }

    private struct SendablePointers: @unchecked Sendable {
        let source: UnsafeRawPointer
        let destination: UnsafeMutablePointer<Float>
    }

    static func dequantizeBlocks(_ type: GGMLType, _ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        switch type {
        case .f32: UnsafeMutableRawPointer(y).copyMemory(from: x, byteCount: 4 * blocks)
        case .f16: for i in 0..<blocks { y[i] = half(x, 2 * i) }
        case .bf16: for i in 0..<blocks { y[i] = Float(bitPattern: UInt32(u16(x, 2 * i)) << 16) }
        case .q4_0: for b in 0..<blocks { q4_0(x + 18 * b, y + 32 * b) }
        case .q4_1: for b in 0..<blocks { q4_1(x + 20 * b, y + 32 * b) }
        case .q5_0: for b in 0..<blocks { q5_0(x + 22 * b, y + 32 * b) }
        case .q5_1: for b in 0..<blocks { q5_1(x + 24 * b, y + 32 * b) }
        case .q8_0: for b in 0..<blocks { q8_0(x + 34 * b, y + 32 * b) }
        case .q4_K: for b in 0..<blocks { q4_K(x + 144 * b, y + 256 * b) }
        case .q5_K: for b in 0..<blocks { q5_K(x + 176 * b, y + 256 * b) }
        case .q6_K: for b in 0..<blocks { q6_K(x + 210 * b, y + 256 * b) }
        default: preconditionFailure("dequantize: \(type.name) is not dequantisable")
        }
    }

    // MARK: Loads (unaligned, little-endian)

    @inline(__always) private static func u8(_ p: UnsafeRawPointer, _ offset: Int) -> UInt8 {
        p.load(fromByteOffset: offset, as: UInt8.self)
    }

    @inline(__always) private static func u16(_ p: UnsafeRawPointer, _ offset: Int) -> UInt16 {
        UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inline(__always) private static func half(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
        Float(Float16(bitPattern: u16(p, offset)))
    }

    // MARK: 32-value blocks

    @inline(__always) private static func q4_0(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(x, 0)
        for j in 0..<16 {
            let q = u8(x, 2 + j)
            y[j] = Float(Int32(q & 0x0F) - 8) * d
            y[j + 16] = Float(Int32(q >> 4) - 8) * d
        }
    }

    @inline(__always) private static func q4_1(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(x, 0), m = half(x, 2)
        for j in 0..<16 {
            let q = u8(x, 4 + j)
            y[j] = Float(q & 0x0F) * d + m
            y[j + 16] = Float(q >> 4) * d + m
        }
    }

    @inline(__always) private static func q5_0(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(x, 0)
        let qh = UInt32(littleEndian: x.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
        for j in 0..<16 {
            let q = u8(x, 6 + j)
            let h0 = UInt8(truncatingIfNeeded: ((qh >> j) << 4) & 0x10)
            let h1 = UInt8(truncatingIfNeeded: (qh >> (j + 12)) & 0x10)
            y[j] = Float(Int32((q & 0x0F) | h0) - 16) * d
            y[j + 16] = Float(Int32((q >> 4) | h1) - 16) * d
        }
    }

    @inline(__always) private static func q5_1(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(x, 0), m = half(x, 2)
        let qh = UInt32(littleEndian: x.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        for j in 0..<16 {
            let q = u8(x, 8 + j)
            let h0 = UInt8(truncatingIfNeeded: ((qh >> j) << 4) & 0x10)
            let h1 = UInt8(truncatingIfNeeded: (qh >> (j + 12)) & 0x10)
            y[j] = Float((q & 0x0F) | h0) * d + m
            y[j + 16] = Float((q >> 4) | h1) * d + m
        }
    }

    @inline(__always) private static func q8_0(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(x, 0)
        for j in 0..<32 { y[j] = Float(Int8(bitPattern: u8(x, 2 + j))) * d }
    }

    // MARK: 256-value super-blocks

    /// Scale and min of sub-block `j` (0..<8) from the 12 packed bytes at `s` (ggml's
    /// `get_scale_min_k4`): 6 bits each; sub-blocks 4…7 borrow their top two bits from bytes 0…7.
    @inline(__always) private static func scaleMin(_ j: Int, _ s: UnsafeRawPointer) -> (scale: UInt8, min: UInt8) {
        if j < 4 {
            return (u8(s, j) & 63, u8(s, j + 4) & 63)
        }
        return ((u8(s, j + 4) & 0x0F) | ((u8(s, j - 4) >> 6) << 4),
                (u8(s, j + 4) >> 4) | ((u8(s, j) >> 6) << 4))
    }

    private static func q4_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(x, 0), dmin = half(x, 2)
        let scales = x + 4
        for group in 0..<4 {  // 64 values: 32 low nibbles, then the 32 high nibbles of the same bytes
            let q = x + 16 + 32 * group
            let out = y + 64 * group
            let (sc1, m1) = scaleMin(2 * group, scales)
            let (sc2, m2) = scaleMin(2 * group + 1, scales)
            let d1 = d * Float(sc1), min1 = dmin * Float(m1)
            let d2 = d * Float(sc2), min2 = dmin * Float(m2)
            for l in 0..<32 { out[l] = d1 * Float(u8(q, l) & 0x0F) - min1 }
            for l in 0..<32 { out[32 + l] = d2 * Float(u8(q, l) >> 4) - min2 }
        }
    }

    private static func q5_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(x, 0), dmin = half(x, 2)
        let scales = x + 4
        let qh = x + 16
        for group in 0..<4 {
            let ql = x + 48 + 32 * group
            let out = y + 64 * group
            let bit1 = UInt8(1) << (2 * group), bit2 = UInt8(2) << (2 * group)
            let (sc1, m1) = scaleMin(2 * group, scales)
            let (sc2, m2) = scaleMin(2 * group + 1, scales)
            let d1 = d * Float(sc1), min1 = dmin * Float(m1)
            let d2 = d * Float(sc2), min2 = dmin * Float(m2)
            for l in 0..<32 {
                let high: UInt8 = u8(qh, l) & bit1 != 0 ? 16 : 0
                out[l] = d1 * Float((u8(ql, l) & 0x0F) + high) - min1
            }
            for l in 0..<32 {
                let high: UInt8 = u8(qh, l) & bit2 != 0 ? 16 : 0
                out[32 + l] = d2 * Float((u8(ql, l) >> 4) + high) - min2
            }
        }
    }

    private static func q6_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(x, 208)
        for part in 0..<2 {  // 128 values each
            let ql = x + 64 * part
            let qh = x + 128 + 32 * part
            let sc = x + 192 + 8 * part
            let out = y + 128 * part
            for s in 0..<2 {  // 16 values share a scale: ggml's is = l / 16
                // ggml computes d * sc[is] * q left to right, so (d·sc) first: the same products.
                let d1 = d * Float(Int8(bitPattern: u8(sc, s)))
                let d2 = d * Float(Int8(bitPattern: u8(sc, s + 2)))
                let d3 = d * Float(Int8(bitPattern: u8(sc, s + 4)))
                let d4 = d * Float(Int8(bitPattern: u8(sc, s + 6)))
                for l in (16 * s)..<(16 * s + 16) {
                    let h = u8(qh, l)
                    let q1 = Int32((u8(ql, l) & 0x0F) | ((h & 3) << 4)) - 32
                    let q2 = Int32((u8(ql, l + 32) & 0x0F) | (((h >> 2) & 3) << 4)) - 32
                    let q3 = Int32((u8(ql, l) >> 4) | (((h >> 4) & 3) << 4)) - 32
                    let q4 = Int32((u8(ql, l + 32) >> 4) | (((h >> 6) & 3) << 4)) - 32
                    out[l] = d1 * Float(q1)
                    out[l + 32] = d2 * Float(q2)
                    out[l + 64] = d3 * Float(q3)
                    out[l + 96] = d4 * Float(q4)
                }
            }
        }
    }
}

extension GGMLType {
    /// Dequantises `count` values (a multiple of `blockSize`) of this type from `source` into
    /// `destination`, on the calling thread. The type must be `isDequantizable`.
    public func dequantize(_ source: UnsafeRawPointer, into destination: UnsafeMutablePointer<Float>, count: Int) {
        GGMLDequantizer.dequantize(self, source, into: destination, count: count, parallel: false)
    }
}
