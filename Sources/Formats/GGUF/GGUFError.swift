#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Everything that can go wrong reading a GGUF file or mapping it to Hugging Face Llama names.
///
/// Every case carries the path of the file, and the metadata key or tensor involved where there
/// is one; `description` is a one-line message for the user, e.g.
/// `model.gguf: tensor 'blk.0.attn_q.weight' data [4096, 4400) runs past the end of the 4200-byte data section`.
public enum GGUFError: Error, CustomStringConvertible, Equatable, Sendable {
    // MARK: I/O
    /// A system call failed; `operation` says what was attempted.
    case io(path: String, operation: String, errno: Int32)

    // MARK: Header and structure
    /// The file ends inside a structure: `needed` bytes at `offset` were wanted for `context`.
    case truncated(path: String, offset: Int, needed: UInt64, fileSize: Int, context: String)
    case badMagic(path: String, found: [UInt8])
    /// Version 1 (32-bit counts), a byte-swapped (big-endian) file, or a version from the future.
    case unsupportedVersion(path: String, version: UInt32)
    /// A count (tensors, metadata entries, array elements) over the reader's cap (`GGUFLimits`).
    /// A count within the cap that the rest of the file cannot hold is `truncated`.
    case countTooLarge(path: String, what: String, count: UInt64, limit: UInt64)
    case stringTooLong(path: String, context: String, length: UInt64, limit: UInt64)
    case invalidUTF8(path: String, context: String)

    // MARK: Metadata
    case unknownValueType(path: String, key: String, type: UInt32)
    case nestingTooDeep(path: String, key: String, limit: Int)
    /// A value that its type does not allow, e.g. a bool byte that is neither 0 nor 1.
    case invalidValue(path: String, key: String, problem: String)
    case duplicateKey(path: String, key: String)
    /// `general.alignment` is not a `uint32` power of two.
    case invalidAlignment(path: String, problem: String)

    // MARK: Tensor infos
    case tooManyDimensions(path: String, tensor: String, count: UInt32, limit: Int)
    /// The element count or byte size of the dimensions (innermost first) overflows 64 bits.
    case shapeOverflow(path: String, tensor: String, dimensions: [UInt64])
    case unknownTensorType(path: String, tensor: String, type: UInt32)
    /// ne0, the innermost dimension, is not a multiple of the type's block size.
    case blockSizeMismatch(path: String, tensor: String, type: GGMLType, innermost: Int, blockSize: Int)
    case misalignedOffset(path: String, tensor: String, offset: UInt64, alignment: Int)
    /// `offset` (relative to the data section) plus `byteCount` runs past the data section.
    case dataOutOfRange(path: String, tensor: String, offset: UInt64, byteCount: Int, dataSize: Int)
    case duplicateTensor(path: String, tensor: String)
    case overlappingTensors(path: String, first: String, second: String)

    // MARK: Reading tensors
    case unsupportedTensorType(path: String, tensor: String, type: GGMLType)
    case tensorNotFound(path: String, tensor: String)

    // MARK: Llama mapping
    case unsupportedArchitecture(path: String, architecture: String)
    case missingMetadata(path: String, key: String)
    case wrongMetadataType(path: String, key: String, expected: String, found: GGUFValueType)
    case invalidHyperparameter(path: String, key: String, problem: String)
    case unknownHuggingFaceName(path: String, name: String)
    /// Llama tensors missing or shaped differently from what the hyperparameters say, all listed.
    case inconsistentModel(path: String, problems: [String])

    public var description: String {
        switch self {
        case let .io(path, operation, code):
            return "\(path): cannot \(operation): \(String(cString: strerror(code)))"
        case let .truncated(path, offset, needed, fileSize, context):
            return "\(path): file ends while reading \(context): needs \(needed) bytes at offset \(offset),"
                + " the file has \(fileSize)"
        case let .badMagic(path, found):
            let hex = found.map { String($0, radix: 16, uppercase: true) }.map { $0.count == 1 ? "0" + $0 : $0 }
            return "\(path): not a GGUF file (magic bytes \(hex.joined(separator: " ")), expected 47 47 55 46 \"GGUF\")"
        case let .unsupportedVersion(path, version):
            let why = switch version {
            case 1: "version 1 (32-bit counts, 2023) is not supported; convert the file again with a current llama.cpp"
            case _ where version & 0xFFFF == 0 && version != 0: "this looks like a big-endian file, which is not supported"
            default: "only versions 2 and 3 are supported"
            }
            return "\(path): GGUF version \(version): \(why)"
        case let .countTooLarge(path, what, count, limit):
            return "\(path): \(what) is \(count), more than the limit of \(limit)"
        case let .stringTooLong(path, context, length, limit):
            return "\(path): \(context) has length \(length), more than the limit of \(limit) bytes"
        case let .invalidUTF8(path, context):
            return "\(path): \(context) is not valid UTF-8"
        case let .unknownValueType(path, key, type):
            return "\(path): metadata '\(key)' has unknown value type \(type) (known: 0…12)"
        case let .nestingTooDeep(path, key, limit):
            return "\(path): metadata '\(key)' nests arrays more than \(limit) deep"
        case let .invalidValue(path, key, problem):
            return "\(path): metadata '\(key)': \(problem)"
        case let .duplicateKey(path, key):
            return "\(path): metadata key '\(key)' appears twice"
        case let .invalidAlignment(path, problem):
            return "\(path): general.alignment \(problem)"
        case let .tooManyDimensions(path, tensor, count, limit):
            return "\(path): tensor '\(tensor)' has \(count) dimensions, at most \(limit) are allowed"
        case let .shapeOverflow(path, tensor, dimensions):
            return "\(path): tensor '\(tensor)' dimensions \(dimensions) have more elements or bytes than fit in 64 bits"
        case let .unknownTensorType(path, tensor, type):
            return "\(path): tensor '\(tensor)' has unknown ggml type \(type)"
        case let .blockSizeMismatch(path, tensor, type, innermost, blockSize):
            return "\(path): tensor '\(tensor)' is \(type.name) (blocks of \(blockSize)) but its innermost"
                + " dimension \(innermost) is not a multiple of \(blockSize)"
        case let .misalignedOffset(path, tensor, offset, alignment):
            return "\(path): tensor '\(tensor)' data offset \(offset) is not a multiple of the alignment \(alignment)"
        case let .dataOutOfRange(path, tensor, offset, byteCount, dataSize):
            let end = offset.addingReportingOverflow(UInt64(byteCount))
            let endText = end.overflow ? "2^64+" : "\(end.partialValue)"
            return "\(path): tensor '\(tensor)' data [\(offset), \(endText)) runs past the end of the"
                + " \(dataSize)-byte data section"
        case let .duplicateTensor(path, tensor):
            return "\(path): tensor name '\(tensor)' appears twice"
        case let .overlappingTensors(path, first, second):
            return "\(path): the data of tensors '\(first)' and '\(second)' overlap"
        case let .unsupportedTensorType(path, tensor, type):
            let known = GGMLType.allCases.filter(\.isDequantizable).map(\.name).joined(separator: ", ")
            return "\(path): tensor '\(tensor)' is \(type.name), which cannot be dequantised (supported: \(known))"
        case let .tensorNotFound(path, tensor):
            return "\(path): no tensor named '\(tensor)'"
        case let .unsupportedArchitecture(path, architecture):
            return "\(path): general.architecture '\(architecture)' is not supported"
        case let .missingMetadata(path, key):
            return "\(path): metadata '\(key)' is missing"
        case let .wrongMetadataType(path, key, expected, found):
            return "\(path): metadata '\(key)' is \(found), expected \(expected)"
        case let .invalidHyperparameter(path, key, problem):
            return "\(path): \(key): \(problem)"
        case let .unknownHuggingFaceName(path, name):
            return "\(path): '\(name)' is not a Hugging Face tensor name this file provides"
        case let .inconsistentModel(path, problems):
            return "\(path): \(problems.count) tensor problem\(problems.count == 1 ? "" : "s"): " + problems.prefix(8).joined(separator: "; ")
                + (problems.count > 8 ? "; …" : "")
        }
    }
}
