import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A GGUF file (llama.cpp's model format, versions 2 and 3), memory-mapped read-only and fully
/// validated on open.
///
/// `init(url:)` parses the header, every metadata value and every tensor info (see `GGUFHeader`
/// for what is checked and `GGUFLimits` for the caps), so every `GGUFTensorInfo` it hands out
/// lies inside the file and has a byte size that matches its type and dimensions. Tensor data is
/// read lazily through the mapping (`PROT_READ, MAP_PRIVATE`), which lives as long as this
/// object: views from `rawBytes(_:)` are valid only while it is alive. As with any mapping,
/// truncating the file on disk while it is mapped makes later reads fault (SIGBUS).
/// All methods are safe to call from several threads at once.
public final class GGUFFile: @unchecked Sendable {
    public let url: URL
    /// 2 or 3 (they differ only in that version 3 may be big-endian, which this reader refuses).
    public let version: UInt32
    /// Every metadata entry, e.g. `metadata["llama.block_count"]?.int`.
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    /// In file order.
    public let tensors: [GGUFTensorInfo]
    /// `general.alignment` (32 when absent): the data section and every tensor offset are multiples.
    public let alignment: Int
    /// Byte offset of the data section in the file.
    public let dataOffset: Int
    public let fileSize: Int

    private let map: MemoryMap
    private let indexByName: [String: Int]

    /// Opens, maps and validates the file at `url`. Throws `GGUFError` naming the file and, where
    /// there is one, the metadata key or tensor at fault.
    public init(url: URL) throws(GGUFError) {
        let path = url.path
        let map: MemoryMap
        do { map = try MemoryMap(path: path, kind: "GGUF") } catch {
            throw .io(path: path, operation: error.operation, errno: error.errno)
        }
        let size = map.size
        let header: GGUFHeader
        header = try GGUFHeader.parse(map.bytes, path: path)

        self.url = url
        self.version = header.version
        self.metadata = header.metadata
        self.metadataKeys = header.metadataKeys
        self.tensors = header.tensors
        self.alignment = header.alignment
        self.dataOffset = header.dataOffset
        self.fileSize = size
        self.map = map
        self.indexByName = Dictionary(header.tensors.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// `general.architecture`, e.g. `llama`.
    public var architecture: String? { metadata["general.architecture"]?.string }

    /// The tensor called `name`, if the file has one.
    public func info(_ name: String) -> GGUFTensorInfo? {
        indexByName[name].map { tensors[$0] }
    }

    /// The tensor's bytes as stored (quantised blocks), a view into the mapping: no copy, valid
    /// while `self` is alive. `info` must come from this file.
    public func rawBytes(_ info: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        precondition(indexByName[info.name].map { tensors[$0] == info } ?? false,
                     "\(url.lastPathComponent): tensor '\(info.name)' does not belong to this file")
        guard info.byteCount > 0, let base = map.base else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + dataOffset + info.offset, count: info.byteCount)
    }

    /// The tensor's values as `Float`, in storage order (ne0 fastest, i.e. row-major in `shape`),
    /// dequantised exactly as llama.cpp's `dequantize_row_*` does. Supports F32, F16, BF16, Q8_0,
    /// Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K; other types throw `unsupportedTensorType`.
    /// Large tensors are split across the cores.
    public func floats(_ info: GGUFTensorInfo) throws(GGUFError) -> [Float] {
        guard info.type.isDequantizable else {
            throw .unsupportedTensorType(path: url.path, tensor: info.name, type: info.type)
        }
        let bytes = rawBytes(info)
        let count = info.elementCount
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0, let source = bytes.baseAddress, let destination = buffer.baseAddress {
                GGMLDequantizer.dequantize(info.type, source, into: destination, count: count, parallel: true)
            }
            initialized = count
        }
    }

    /// `floats(_:)` of the tensor called `name`; throws `tensorNotFound` if there is none.
    public func floats(named name: String) throws(GGUFError) -> [Float] {
        guard let info = info(name) else { throw .tensorNotFound(path: url.path, tensor: name) }
        return try floats(info)
    }

    /// Drops the tensor's pages from memory (`madvise(MADV_DONTNEED)`, rounded outward to whole
    /// pages) to keep resident memory low while streaming through a model; they are read from
    /// the file again on next access.
    public func release(_ info: GGUFTensorInfo) {
        map.release((dataOffset + info.offset)..<(dataOffset + info.offset + info.byteCount))
    }
}
