/// The element types of the safetensors format, spelled as in the file header.
///
/// The raw values are the exact `dtype` strings of the specification
/// (<https://github.com/huggingface/safetensors>); every value is stored little-endian.
/// `BOOL` occupies one byte per element, the two 8-bit float formats are the OCP FP8 formats
/// (`float8_e4m3fn` and `float8_e5m2` in PyTorch).
public enum DType: String, Sendable, Codable, CaseIterable {
    case f64 = "F64"
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"
    case i64 = "I64"
    case i32 = "I32"
    case i16 = "I16"
    case i8 = "I8"
    case u8 = "U8"
    case bool = "BOOL"
    case u16 = "U16"
    case u32 = "U32"
    case u64 = "U64"
    case f8e4m3 = "F8_E4M3"
    case f8e5m2 = "F8_E5M2"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .f64, .i64, .u64: 8
        case .f32, .i32, .u32: 4
        case .f16, .bf16, .i16, .u16: 2
        case .i8, .u8, .bool, .f8e4m3, .f8e5m2: 1
        }
    }

    /// Whether `SafeTensorsFile.floats(_:)` and `SafeTensorsWriter.write(_:floats:)` convert
    /// this type to and from `Float`: true for F32, F16 and BF16 only.
    public var isFloatConvertible: Bool {
        switch self {
        case .f32, .f16, .bf16: true
        default: false
        }
    }
}

extension DType {
    /// Number of elements of `shape` (1 for a scalar, `[]`), or nil when a dimension is negative
    /// or the product overflows `Int`.
    static func elementCount(_ shape: [Int]) -> Int? {
        var count = 1
        for dim in shape {
            guard dim >= 0 else { return nil }
            let (product, overflow) = count.multipliedReportingOverflow(by: dim)
            guard !overflow else { return nil }
            count = product
        }
        return count
    }

    /// Bytes occupied by a tensor of this type and `shape`, or nil when a dimension is
    /// negative or the size overflows `Int`.
    func byteCount(shape: [Int]) -> Int? {
        guard let count = DType.elementCount(shape) else { return nil }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: byteSize)
        return overflow ? nil : bytes
    }
}
