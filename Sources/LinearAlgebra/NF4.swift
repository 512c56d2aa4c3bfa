/// 4-bit NormalFloat (NF4) block-wise quantisation, as bitsandbytes defines it (QLoRA,
/// arXiv 2305.14314; bitsandbytes `quantize_4bit(quant_type="nf4")`):
///
/// - the tensor is flattened row-major and cut into blocks of `blockSize` (64) values;
/// - each block keeps its absolute maximum `absmax` in float32;
/// - each value x becomes the index of the code point nearest to x / absmax, chosen by comparing
///   with the midpoints between neighbouring code points (bitsandbytes' `dQuantizeNF4` decision
///   tree: a value exactly on a midpoint goes to the upper code);
/// - two indices share a byte, the first (even position) in the high nibble.
///
/// Dequantisation is `code[index] · absmax`. A block whose absmax is 0 dequantises to zeros.
public struct NF4Matrix: Sendable, Equatable {
    /// The 16 NF4 code points (bitsandbytes' table, float32).
    public static let codebook: [Float] = [
        -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
        -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
        0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
        0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
    ]

    /// Decision thresholds of bitsandbytes' `dQuantizeNF4`: index i is chosen when
    /// `thresholds[i-1] < x ≤ …`, i.e. the number of thresholds strictly below x.
    static let thresholds: [Float] = [
        -0.8480964004993439, -0.6106329262256622, -0.4599952697753906, -0.33967943489551544,
        -0.23460740596055984, -0.13791173323988914, -0.045525018125772476, 0.03979014977812767,
        0.1202552504837513, 0.2035212516784668, 0.2920137718319893, 0.3893125355243683,
        0.5016634166240692, 0.6427869200706482, 0.8614784181118011,
    ]

    public static let defaultBlockSize = 64

    public let rows: Int
    public let cols: Int
    public let blockSize: Int
    /// ⌈rows·cols / 2⌉ bytes, two 4-bit code indices each (first in the high nibble).
    public var packed: [UInt8]
    /// ⌈rows·cols / blockSize⌉ per-block absolute maxima.
    public var absmax: [Float]

    public var count: Int { rows * cols }
    public var shape: [Int] { [rows, cols] }

    public init(rows: Int, cols: Int, blockSize: Int = NF4Matrix.defaultBlockSize, packed: [UInt8], absmax: [Float]) {
        precondition(blockSize > 0 && blockSize % 2 == 0, "NF4 block size must be even and positive")
        precondition(packed.count == (rows * cols + 1) / 2, "NF4 codes: \(packed.count) bytes for \(rows)×\(cols)")
        precondition(absmax.count == (rows * cols + blockSize - 1) / blockSize, "NF4 absmax: \(absmax.count) blocks")
        self.rows = rows
        self.cols = cols
        self.blockSize = blockSize
        self.packed = packed
        self.absmax = absmax
    }

    /// Quantises `m` block by block.
    public init(quantizing m: Matrix, blockSize: Int = NF4Matrix.defaultBlockSize) {
        precondition(blockSize > 0 && blockSize % 2 == 0, "NF4 block size must be even and positive")
        let n = m.count
        var packed = [UInt8](repeating: 0, count: (n + 1) / 2)
        var absmax = [Float](repeating: 0, count: (n + blockSize - 1) / blockSize)
        m.storage.withUnsafeBufferPointer { x in
            packed.withUnsafeMutableBufferPointer { out in
                absmax.withUnsafeMutableBufferPointer { amax in
                    for block in 0..<amax.count {
                        let start = block * blockSize, end = min(n, start + blockSize)
                        var a: Float = 0
                        for i in start..<end { a = max(a, abs(x[i])) }
                        amax[block] = a
                        let inverse: Float = a > 0 ? 1 / a : 0
                        for i in start..<end {
                            let q = Self.index(of: x[i] * inverse)
                            if i & 1 == 0 { out[i >> 1] = q << 4 } else { out[i >> 1] |= q }
                        }
                    }
                }
            }
        }
        self.init(rows: m.rows, cols: m.cols, blockSize: blockSize, packed: packed, absmax: absmax)
    }

    /// The code index of a normalised value x ∈ [-1, 1] (bitsandbytes' decision tree, as a count).
    @inline(__always)
    static func index(of x: Float) -> UInt8 {
        var q: UInt8 = 0
        for t in thresholds where x > t { q += 1 }
        return q
    }

    /// The 4-bit code index of element `i` (row-major).
    public func code(at i: Int) -> UInt8 {
        let byte = packed[i >> 1]
        return i & 1 == 0 ? byte >> 4 : byte & 0x0F
    }

    /// Writes rows `range` dequantised into `out` ((range.count, cols), row-major).
    ///
    /// Whole blocks go eight values at a time: each packed byte looks up its two code points at
    /// once in `pairTable` (the 16 codes for both nibbles, 256 entries), and the block's absmax
    /// multiplies the SIMD8 vector (one absmax load per block, no division per element). A
    /// range that starts or ends inside a block does those elements one by one.
    public func dequantizeRows(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let start = range.lowerBound * cols, end = range.upperBound * cols
        guard start < end else { return }
        Self.codebook.withUnsafeBufferPointer { code in
            Self.pairTable.withUnsafeBufferPointer { pairs in
                packed.withUnsafeBufferPointer { p in
                    absmax.withUnsafeBufferPointer { amax in
                        func scalar(_ i: Int) {
                            let byte = p[i >> 1]
                            let q = i & 1 == 0 ? byte >> 4 : byte & 0x0F
                            out[i - start] = code[Int(q)] * amax[i / blockSize]
                        }
                        // Head: up to the first block boundary (even, since blockSize is).
                        let firstBlock = (start + blockSize - 1) / blockSize, lastBlock = end / blockSize
                        guard blockSize % 8 == 0, firstBlock < lastBlock else {
                            for i in start..<end { scalar(i) }
                            return
                        }
                        for i in start..<(firstBlock * blockSize) { scalar(i) }
                        let raw = UnsafeMutableRawPointer(out)
                        for block in firstBlock..<lastBlock {
                            let a = SIMD8<Float>(repeating: amax[block])
                            let base = block * blockSize
                            for g in stride(from: base, to: base + blockSize, by: 8) {
                                let b = p.baseAddress! + (g >> 1)   // 4 bytes = 8 codes
                                let lo = SIMD4<Float>(lowHalf: pairs[Int(b[0])], highHalf: pairs[Int(b[1])])
                                let hi = SIMD4<Float>(lowHalf: pairs[Int(b[2])], highHalf: pairs[Int(b[3])])
                                raw.storeBytes(of: SIMD8<Float>(lowHalf: lo, highHalf: hi) * a,
                                               toByteOffset: (g - start) * MemoryLayout<Float>.size, as: SIMD8<Float>.self)
                            }
                        }
                        for i in (lastBlock * blockSize)..<end { scalar(i) }
                    }
                }
            }
        }
    }

    /// (code[byte >> 4], code[byte & 15]) for every byte: both code points of a packed byte.
    static let pairTable: [SIMD2<Float>] = (0..<256).map { SIMD2(codebook[$0 >> 4], codebook[$0 & 0x0F]) }

    /// The whole matrix in float32.
    public func dequantized() -> Matrix {
        var m = Matrix(rows: rows, cols: cols)
        m.storage.withUnsafeMutableBufferPointer { dequantizeRows(0..<rows, into: $0.baseAddress!) }
        return m
    }

    /// Bytes held: packed codes plus absmax.
    public var byteCount: Int { packed.count + absmax.count * 4 }
}
