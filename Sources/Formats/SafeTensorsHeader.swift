import Foundation

/// One tensor of a safetensors file, as described by its header entry.
public struct TensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    /// Row-major dimensions; `[]` is a scalar (one element).
    public let shape: [Int]
    /// Byte range relative to the start of the data section (just after the header).
    public let dataRange: Range<Int>

    /// Product of `shape` (validated not to overflow when the header was read).
    public var elementCount: Int { DType.elementCount(shape) ?? 0 }
    /// Bytes the tensor occupies, `elementCount × dtype.byteSize`.
    public var byteCount: Int { dataRange.count }
}

/// The parsed and validated JSON header of a safetensors file.
///
/// Validation follows the reference implementation (huggingface/safetensors, `validate`):
/// the header is a UTF-8 JSON object; `__metadata__`, if present, maps strings to strings;
/// every other key is a tensor with a known `dtype`, a `shape` of non-negative integers whose
/// byte size does not overflow, and `data_offsets` `[begin, end]` of non-negative integers with
/// `end - begin` equal to that byte size. Sorted by offset, the tensors must tile the data section
/// exactly: no overlaps, no gaps, nothing left over at the end. Zero-element tensors (span 0) are
/// allowed anywhere a boundary is. Unknown fields inside an entry are ignored, as the reference does.
/// Slightly more lenient than the reference: integers may be spelled `4.0` or `4e0` (Foundation's
/// decoder reads any number that is exactly an integer as one); `4.5`, `1e30` and `-1` are refused.
/// If a key appears twice in the header, Foundation's decoder keeps the first; the other copy's
/// bytes then show up as a gap, so such a file is still rejected unless that tensor is empty.
struct SafeTensorsHeader {
    /// Upper bound on the header length, as in the reference implementation (100 MB).
    static let maximumLength = 100_000_000

    /// Sorted by `(dataRange.lowerBound, dataRange.upperBound, name)`.
    var tensors: [TensorInfo]
    var metadata: [String: String]

    /// Parses `bytes` (the header, without the 8-byte prefix) for a file whose data section has
    /// `dataSize` bytes. `path` is only used in error messages.
    static func parse(
        _ bytes: UnsafeRawBufferPointer, dataSize: Int, path: String
    ) throws(SafeTensorsError) -> SafeTensorsHeader {
        guard String(validating: bytes, as: UTF8.self) != nil else { throw .headerNotUTF8(path: path) }
        let root: JSONValue
        do {
            root = try JSONDecoder().decode(JSONValue.self, from: Data(bytes))
        } catch {
            throw .headerNotJSON(path: path, detail: ErrorText.plain(error))
        }
        guard case let .object(entries) = root else { throw .headerNotObject(path: path) }

        var metadata: [String: String] = [:]
        var tensors: [TensorInfo] = []
        tensors.reserveCapacity(entries.count)
        for (key, value) in entries {
            if key == "__metadata__" {
                metadata = try parseMetadata(value, path: path)
            } else {
                tensors.append(try parseEntry(name: key, value, dataSize: dataSize, path: path))
            }
        }
        tensors.sort {
            ($0.dataRange.lowerBound, $0.dataRange.upperBound, $0.name)
                < ($1.dataRange.lowerBound, $1.dataRange.upperBound, $1.name)
        }
        try checkTiling(tensors, dataSize: dataSize, path: path)
        return SafeTensorsHeader(tensors: tensors, metadata: metadata)
    }

    private static func parseMetadata(_ value: JSONValue, path: String) throws(SafeTensorsError) -> [String: String] {
        guard case let .object(pairs) = value else {
            throw .invalidMetadata(path: path, problem: "must be an object of strings, found \(value.rendered)")
        }
        var metadata: [String: String] = [:]
        for (key, value) in pairs {
            guard case let .string(text) = value else {
                throw .invalidMetadata(path: path, problem: "must map strings to strings, but '\(key)' is \(value.rendered)")
            }
            metadata[key] = text
        }
        return metadata
    }

    private static func parseEntry(
        name: String, _ value: JSONValue, dataSize: Int, path: String
    ) throws(SafeTensorsError) -> TensorInfo {
        guard case let .object(fields) = value else {
            throw .malformedEntry(path: path, tensor: name,
                                  problem: "entry must be an object with dtype, shape and data_offsets, found \(value.rendered)")
        }
        guard case let .string(dtypeName)? = fields["dtype"] else {
            throw .malformedEntry(path: path, tensor: name,
                                  problem: "'dtype' must be a string, \(found(fields["dtype"]))")
        }
        guard let dtype = DType(rawValue: dtypeName) else {
            throw .unknownDType(path: path, tensor: name, dtype: dtypeName)
        }
        guard let shape = fields["shape"]?.nonNegativeIntegers else {
            throw .malformedEntry(path: path, tensor: name,
                                  problem: "'shape' must be an array of non-negative integers, \(found(fields["shape"]))")
        }
        guard let byteCount = dtype.byteCount(shape: shape) else {
            throw .shapeOverflow(path: path, tensor: name, shape: shape)
        }
        guard let offsets = fields["data_offsets"]?.nonNegativeIntegers, offsets.count == 2 else {
            throw .invalidOffsets(path: path, tensor: name,
                                  problem: "must be two non-negative integers, \(found(fields["data_offsets"]))")
        }
        let (begin, end) = (offsets[0], offsets[1])
        guard begin <= end else {
            throw .invalidOffsets(path: path, tensor: name, problem: "[\(begin), \(end)] begin after end")
        }
        guard end - begin == byteCount else {
            throw .byteSizeMismatch(path: path, tensor: name, shape: shape, dtype: dtype, span: end - begin)
        }
        guard end <= dataSize else {
            throw .spanOutOfRange(path: path, tensor: name, begin: begin, end: end, dataSize: dataSize)
        }
        return TensorInfo(name: name, dtype: dtype, shape: shape, dataRange: begin..<end)
    }

    /// "found <value>" or "but it is missing", for messages about a field.
    private static func found(_ value: JSONValue?) -> String {
        value.map { "found \($0.rendered)" } ?? "but it is missing"
    }

    /// Checks that the sorted spans cover `0..<dataSize` exactly once.
    private static func checkTiling(_ tensors: [TensorInfo], dataSize: Int, path: String) throws(SafeTensorsError) {
        var cursor = 0
        var owner: TensorInfo?  // the tensor whose end is `cursor`
        for tensor in tensors {
            let span = tensor.dataRange
            if span.lowerBound < cursor, let owner {
                throw .overlappingTensors(path: path, first: owner.name, firstSpan: owner.dataRange,
                                          second: tensor.name, secondSpan: span)
            }
            if span.lowerBound > cursor {
                throw .gapInData(path: path, gap: cursor..<span.lowerBound, after: owner?.name, before: tensor.name)
            }
            cursor = span.upperBound
            owner = tensor
        }
        if cursor != dataSize {
            throw .gapInData(path: path, gap: cursor..<dataSize, after: owner?.name, before: nil)
        }
    }
}

/// A JSON value, decoded with Foundation's `JSONDecoder` (which bounds nesting depth).
///
/// Integers are kept apart from other numbers: a number becomes `.integer` only when it is
/// exactly representable as `Int` (so `1e30`, `1.5` and `18446744073709551616` are `.number`).
indirect enum JSONValue: Decodable, Sendable {
    case null
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Tries the types in order of frequency in safetensors headers (integers in shapes and
    /// offsets, then objects, arrays and strings): each failed attempt costs a thrown error.
    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Int.self) {
            self = .integer(value)
        } else if let value = try? container.decode([String: JSONValue].self) {
            self = .object(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if container.decodeNil() {
            self = .null
        } else {
            throw DecodingError.dataCorrupted(.init(
                codingPath: decoder.codingPath,
                debugDescription: "value at \(decoder.codingPath.map(\.stringValue)) cannot be decoded"
                    + " (a string with an invalid escape, or nesting too deep?)"))
        }
    }

    /// The elements when this is an array of integers that are all ≥ 0.
    var nonNegativeIntegers: [Int]? {
        guard case let .array(items) = self else { return nil }
        var values: [Int] = []
        values.reserveCapacity(items.count)
        for item in items {
            guard case let .integer(value) = item, value >= 0 else { return nil }
            values.append(value)
        }
        return values
    }

    /// Compact JSON-like text for error messages: at most 3 levels and 8 items per level,
    /// cut at about 80 characters.
    var rendered: String {
        let text = rendered(depth: 3)
        return text.count > 80 ? String(text.prefix(77)) + "..." : text
    }

    private func rendered(depth: Int) -> String {
        switch self {
        case .null: return "null"
        case let .bool(value): return "\(value)"
        case let .integer(value): return "\(value)"
        case let .number(value): return "\(value)"
        case let .string(value): return "\"\(value.prefix(80))\""
        case let .array(items):
            guard depth > 0 else { return "[...]" }
            let shown = items.prefix(8).map { $0.rendered(depth: depth - 1) }
            return "[" + (shown + (items.count > 8 ? ["..."] : [])).joined(separator: ", ") + "]"
        case let .object(fields):
            guard depth > 0 else { return "{...}" }
            let shown = fields.keys.sorted().prefix(8).map {
                "\"\($0.prefix(80))\": " + (fields[$0]?.rendered(depth: depth - 1) ?? "")
            }
            return "{" + (shown + (fields.count > 8 ? ["..."] : [])).joined(separator: ", ") + "}"
        }
    }
}
