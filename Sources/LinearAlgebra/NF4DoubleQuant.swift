/// Double quantisation of NF4's absmax values (QLoRA §3; bitsandbytes `quantize_4bit(...,
/// compress_statistics=True)`):
///
/// - `offset = mean(absmax)`;
/// - `absmax − offset` is quantised block-wise (blocks of 256) to 8 bits with bitsandbytes' signed
///   dynamic map (`create_dynamic_map(signed=True)`): per block its absolute maximum `nestedAbsmax`
///   (float32); each value is divided by it and takes the nearest map entry (binary search for the
///   entry at or below, then the right neighbour if strictly closer: ties go left), as
///   `quantize_block` in bitsandbytes' csrc/common.cpp does. As there, the search treats the map's
///   first entry as −1 (the stored map's first entry, −0.99297, is what dequantisation uses).
///   bitsandbytes' search (BinSearch "Direct2", a bucketed float index) rarely lands one entry below
///   the true floor, so for about 1 value in 1000 its code is the second-nearest; ours is always the
///   nearest (the fixture test checks that every difference is of this kind);
/// - dequantisation: `absmax ≈ map[q] · nestedAbsmax[block] + offset`, in float32.
///
/// A block of equal absmax values (nested absmax 0, where bitsandbytes divides by zero) stores the
/// code of 0, so it dequantises to `offset`.
public struct NF4QuantizedAbsmax: Sendable, Equatable {
    public static let defaultBlockSize = 256

    /// One 8-bit code per NF4 block.
    public var codes: [UInt8]
    /// ⌈codes.count / blockSize⌉ per-block absolute maxima of `absmax − offset`.
    public var nestedAbsmax: [Float]
    /// The mean of the absmax values, subtracted before quantising.
    public var offset: Float
    public var blockSize: Int

    public init(codes: [UInt8], nestedAbsmax: [Float], offset: Float, blockSize: Int = NF4QuantizedAbsmax.defaultBlockSize) {
        precondition(blockSize > 0 && nestedAbsmax.count == (codes.count + blockSize - 1) / blockSize,
                     "double quantisation: \(nestedAbsmax.count) nested blocks for \(codes.count) codes")
        self.codes = codes
        self.nestedAbsmax = nestedAbsmax
        self.offset = offset
        self.blockSize = blockSize
    }

    /// Quantises `absmax` with its mean (accumulated in Double, rounded to float32) as the offset.
    public init(quantizing absmax: [Float], blockSize: Int = NF4QuantizedAbsmax.defaultBlockSize) {
        let mean = absmax.isEmpty ? 0 : Float(absmax.reduce(0.0) { $0 + Double($1) } / Double(absmax.count))
        self.init(quantizing: absmax, offset: mean, blockSize: blockSize)
    }

    /// Quantises `absmax − offset` with the given offset.
    public init(quantizing absmax: [Float], offset: Float, blockSize: Int = NF4QuantizedAbsmax.defaultBlockSize) {
        let shifted = absmax.map { $0 - offset }
        var codes = [UInt8](repeating: 0, count: shifted.count)
        var nested = [Float](repeating: 0, count: (shifted.count + blockSize - 1) / blockSize)
        let search = Self.searchMap
        for block in 0..<nested.count {
            let start = block * blockSize, end = min(shifted.count, start + blockSize)
            var a: Float = 0
            for i in start..<end { a = max(a, abs(shifted[i])) }
            nested[block] = a
            for i in start..<end {
                codes[i] = a > 0 ? Self.nearest(shifted[i] / a, in: search) : Self.zeroCode
            }
        }
        self.init(codes: codes, nestedAbsmax: nested, offset: offset, blockSize: blockSize)
    }

    /// The absmax values bitsandbytes dequantises NF4 blocks with.
    public func dequantized() -> [Float] {
        let map = Self.dynamicMap
        return codes.indices.map { i in map[Int(codes[i])] * nestedAbsmax[i / blockSize] + offset }
    }

    /// Bytes as stored: codes, nested absmax, the offset and the 256-entry map.
    public var byteCount: Int { codes.count + nestedAbsmax.count * 4 + 4 + 256 * 4 }

    /// Index of the entry of `map` (sorted) nearest x: the last entry ≤ x, or its right neighbour
    /// if strictly closer.
    static func nearest(_ x: Float, in map: [Float]) -> UInt8 {
        var lo = 0, hi = map.count - 1          // invariant: map[lo] ≤ x (x ≥ −1 = map[0])
        if !(x >= map[0]) { return 0 }
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if map[mid] <= x { lo = mid } else { hi = mid - 1 }
        }
        if lo < map.count - 1, abs(x - map[lo + 1]) < abs(x - map[lo]) { lo += 1 }
        return UInt8(lo)
    }

    /// The index of 0 in the dynamic map.
    static let zeroCode = UInt8(dynamicMap.firstIndex(of: 0)!)

    /// The map the search runs on: `dynamicMap` with its first entry set to −1 (bitsandbytes'
    /// `quantize_cpu` does this so that the binary search covers [−1, 1]).
    static let searchMap: [Float] = { var m = dynamicMap; m[0] = -1; return m }()

    /// bitsandbytes' `create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8)`, sorted:
    /// for i in 0..<7, the 2^i midpoints of `linspace(0.1, 1, 2^i + 1)` times 10^(i−6), with both
    /// signs, plus 0 and 1. Computed in float32 as torch does (linspace's two halves, each
    /// `start + k·step` rounded once; the scalar product in float32). Checked against the map
    /// bitsandbytes stores (`nested_quant_map`) in the NF4 fixture test.
    public static let dynamicMap: [Float] = {
        var positive: [Float] = []
        for i in 0..<7 {
            let steps = (1 << i) + 1, n = steps - 1
            let start: Float = 0.1, end: Float = 1
            let step = (end - start) / Float(n)
            let boundaries: [Float] = (0..<steps).map { k in
                k < steps / 2 ? start.addingProduct(Float(k), step) : end.addingProduct(-step, Float(n - k))
            }
            let scale = Float(pow10(i - 6))
            for k in 0..<n { positive.append(scale * ((boundaries[k] + boundaries[k + 1]) / 2)) }
        }
        return (positive.map { -$0 } + [0] + positive + [1]).sorted()
    }()

    private static func pow10(_ e: Int) -> Double {
        var v = 1.0
        for _ in 0..<abs(e) { v *= 10 }
        return e < 0 ? 1 / v : v
    }
}
