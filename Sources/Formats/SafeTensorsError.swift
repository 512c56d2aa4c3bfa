#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Everything that can go wrong reading or writing safetensors files and sharded checkpoints.
///
/// Every case carries the path of the file involved (and the tensor, where there is one), and
/// `description` is a one-line message meant for the user, e.g.
/// `model.safetensors: tensor 'a.weight' shape [3, 4] × F32 = 48 bytes but data_offsets span 40 bytes`.
public enum SafeTensorsError: Error, CustomStringConvertible, Equatable, Sendable {
    // MARK: I/O
    /// A system call failed; `operation` says what was attempted ("open", "map", "rename to …").
    case io(path: String, operation: String, errno: Int32)

    // MARK: The 8-byte prefix and the header
    case fileTooShort(path: String, size: Int)
    case emptyHeader(path: String)
    case headerLengthExceedsFile(path: String, headerLength: UInt64, fileSize: Int)
    case headerTooLarge(path: String, headerLength: Int, limit: Int)
    case headerNotUTF8(path: String)
    case headerNotJSON(path: String, detail: String)
    case headerNotObject(path: String)
    /// `__metadata__` is not an object of strings.
    case invalidMetadata(path: String, problem: String)

    // MARK: Tensor entries
    /// An entry is not an object, or its `dtype` / `shape` is missing or ill-typed.
    case malformedEntry(path: String, tensor: String, problem: String)
    case unknownDType(path: String, tensor: String, dtype: String)
    case shapeOverflow(path: String, tensor: String, shape: [Int])
    /// `data_offsets` is not two non-negative integers with begin ≤ end.
    case invalidOffsets(path: String, tensor: String, problem: String)
    case byteSizeMismatch(path: String, tensor: String, shape: [Int], dtype: DType, span: Int)
    case spanOutOfRange(path: String, tensor: String, begin: Int, end: Int, dataSize: Int)
    case overlappingTensors(path: String, first: String, firstSpan: Range<Int>, second: String, secondSpan: Range<Int>)
    /// Bytes of the data section that no tensor covers; `after`/`before` name the neighbours.
    case gapInData(path: String, gap: Range<Int>, after: String?, before: String?)

    // MARK: Reading values
    case notFloatConvertible(path: String, tensor: String, dtype: DType)

    // MARK: Sharded checkpoints
    case noSafeTensorsFiles(directory: String)
    case invalidIndex(path: String, problem: String)
    case missingShard(index: String, shard: String)
    case tensorMissingFromShard(index: String, tensor: String, shard: String)
    case tensorNotInIndex(index: String, tensor: String, shard: String)
    case duplicateTensor(tensor: String, firstFile: String, secondFile: String)

    // MARK: Writing
    case invalidSpec(path: String, tensor: String, problem: String)
    case unknownTensor(path: String, tensor: String)
    case byteCountMismatch(path: String, tensor: String, expected: Int, actual: Int)
    case elementCountMismatch(path: String, tensor: String, expected: Int, actual: Int)
    case alreadyWritten(path: String, tensor: String)
    case tensorsNotWritten(path: String, tensors: [String])
    case writerClosed(path: String)

    public var description: String {
        switch self {
        case let .io(path, operation, code):
            return "\(path): cannot \(operation): \(String(cString: strerror(code)))"
        case let .fileTooShort(path, size):
            return "\(path): file is \(size) bytes, shorter than the 8-byte header-length prefix"
        case let .emptyHeader(path):
            return "\(path): header length is 0"
        case let .headerLengthExceedsFile(path, length, size):
            return "\(path): header length \(length) exceeds file size \(size)"
        case let .headerTooLarge(path, length, limit):
            return "\(path): header length \(length) exceeds the limit of \(limit) bytes"
        case let .headerNotUTF8(path):
            return "\(path): header is not valid UTF-8"
        case let .headerNotJSON(path, detail):
            return "\(path): header is not valid JSON (\(detail))"
        case let .headerNotObject(path):
            return "\(path): header is JSON but not an object"
        case let .invalidMetadata(path, problem):
            return "\(path): __metadata__ \(problem)"
        case let .malformedEntry(path, tensor, problem):
            return "\(path): tensor '\(tensor)': \(problem)"
        case let .unknownDType(path, tensor, dtype):
            let known = DType.allCases.map(\.rawValue).joined(separator: ", ")
            return "\(path): tensor '\(tensor)' has unknown dtype '\(dtype)' (known: \(known))"
        case let .shapeOverflow(path, tensor, shape):
            return "\(path): tensor '\(tensor)' shape \(shape) has more elements or bytes than fit in a 64-bit integer"
        case let .invalidOffsets(path, tensor, problem):
            return "\(path): tensor '\(tensor)': data_offsets \(problem)"
        case let .byteSizeMismatch(path, tensor, shape, dtype, span):
            let bytes = dtype.byteCount(shape: shape).map(String.init) ?? "?"
            return "\(path): tensor '\(tensor)' shape \(shape) × \(dtype.rawValue) = \(bytes) bytes"
                + " but data_offsets span \(span) bytes"
        case let .spanOutOfRange(path, tensor, begin, end, dataSize):
            return "\(path): tensor '\(tensor)' data_offsets [\(begin), \(end)] run past the end"
                + " of the \(dataSize)-byte data section"
        case let .overlappingTensors(path, first, firstSpan, second, secondSpan):
            return "\(path): tensors '\(first)' [\(firstSpan.lowerBound), \(firstSpan.upperBound))"
                + " and '\(second)' [\(secondSpan.lowerBound), \(secondSpan.upperBound)) overlap"
        case let .gapInData(path, gap, after, before):
            let place = switch (after, before) {
            case let (a?, b?): "between tensors '\(a)' and '\(b)'"
            case let (a?, nil): "after the last tensor '\(a)'"
            case let (nil, b?): "before the first tensor '\(b)'"
            case (nil, nil): "with no tensors in the header"
            }
            return "\(path): data bytes [\(gap.lowerBound), \(gap.upperBound)) \(place) belong to no tensor"
                + " (the data section must be covered contiguously)"
        case let .notFloatConvertible(path, tensor, dtype):
            return "\(path): tensor '\(tensor)' is \(dtype.rawValue); only F32, F16 and BF16 convert to Float"
        case let .noSafeTensorsFiles(directory):
            return "\(directory): no model.safetensors.index.json and no .safetensors files"
        case let .invalidIndex(path, problem):
            return "\(path): \(problem)"
        case let .missingShard(index, shard):
            return "\(index): shard '\(shard)' named in weight_map does not exist"
        case let .tensorMissingFromShard(index, tensor, shard):
            return "\(index): weight_map puts tensor '\(tensor)' in '\(shard)', which does not contain it"
        case let .tensorNotInIndex(index, tensor, shard):
            return "\(index): tensor '\(tensor)' in shard '\(shard)' is not listed in weight_map for that shard"
        case let .duplicateTensor(tensor, first, second):
            return "tensor '\(tensor)' appears in both \(first) and \(second)"
        case let .invalidSpec(path, tensor, problem):
            return "\(path): cannot lay out tensor '\(tensor)': \(problem)"
        case let .unknownTensor(path, tensor):
            return "\(path): no tensor named '\(tensor)' in the layout"
        case let .byteCountMismatch(path, tensor, expected, actual):
            return "\(path): tensor '\(tensor)' needs \(expected) bytes, got \(actual)"
        case let .elementCountMismatch(path, tensor, expected, actual):
            return "\(path): tensor '\(tensor)' needs \(expected) elements, got \(actual)"
        case let .alreadyWritten(path, tensor):
            return "\(path): tensor '\(tensor)' was already written"
        case let .tensorsNotWritten(path, tensors):
            let shown = tensors.prefix(5).map { "'\($0)'" }.joined(separator: ", ")
            let more = tensors.count > 5 ? " and \(tensors.count - 5) more" : ""
            return "\(path): cannot commit, \(tensors.count) tensor(s) not written: \(shown)\(more)"
        case let .writerClosed(path):
            return "\(path): writer was already committed or abandoned"
        }
    }
}
