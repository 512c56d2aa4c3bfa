import Foundation
import LinearAlgebra

/// NF4 weights in safetensors, laid out as transformers serialises a bitsandbytes `Linear4bit`
/// weight (`Params4bit` + `QuantState.as_dict(packed=True)`), so that the files are recognisable
/// to that ecosystem. For a weight `NAME` of shape [out, in] (n = out·in values, blocks = ⌈n/64⌉):
///
/// | tensor | dtype | shape | content |
/// |---|---|---|---|
/// | `NAME` | U8 | [⌈n/2⌉, 1] | two 4-bit codes per byte, first in the high nibble |
/// | `NAME.absmax` | F32 | [blocks] | per-block absmax (U8 codes with double quantisation) |
/// | `NAME.quant_map` | F32 | [16] | the NF4 code points |
/// | `NAME.nested_absmax` | F32 | [⌈blocks/256⌉] | double quantisation only |
/// | `NAME.nested_quant_map` | F32 | [256] | double quantisation only: the 8-bit dynamic map |
/// | `NAME.quant_state.bitsandbytes__nf4` | U8 | [bytes] | UTF-8 JSON, `NF4QuantState` |
///
/// The JSON has `quant_type` ("nf4"), `blocksize`, `dtype` (the original dtype, e.g. "float32",
/// "bfloat16"), `shape` [out, in] and, when double-quantised, `nested_blocksize`, `nested_dtype`
/// ("float32") and `nested_offset` (the mean subtracted before quantising the absmax).
public enum NF4Tensors {
    public static let absmaxSuffix = ".absmax"
    public static let quantMapSuffix = ".quant_map"
    public static let nestedAbsmaxSuffix = ".nested_absmax"
    public static let nestedQuantMapSuffix = ".nested_quant_map"
    public static let quantStateSuffix = ".quant_state.bitsandbytes__nf4"

    /// Characters reserved for `nested_offset`'s value in the quant-state JSON, so that the layout
    /// can be fixed before the weight is quantised (the JSON is padded with spaces to its tensor's
    /// length; JSON parsers, Python's included, accept trailing whitespace).
    static let offsetWidth = 26

    /// The tensors an NF4 weight of shape [rows, cols] occupies, for laying out a `SafeTensorsWriter`.
    public static func specs(name: String, rows: Int, cols: Int, blockSize: Int = NF4Matrix.defaultBlockSize,
                             doubleQuant: Bool, originalDType: DType) -> [TensorSpec] {
        let n = rows * cols, blocks = (n + blockSize - 1) / blockSize
        let nestedBlocks = (blocks + NF4QuantizedAbsmax.defaultBlockSize - 1) / NF4QuantizedAbsmax.defaultBlockSize
        var specs = [TensorSpec(name: name, dtype: .u8, shape: [(n + 1) / 2, 1])]
        if doubleQuant {
            specs.append(TensorSpec(name: name + absmaxSuffix, dtype: .u8, shape: [blocks]))
            specs.append(TensorSpec(name: name + nestedAbsmaxSuffix, dtype: .f32, shape: [nestedBlocks]))
            specs.append(TensorSpec(name: name + nestedQuantMapSuffix, dtype: .f32, shape: [256]))
        } else {
            specs.append(TensorSpec(name: name + absmaxSuffix, dtype: .f32, shape: [blocks]))
        }
        specs.append(TensorSpec(name: name + quantMapSuffix, dtype: .f32, shape: [16]))
        var state = NF4QuantState(quantType: "nf4", blocksize: blockSize, dtype: NF4QuantState.torchName(of: originalDType),
                                  shape: [rows, cols])
        if doubleQuant {
            state.nestedBlocksize = NF4QuantizedAbsmax.defaultBlockSize
            state.nestedDtype = "float32"
        }
        let length = state.json.utf8.count + (doubleQuant ? ", \"nested_offset\": ".utf8.count + offsetWidth : 0)
        specs.append(TensorSpec(name: name + quantStateSuffix, dtype: .u8, shape: [length]))
        return specs
    }

    /// The specs for `m` as it is.
    public static func specs(name: String, matrix m: NF4Matrix, originalDType: DType) -> [TensorSpec] {
        specs(name: name, rows: m.rows, cols: m.cols, blockSize: m.blockSize, doubleQuant: m.compressedAbsmax != nil,
              originalDType: originalDType)
    }

    /// Writes every tensor of `specs(name:matrix:originalDType:)` into `writer` (laid out with those specs).
    public static func write(_ m: NF4Matrix, name: String, originalDType: DType, into writer: SafeTensorsWriter) throws {
        try writeBytes(m.packed, name: name, writer)
        if let c = m.compressedAbsmax {
            try writeBytes(c.codes, name: name + absmaxSuffix, writer)
            try writer.write(name + nestedAbsmaxSuffix, floats: c.nestedAbsmax)
            try writer.write(name + nestedQuantMapSuffix, floats: NF4QuantizedAbsmax.dynamicMap)
        } else {
            try writer.write(name + absmaxSuffix, floats: m.absmax)
        }
        try writer.write(name + quantMapSuffix, floats: NF4Matrix.codebook)
        var json = Array(stateJSON(for: m, dtype: originalDType).utf8)
        let length = writer.info(name + quantStateSuffix)?.shape.first ?? json.count
        guard json.count <= length else {
            throw NF4FormatError.invalid(path: writer.url.path, tensor: name, problem: "quant state of \(json.count) bytes exceeds its \(length)-byte slot")
        }
        json.append(contentsOf: repeatElement(UInt8(ascii: " "), count: length - json.count))
        try writeBytes(json, name: name + quantStateSuffix, writer)
    }

    private static func writeBytes(_ bytes: [UInt8], name: String, _ writer: SafeTensorsWriter) throws {
        try bytes.withUnsafeBytes { try writer.write(name, bytes: $0) }
    }

    /// The quant-state JSON (keys in bitsandbytes' order).
    static func stateJSON(for m: NF4Matrix, dtype: DType) -> String {
        NF4QuantState(
            quantType: "nf4", blocksize: m.blockSize, dtype: NF4QuantState.torchName(of: dtype), shape: m.shape,
            nestedBlocksize: m.compressedAbsmax?.blockSize, nestedDtype: m.compressedAbsmax == nil ? nil : "float32",
            nestedOffset: m.compressedAbsmax?.offset).json
    }

    /// Whether `name` is stored as NF4 in `file` (its quant-state tensor exists).
    public static func isNF4(_ name: String, in file: SafeTensorsFile) -> Bool {
        file.info(name + quantStateSuffix) != nil
    }

    /// The NF4 weight `name` of a sharded model, or nil when it is not stored as NF4 (or absent).
    public static func read(_ name: String, from model: ShardedSafeTensors) throws(NF4FormatError) -> NF4Matrix? {
        guard let (file, _) = model.locate(name) else { return nil }
        return try read(name, from: file)
    }

    /// The NF4 weight `name` of `file`, or nil when `file` has no `NAME.quant_state.bitsandbytes__nf4`.
    /// Every companion tensor's presence, dtype and shape is checked against the quant state.
    public static func read(_ name: String, from file: SafeTensorsFile) throws(NF4FormatError) -> NF4Matrix? {
        guard let stateInfo = file.info(name + quantStateSuffix) else { return nil }
        let path = file.url.path
        func fail(_ problem: String) -> NF4FormatError { .invalid(path: path, tensor: name, problem: problem) }
        func tensor(_ suffix: String, _ dtype: DType, _ shape: [Int]) throws(NF4FormatError) -> TensorInfo {
            guard let info = file.info(name + suffix) else { throw fail("missing tensor '\(name + suffix)'") }
            guard info.dtype == dtype else { throw fail("'\(name + suffix)' has dtype \(info.dtype.rawValue), expected \(dtype.rawValue)") }
            guard info.shape == shape else { throw fail("'\(name + suffix)' has shape \(info.shape), expected \(shape)") }
            return info
        }
        guard stateInfo.dtype == .u8, stateInfo.shape.count == 1 else {
            throw fail("quant state has dtype \(stateInfo.dtype.rawValue) shape \(stateInfo.shape), expected U8 [bytes]")
        }
        let state: NF4QuantState
        do { state = try JSONDecoder().decode(NF4QuantState.self, from: Data(file.rawBytes(stateInfo))) }
        catch { throw fail("quant state is not the expected JSON: \(ErrorText.plain(error))") }
        guard state.quantType == "nf4" else { throw fail("quant_type is '\(state.quantType)'; only nf4 is supported") }
        guard state.shape.count == 2, state.shape.allSatisfy({ $0 > 0 }) else { throw fail("shape \(state.shape) is not a 2-D weight shape") }
        guard state.blocksize > 0, state.blocksize % 2 == 0 else { throw fail("blocksize \(state.blocksize) is not positive and even") }
        let (rows, cols) = (state.shape[0], state.shape[1])
        guard case (let n, false) = rows.multipliedReportingOverflow(by: cols) else { throw fail("shape \(state.shape) overflows") }
        let blocks = (n + state.blocksize - 1) / state.blocksize

        let packedInfo = try tensor("", .u8, [(n + 1) / 2, 1])
        let packed = [UInt8](file.rawBytes(packedInfo))
        let mapInfo = try tensor(quantMapSuffix, .f32, [16])
        guard (try? file.floats(mapInfo)) == NF4Matrix.codebook else { throw fail("quant_map is not the NF4 code book") }

        if let nestedBlock = state.nestedBlocksize {
            guard nestedBlock > 0, let offset = state.nestedOffset else { throw fail("nested_blocksize without a valid nested_offset") }
            guard state.nestedDtype == nil || state.nestedDtype == "float32" else { throw fail("nested_dtype '\(state.nestedDtype!)' is not float32") }
            let codes = [UInt8](file.rawBytes(try tensor(absmaxSuffix, .u8, [blocks])))
            let nested = try floats(file, try tensor(nestedAbsmaxSuffix, .f32, [(blocks + nestedBlock - 1) / nestedBlock]), fail)
            let nestedMap = try floats(file, try tensor(nestedQuantMapSuffix, .f32, [256]), fail)
            guard nestedMap == NF4QuantizedAbsmax.dynamicMap else { throw fail("nested_quant_map is not bitsandbytes' 8-bit dynamic map") }
            return NF4Matrix(rows: rows, cols: cols, blockSize: state.blocksize, packed: packed,
                             compressedAbsmax: NF4QuantizedAbsmax(codes: codes, nestedAbsmax: nested, offset: offset, blockSize: nestedBlock))
        }
        let absmax = try floats(file, try tensor(absmaxSuffix, .f32, [blocks]), fail)
        return NF4Matrix(rows: rows, cols: cols, blockSize: state.blocksize, packed: packed, absmax: absmax)
    }

    /// The original dtype recorded in the quant state of `name`, or nil when it is not NF4.
    public static func originalDType(_ name: String, in file: SafeTensorsFile) throws(NF4FormatError) -> String? {
        guard let info = file.info(name + quantStateSuffix) else { return nil }
        do { return try JSONDecoder().decode(NF4QuantState.self, from: Data(file.rawBytes(info))).dtype }
        catch { throw .invalid(path: file.url.path, tensor: name, problem: "quant state is not the expected JSON: \(ErrorText.plain(error))") }
    }

    private static func floats(_ file: SafeTensorsFile, _ info: TensorInfo, _ fail: (String) -> NF4FormatError) throws(NF4FormatError) -> [Float] {
        do { return try file.floats(info) } catch { throw fail("\(error)") }
    }
}

/// A malformed NF4 weight in a safetensors file.
public enum NF4FormatError: Error, CustomStringConvertible, Equatable, Sendable {
    case invalid(path: String, tensor: String, problem: String)

    public var description: String {
        switch self {
        case let .invalid(path, tensor, problem): "\(path): NF4 weight '\(tensor)': \(problem)"
        }
    }
}
