import Foundation
import LinearAlgebra
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A safetensors file, memory-mapped read-only and fully validated on open.
///
/// Layout (<https://github.com/huggingface/safetensors>): an unsigned little-endian 64-bit
/// header length N, N bytes of JSON header, then the data section; tensor `data_offsets` are
/// relative to the start of the data section. `init(url:)` checks the whole header (see
/// `SafeTensorsHeader`) before returning, so every `TensorInfo` it hands out lies inside the file.
///
/// The mapping is `PROT_READ, MAP_PRIVATE` and lives as long as this object: views from
/// `rawBytes(_:)` are valid only while the file object is alive. Pages are read lazily and can be
/// dropped again with `release(_:)`. As with any mapping, truncating the file on disk while it is
/// mapped makes later reads of the missing pages fault (SIGBUS); replace files by renaming instead.
/// All methods are safe to call from several threads at once.
public final class SafeTensorsFile: @unchecked Sendable {
    public let url: URL
    /// Sorted by data offset.
    public let tensors: [TensorInfo]
    /// The `__metadata__` object (empty if the header has none).
    public let metadata: [String: String]
    /// N, the header length read from the 8-byte prefix.
    public let headerLength: Int
    /// Size of the whole file in bytes.
    public let fileSize: Int
    /// Byte offset of the data section in the file, `8 + headerLength`.
    public var dataOffset: Int { 8 + headerLength }

    private let map: MemoryMap
    private let indexByName: [String: Int]

    /// Opens, maps and validates the file at `url`. Throws `SafeTensorsError` naming the file and,
    /// for a bad header entry, the tensor.
    public init(url: URL) throws(SafeTensorsError) {
        let path = url.path
        let map: MemoryMap
        do { map = try MemoryMap(path: path, kind: "safetensors") } catch {
            throw .io(path: path, operation: error.operation, errno: error.errno)
        }
        let size = map.size
        guard size >= 8, let mapped = map.base else { throw .fileTooShort(path: path, size: size) }
        let length = try Self.headerLength(mapped, fileSize: size, path: path)
        let header = try SafeTensorsHeader.parse(
            UnsafeRawBufferPointer(start: mapped + 8, count: length), dataSize: size - 8 - length, path: path)

        self.url = url
        self.tensors = header.tensors
        self.metadata = header.metadata
        self.headerLength = length
        self.fileSize = size
        self.map = map
        self.indexByName = Dictionary(header.tensors.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// Reads and checks N: not 0, not past the end of the file, at most 100 MB.
    private static func headerLength(_ mapped: UnsafeRawPointer, fileSize: Int, path: String) throws(SafeTensorsError) -> Int {
        let raw = UInt64(littleEndian: mapped.loadUnaligned(as: UInt64.self))
        guard raw != 0 else { throw .emptyHeader(path: path) }
        guard raw <= UInt64(fileSize - 8) else {
            throw .headerLengthExceedsFile(path: path, headerLength: raw, fileSize: fileSize)
        }
        let length = Int(raw)  // ≤ fileSize, so it fits
        guard length <= SafeTensorsHeader.maximumLength else {
            throw .headerTooLarge(path: path, headerLength: length, limit: SafeTensorsHeader.maximumLength)
        }
        return length
    }

    /// The tensor called `name`, if the file has one.
    public func info(_ name: String) -> TensorInfo? {
        indexByName[name].map { tensors[$0] }
    }

    /// The tensor's bytes, a view into the mapping (no copy; valid while `self` is alive).
    /// `info` must come from this file; a range outside the data section is a programming error.
    public func rawBytes(_ info: TensorInfo) -> UnsafeRawBufferPointer {
        precondition(info.dataRange.upperBound <= fileSize - dataOffset,
                     "\(url.lastPathComponent): tensor '\(info.name)' does not belong to this file")
        return UnsafeRawBufferPointer(start: map.base! + dataOffset + info.dataRange.lowerBound, count: info.dataRange.count)
    }

    /// The tensor's values as `Float`: F32 copied, F16 and BF16 widened exactly.
    /// Other dtypes throw `SafeTensorsError.notFloatConvertible`.
    public func floats(_ info: TensorInfo) throws(SafeTensorsError) -> [Float] {
        guard info.dtype.isFloatConvertible else {
            throw .notFloatConvertible(path: url.path, tensor: info.name, dtype: info.dtype)
        }
        let bytes = rawBytes(info)
        let count = info.elementCount
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            if let source = bytes.baseAddress, let destination = buffer.baseAddress, count > 0 {
                switch info.dtype {
                case .f32: memcpy(destination, source, count * 4)
                case .f16: HalfPrecision.decodeFloat16(source, into: destination, count: count)
                case .bf16: HalfPrecision.decodeBFloat16(source, into: destination, count: count)
                default: break  // excluded by the guard above
                }
            }
            initialized = count
        }
    }

    /// Drops the tensor's pages from memory (`madvise(MADV_DONTNEED)`), rounding outward to whole
    /// pages, so resident memory stays low while streaming through a large model. The data stays
    /// readable: the pages of this read-only private mapping are read from the file again on next
    /// access. Neighbouring tensors sharing a boundary page lose that page the same way.
    public func release(_ info: TensorInfo) {
        map.release((dataOffset + info.dataRange.lowerBound)..<(dataOffset + info.dataRange.upperBound))
    }
}
