/// 4-bit NormalFloat (NF4) block-wise quantisation, as bitsandbytes defines it (QLoRA,
/// arXiv 2305.14314; bitsandbytes `quantize_4bit(quant_type="nf4")`, whose CPU path is
/// `bitsandbytes/backends/default/ops.py`):
///
/// - the tensor is flattened row-major and cut into blocks of `blockSize` (64) values;
/// - each block keeps its absolute maximum `absmax` in float32;
/// - each value x is normalised, `x · (1/absmax)` in a whole block and `x / absmax` in a partial
///   last block (as bitsandbytes does; the two can differ in the last bit), clamped to [−1, 1], and
///   becomes the index of the nearest code point, found by comparing with the float32 midpoints
///   between neighbouring code points (`torch.bucketize`): a value exactly on a midpoint takes the
///   **lower** code, as in bitsandbytes' CUDA `dQuantizeNF4` (`x > threshold` branches);
/// - two indices share a byte, the first (even position) in the high nibble; an odd count leaves
///   the last byte's low nibble as the code of 0 (7), as bitsandbytes pads with a zero.
///
/// Dequantisation is `code[index] · absmax`. A block whose absmax is 0 dequantises to zeros.
/// With double quantisation (`compressedAbsmax`), `absmax` holds the values bitsandbytes
/// dequantises with, `nestedCode[q] · nestedAbsmax + offset` (see `NF4QuantizedAbsmax`).
public struct NF4Matrix: Sendable, Equatable {
    /// The 16 NF4 code points (bitsandbytes' table, float32).
    public static let codebook: [Float] = [
        -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
        -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
        0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
        0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
    ]

    /// Decision thresholds: the float32 midpoints `(code[i] + code[i+1]) / 2`, computed as
    /// bitsandbytes computes them (equal to the constants of its CUDA `dQuantizeNF4`; written as
    /// decimal literals they would round differently in a few last bits). Index i is the number of
    /// thresholds strictly below x.
    static let thresholds: [Float] = (0..<15).map { (codebook[$0] + codebook[$0 + 1]) / 2 }

    public static let defaultBlockSize = 64

    /// The index of the code point 0.
    static let zeroCode: UInt8 = 7

    public let rows: Int
    public let cols: Int
    public let blockSize: Int
    /// ⌈rows·cols / 2⌉ bytes, two 4-bit code indices each (first in the high nibble).
    public var packed: [UInt8]
    /// ⌈rows·cols / blockSize⌉ per-block absolute maxima (as dequantised, with double quantisation).
    public var absmax: [Float]
    /// The 8-bit double-quantised form of `absmax` (bitsandbytes' `compress_statistics=True`), or nil.
    public var compressedAbsmax: NF4QuantizedAbsmax?

    public var count: Int { rows * cols }
    public var shape: [Int] { [rows, cols] }
    public var blockCount: Int { absmax.count }

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

    /// A double-quantised matrix: `absmax` becomes `compressed.dequantized()`.
    public init(rows: Int, cols: Int, blockSize: Int = NF4Matrix.defaultBlockSize, packed: [UInt8],
                compressedAbsmax compressed: NF4QuantizedAbsmax) {
        self.init(rows: rows, cols: cols, blockSize: blockSize, packed: packed, absmax: compressed.dequantized())
        self.compressedAbsmax = compressed
    }

    /// Quantises `m` block by block; with `doubleQuant`, also quantises the absmax values
    /// (8-bit dynamic map, blocks of 256, mean offset) as bitsandbytes' `compress_statistics=True`.
    public init(quantizing m: Matrix, blockSize: Int = NF4Matrix.defaultBlockSize, doubleQuant: Bool = false) {
        precondition(blockSize > 0 && blockSize % 2 == 0, "NF4 block size must be even and positive")
        let n = m.count
        var packed = [UInt8](repeating: 0, count: (n + 1) / 2)
        var absmax = [Float](repeating: 0, count: (n + blockSize - 1) / blockSize)
        m.storage.withUnsafeBufferPointer { x in
            packed.withUnsafeMutableBufferPointer { out in
                absmax.withUnsafeMutableBufferPointer { amax in
                    for block in 0..<amax.count {
                        let start = block * blockSize, end = min(n, start + blockSize)
                        amax[block] = Self.quantizeBlock(x.baseAddress! + start, count: end - start,
                                                         partial: end - start < blockSize, into: out.baseAddress!, at: start)
                    }
                }
            }
        }
        if n & 1 == 1 { packed[n >> 1] |= Self.zeroCode }
        self.init(rows: m.rows, cols: m.cols, blockSize: blockSize, packed: packed, absmax: absmax)
        if doubleQuant {
            let compressed = NF4QuantizedAbsmax(quantizing: absmax)
            self.compressedAbsmax = compressed
            self.absmax = compressed.dequantized()
        }
    }

    /// Quantises `count` values at `x` (one block) into the nibbles of `out` starting at element
    /// `position` (even: blocks have even size); returns the block's absmax.
    private static func quantizeBlock(_ x: UnsafePointer<Float>, count: Int, partial: Bool,
                                      into out: UnsafeMutablePointer<UInt8>, at position: Int) -> Float {
        var a: Float = 0
        for i in 0..<count {
            let v = abs(x[i])
            a = v > a ? v : a
        }
        let divisor = a > 1e-38 ? a : 1e-38   // bitsandbytes clamps before dividing: 0 · 1e38 = 0
        let inverse = 1 / divisor
        return thresholds.withUnsafeBufferPointer { t in
            for i in 0..<count {
                let v = partial ? x[i] / divisor : x[i] * inverse
                let q = index(of: v, thresholds: t.baseAddress!)
                let p = position + i
                if p & 1 == 0 { out[p >> 1] = q << 4 } else { out[p >> 1] |= q }
            }
            return a
        }
    }

    /// The number of thresholds strictly below x (its code index), by a four-step binary search
    /// over the 15 sorted thresholds. Clamping to [−1, 1] is implicit: the first and last
    /// thresholds are inside it.
    @inline(__always)
    static func index(of x: Float, thresholds t: UnsafePointer<Float>) -> UInt8 {
        var q = x > t[7] ? 8 : 0
        q += x > t[q + 3] ? 4 : 0
        q += x > t[q + 1] ? 2 : 0
        q += x > t[q] ? 1 : 0
        return UInt8(truncatingIfNeeded: q)
    }

    /// The code index of a normalised value x ∈ [-1, 1] (bitsandbytes' decision tree, as a count).
    static func index(of x: Float) -> UInt8 {
        thresholds.withUnsafeBufferPointer { index(of: x, thresholds: $0.baseAddress!) }
    }

    /// The 4-bit code index of element `i` (row-major).
    public func code(at i: Int) -> UInt8 {
        let byte = packed[i >> 1]
        return i & 1 == 0 ? byte >> 4 : byte & 0x0F
    }

    /// Writes rows `range` dequantised into `out` ((range.count, cols), row-major).
    public func dequantizeRows(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        dequantizeElements(range.lowerBound * cols..<range.upperBound * cols, into: out)
    }

    /// Writes the flat (row-major) elements `range` dequantised into `out` (range.count floats).
    ///
    /// Whole blocks go to a C kernel of the CPU's level (`CPUKernels.nf4Dequantize`: the code
    /// points looked up with vector permutes, one multiply by the block's absmax); partial blocks
    /// at the ends, and block sizes that are not a multiple of 16, go one element at a time.
    public func dequantizeElements(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "NF4 dequantise: \(range) outside 0..<\(count)")
        let start = range.lowerBound, end = range.upperBound
        guard start < end else { return }
        Self.codebook.withUnsafeBufferPointer { code in
            packed.withUnsafeBufferPointer { p in
                absmax.withUnsafeBufferPointer { amax in
                    func scalar(_ i: Int) {
                        let byte = p[i >> 1]
                        let q = i & 1 == 0 ? byte >> 4 : byte & 0x0F
                        out[i - start] = code[Int(q)] * amax[i / blockSize]
                    }
                    // Head: up to the first block boundary (even, since blockSize is).
                    let firstBlock = (start + blockSize - 1) / blockSize, lastBlock = end / blockSize
                    guard blockSize % 16 == 0, firstBlock < lastBlock else {
                        for i in start..<end { scalar(i) }
                        return
                    }
                    for i in start..<(firstBlock * blockSize) { scalar(i) }
                    CPUKernels.nf4Dequantize(packed: p.baseAddress! + firstBlock * blockSize / 2, absmax: amax.baseAddress! + firstBlock,
                                             blocks: lastBlock - firstBlock, blockSize: blockSize, codebook: code.baseAddress!,
                                             out: out + (firstBlock * blockSize - start))
                    for i in (lastBlock * blockSize)..<end { scalar(i) }
                }
            }
        }
    }

    /// The whole matrix in float32.
    public func dequantized() -> Matrix {
        var m = Matrix(rows: rows, cols: cols)
        m.storage.withUnsafeMutableBufferPointer { dequantizeRows(0..<rows, into: $0.baseAddress!) }
        return m
    }

    /// Bytes held as stored: packed codes plus absmax (8-bit codes + nested statistics when double-quantised).
    public var byteCount: Int {
        packed.count + (compressedAbsmax.map { $0.byteCount } ?? absmax.count * 4)
    }
}
