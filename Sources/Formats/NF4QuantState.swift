import Foundation

/// The JSON bitsandbytes stores in `NAME.quant_state.bitsandbytes__nf4` (`QuantState.as_dict(packed=True)`,
/// bitsandbytes/functional.py), e.g.
/// `{"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": [576, 576],
///   "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 0.0123}`.
/// `dtype` is the dtype the weight had before quantisation (and is dequantised to).
public struct NF4QuantState: Codable, Sendable, Equatable {
    public var quantType: String
    public var blocksize: Int
    public var dtype: String
    public var shape: [Int]
    public var nestedBlocksize: Int?
    public var nestedDtype: String?
    public var nestedOffset: Float?

    enum CodingKeys: String, CodingKey {
        case quantType = "quant_type", blocksize, dtype, shape
        case nestedBlocksize = "nested_blocksize", nestedDtype = "nested_dtype", nestedOffset = "nested_offset"
    }

    public init(quantType: String, blocksize: Int, dtype: String, shape: [Int],
                nestedBlocksize: Int? = nil, nestedDtype: String? = nil, nestedOffset: Float? = nil) {
        self.quantType = quantType
        self.blocksize = blocksize
        self.dtype = dtype
        self.shape = shape
        self.nestedBlocksize = nestedBlocksize
        self.nestedDtype = nestedDtype
        self.nestedOffset = nestedOffset
    }

    /// torch's name of a safetensors dtype (`torch.float32` → "float32").
    public static func torchName(of dtype: DType) -> String {
        switch dtype {
        case .f32: "float32"
        case .f16: "float16"
        case .bf16: "bfloat16"
        case .f64: "float64"
        default: dtype.rawValue.lowercased()
        }
    }

    /// The JSON as bitsandbytes writes it (`json.dumps`: keys in this order, ", " and ": ").
    public var json: String {
        var parts = ["\"quant_type\": \"\(quantType)\"", "\"blocksize\": \(blocksize)", "\"dtype\": \"\(dtype)\"",
                     "\"shape\": [\(shape.map(String.init).joined(separator: ", "))]"]
        if let nestedBlocksize { parts.append("\"nested_blocksize\": \(nestedBlocksize)") }
        if let nestedDtype { parts.append("\"nested_dtype\": \"\(nestedDtype)\"") }
        if let nestedOffset { parts.append("\"nested_offset\": \(Double(nestedOffset))") }
        return "{" + parts.joined(separator: ", ") + "}"
    }
}
