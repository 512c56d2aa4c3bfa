/// Conversions between float32 and the two 16-bit float formats that model files use.
///
/// Both directions round to nearest, ties to even, as PyTorch's `.to(torch.bfloat16)` and
/// `.to(torch.float16)` do. NaN stays NaN (quiet), infinities stay infinite; float16 overflow
/// becomes infinity and underflow goes through the subnormals to (signed) zero.
public enum HalfPrecision {
    // MARK: bfloat16 (the top 16 bits of a float32)

    @inline(__always)
    public static func bfloat16Bits(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        if x.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }
        let roundingBias: UInt32 = 0x7FFF + ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: (bits &+ roundingBias) >> 16)
    }

    @inline(__always)
    public static func float(bfloat16Bits b: UInt16) -> Float {
        Float(bitPattern: UInt32(b) << 16)
    }

    // MARK: float16 (IEEE binary16, Swift's native `Float16`)

    @inline(__always)
    public static func float16Bits(_ x: Float) -> UInt16 { Float16(x).bitPattern }

    @inline(__always)
    public static func float(float16Bits b: UInt16) -> Float { Float(Float16(bitPattern: b)) }

    // MARK: Bulk conversion (unaligned little-endian sources are fine on x86_64 / arm64)

    public static func decodeBFloat16(_ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count {
            dst[i] = float(bfloat16Bits: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
        }
    }

    public static func decodeFloat16(_ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count {
            dst[i] = float(float16Bits: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
        }
    }

    public static func encodeBFloat16(_ src: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer, count: Int) {
        for i in 0..<count {
            dst.storeBytes(of: bfloat16Bits(src[i]), toByteOffset: 2 * i, as: UInt16.self)
        }
    }

    public static func encodeFloat16(_ src: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer, count: Int) {
        for i in 0..<count {
            dst.storeBytes(of: float16Bits(src[i]), toByteOffset: 2 * i, as: UInt16.self)
        }
    }
}
