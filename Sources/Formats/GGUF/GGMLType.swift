/// The tensor element types of GGUF files (ggml's `enum ggml_type`), with their block layout.
///
/// Quantised types store a tensor as consecutive blocks, each holding `blockSize` values in
/// `typeSize` bytes; a row's element count (the innermost dimension, ne0) must be a multiple of
/// `blockSize`. The raw values are the numbers written in the file; ids that ggml retired
/// (4, 5, 31–33, 36–38) are absent, so a file using them is rejected as an unknown type.
/// Block sizes are those of ggml-common.h (`QK_K` = 256 for the K-quants).
public enum GGMLType: UInt32, Sendable, CaseIterable, Codable, CustomStringConvertible {
    case f32 = 0
    case f16 = 1
    case q4_0 = 2
    case q4_1 = 3
    case q5_0 = 6
    case q5_1 = 7
    case q8_0 = 8
    case q8_1 = 9
    case q2_K = 10
    case q3_K = 11
    case q4_K = 12
    case q5_K = 13
    case q6_K = 14
    case q8_K = 15
    case iq2_XXS = 16
    case iq2_XS = 17
    case iq3_XXS = 18
    case iq1_S = 19
    case iq4_NL = 20
    case iq3_S = 21
    case iq2_S = 22
    case iq4_XS = 23
    case i8 = 24
    case i16 = 25
    case i32 = 26
    case i64 = 27
    case f64 = 28
    case iq1_M = 29
    case bf16 = 30
    case tq1_0 = 34
    case tq2_0 = 35
    case mxfp4 = 39

    /// Values per block (1 for the plain element types).
    public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16, .f64, .i8, .i16, .i32, .i64: 1
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q8_1, .iq4_NL, .mxfp4: 32
        case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q8_K, .iq2_XXS, .iq2_XS, .iq3_XXS, .iq1_S,
             .iq3_S, .iq2_S, .iq4_XS, .iq1_M, .tq1_0, .tq2_0: 256
        }
    }

    /// Bytes per block.
    public var typeSize: Int {
        switch self {
        case .f32, .i32: 4
        case .f16, .bf16, .i16: 2
        case .f64, .i64: 8
        case .i8: 1
        case .q4_0: 2 + 16                    // d, 32 nibbles
        case .q4_1: 2 + 2 + 16                // d, m, 32 nibbles
        case .q5_0: 2 + 4 + 16                // d, qh (32 high bits), 32 nibbles
        case .q5_1: 2 + 2 + 4 + 16            // d, m, qh, 32 nibbles
        case .q8_0: 2 + 32                    // d, 32 int8
        case .q8_1: 4 + 4 + 32                // d, s (float16 pairs), 32 int8
        case .q2_K: 2 + 2 + 16 + 64
        case .q3_K: 2 + 64 + 32 + 12
        case .q4_K: 2 + 2 + 12 + 128          // d, dmin, 6-bit scales/mins, 256 nibbles
        case .q5_K: 2 + 2 + 12 + 32 + 128     // d, dmin, scales/mins, qh, 256 nibbles
        case .q6_K: 128 + 64 + 16 + 2         // ql, qh, int8 scales, d (last)
        case .q8_K: 4 + 256 + 32
        case .iq2_XXS: 2 + 64
        case .iq2_XS: 2 + 64 + 8
        case .iq3_XXS: 2 + 64 + 32
        case .iq1_S: 2 + 32 + 16
        case .iq4_NL: 2 + 16
        case .iq3_S: 2 + 64 + 32 + 8 + 4
        case .iq2_S: 2 + 64 + 16
        case .iq4_XS: 2 + 2 + 128 + 4
        case .iq1_M: 32 + 16 + 8
        case .tq1_0: 2 + 4 * 13
        case .tq2_0: 2 + 64
        case .mxfp4: 1 + 16
        }
    }

    /// The name ggml and gguf-py print, e.g. `Q4_K`, `BF16`.
    public var name: String {
        switch self {
        case .f32: "F32"
        case .f16: "F16"
        case .q4_0: "Q4_0"
        case .q4_1: "Q4_1"
        case .q5_0: "Q5_0"
        case .q5_1: "Q5_1"
        case .q8_0: "Q8_0"
        case .q8_1: "Q8_1"
        case .q2_K: "Q2_K"
        case .q3_K: "Q3_K"
        case .q4_K: "Q4_K"
        case .q5_K: "Q5_K"
        case .q6_K: "Q6_K"
        case .q8_K: "Q8_K"
        case .iq2_XXS: "IQ2_XXS"
        case .iq2_XS: "IQ2_XS"
        case .iq3_XXS: "IQ3_XXS"
        case .iq1_S: "IQ1_S"
        case .iq4_NL: "IQ4_NL"
        case .iq3_S: "IQ3_S"
        case .iq2_S: "IQ2_S"
        case .iq4_XS: "IQ4_XS"
        case .i8: "I8"
        case .i16: "I16"
        case .i32: "I32"
        case .i64: "I64"
        case .f64: "F64"
        case .iq1_M: "IQ1_M"
        case .bf16: "BF16"
        case .tq1_0: "TQ1_0"
        case .tq2_0: "TQ2_0"
        case .mxfp4: "MXFP4"
        }
    }

    public var description: String { name }

    /// Whether `GGUFFile.floats(_:)` can dequantise this type: F32, F16, BF16, Q8_0, Q4_0, Q4_1,
    /// Q5_0, Q5_1, Q4_K, Q5_K and Q6_K.
    public var isDequantizable: Bool {
        switch self {
        case .f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q4_K, .q5_K, .q6_K: true
        default: false
        }
    }

    /// Bytes of `elementCount` values, or nil when `elementCount` is not a multiple of the block
    /// size or the size overflows `Int`.
    public func byteCount(elementCount: Int) -> Int? {
        guard elementCount >= 0, elementCount % blockSize == 0 else { return nil }
        let (bytes, overflow) = (elementCount / blockSize).multipliedReportingOverflow(by: typeSize)
        return overflow ? nil : bytes
    }
}
