/// The caps the GGUF reader puts on what a file may claim, so that a crafted file is refused
/// with a clear error before anything is allocated for it.
///
/// Every count is also checked against the bytes left in the file (each array element, metadata
/// entry and tensor info takes at least one byte, a string at least eight), so memory stays a
/// small multiple of the file size; the caps below only bound what a large file may ask for.
public enum GGUFLimits {
    /// Tensor names: 64 bytes in ggml (`GGML_MAX_NAME`); we allow longer, up to this.
    public static let maximumTensorNameLength = 4096
    /// Keys: the GGUF specification allows at most 65535 bytes.
    public static let maximumKeyLength = 65_535
    /// String values: chat templates take kilobytes, an embedded `tokenizer.huggingface.json`
    /// a few megabytes.
    public static let maximumStringLength = 64 << 20
    /// Elements of one array (SmolLM2 has 49,152 tokens, Gemma 3 262,144).
    public static let maximumArrayCount = 1 << 26
    /// Arrays inside arrays: an array directly in a metadata entry is depth 1.
    public static let maximumNesting = 4
    public static let maximumKeyValueCount = 1 << 20
    public static let maximumTensorCount = 1 << 20
    /// ggml tensors have at most four dimensions (`GGML_MAX_DIMS`).
    public static let maximumDimensions = 4
}

/// The parsed and validated header of a GGUF file: everything before the data section.
///
/// Layout (little-endian; <https://github.com/ggml-org/ggml/blob/master/docs/gguf.md>):
/// magic `GGUF`, `uint32` version (2 or 3; both use 64-bit counts), `uint64` tensor count,
/// `uint64` metadata count, the metadata entries (string key, `uint32` value type, value), the
/// tensor infos (string name, `uint32` dimension count, `uint64` dimensions innermost first,
/// `uint32` ggml type, `uint64` offset), padding up to `general.alignment` (default 32), then
/// the data section. A string is a `uint64` length and that many UTF-8 bytes; an array is a
/// `uint32` element type, a `uint64` count and the elements.
///
/// Beyond reading, it checks what llama.cpp's `gguf_init_from_file` checks — known value and
/// tensor types, no duplicate keys or tensor names, a power-of-two alignment, at most four
/// dimensions, element counts and byte sizes without overflow, rows that are whole blocks,
/// aligned offsets, data inside the file — and also that bools are 0 or 1, strings are UTF-8,
/// and tensors do not overlap. Unlike llama.cpp it does not require the tensors to be packed in
/// file order.
struct GGUFHeader {
    static let defaultAlignment = 32

    var version: UInt32
    var metadata: [String: GGUFValue]
    /// Keys in file order.
    var metadataKeys: [String]
    /// In file order.
    var tensors: [GGUFTensorInfo]
    var alignment: Int
    /// Byte offset of the data section in the file (may equal the file size when there is no data).
    var dataOffset: Int

    /// Parses `bytes`, the whole file. `path` is only used in error messages.
    static func parse(_ bytes: UnsafeRawBufferPointer, path: String) throws(GGUFError) -> GGUFHeader {
        var cursor = GGUFCursor(bytes: bytes, path: path)

        let magic = try cursor.take(4, "the magic number")
        guard Array(magic) == Array("GGUF".utf8) else { throw .badMagic(path: path, found: Array(magic)) }
        let version = try cursor.read(UInt32.self, "the version")
        guard version == 2 || version == 3 else { throw .unsupportedVersion(path: path, version: version) }
        let tensorCount = try cursor.count("the tensor count", limit: GGUFLimits.maximumTensorCount,
                                           minimumBytesEach: 24, of: "tensor infos")
        let keyValueCount = try cursor.count("the metadata entry count", limit: GGUFLimits.maximumKeyValueCount,
                                             minimumBytesEach: 13, of: "metadata entries")

        var metadata: [String: GGUFValue] = [:]
        var keys: [String] = []
        metadata.reserveCapacity(keyValueCount)
        keys.reserveCapacity(keyValueCount)
        for index in 0..<keyValueCount {
            let key = try cursor.string("the key of metadata entry \(index)", limit: GGUFLimits.maximumKeyLength)
            let rawType = try cursor.read(UInt32.self, "the value type of '\(key)'")
            guard let type = GGUFValueType(rawValue: rawType) else {
                throw .unknownValueType(path: path, key: key, type: rawType)
            }
            let value = try cursor.value(type, key: key)
            guard metadata.updateValue(value, forKey: key) == nil else { throw .duplicateKey(path: path, key: key) }
            keys.append(key)
        }

        let alignment = try Self.alignment(metadata["general.alignment"], path: path)

        var infos: [RawTensorInfo] = []
        var seen = Set<String>()
        infos.reserveCapacity(tensorCount)
        seen.reserveCapacity(tensorCount)
        for index in 0..<tensorCount {
            let info = try cursor.tensorInfo(index: index, alignment: alignment)
            guard seen.insert(info.name).inserted else { throw .duplicateTensor(path: path, tensor: info.name) }
            infos.append(info)
        }

        // position ≤ file size < 2^63 and alignment ≤ 2^31: no overflow.
        let dataOffset = (cursor.position + alignment - 1) / alignment * alignment
        let tensors = try Self.placeData(infos, dataSize: max(0, bytes.count - dataOffset), path: path)
        return GGUFHeader(version: version, metadata: metadata, metadataKeys: keys, tensors: tensors,
                          alignment: alignment, dataOffset: dataOffset)
    }

    /// `general.alignment`: a `uint32` power of two, 32 when absent.
    private static func alignment(_ value: GGUFValue?, path: String) throws(GGUFError) -> Int {
        guard let value else { return defaultAlignment }
        guard case let .uint32(raw) = value else {
            throw .invalidAlignment(path: path, problem: "is a \(value.type), expected uint32")
        }
        guard raw != 0, raw & (raw - 1) == 0 else {
            throw .invalidAlignment(path: path, problem: "is \(raw), not a power of two")
        }
        return Int(raw)
    }

    /// Checks that every tensor's data lies inside the data section and that no two overlap.
    private static func placeData(
        _ infos: [RawTensorInfo], dataSize: Int, path: String
    ) throws(GGUFError) -> [GGUFTensorInfo] {
        var tensors: [GGUFTensorInfo] = []
        tensors.reserveCapacity(infos.count)
        for raw in infos {
            guard raw.offset <= UInt64(dataSize), raw.byteCount <= dataSize - Int(raw.offset) else {
                throw .dataOutOfRange(path: path, tensor: raw.name, offset: raw.offset,
                                      byteCount: raw.byteCount, dataSize: dataSize)
            }
            tensors.append(GGUFTensorInfo(name: raw.name, dimensions: raw.dimensions, type: raw.type,
                                          offset: Int(raw.offset), byteCount: raw.byteCount,
                                          elementCount: raw.elementCount))
        }
        let order = tensors.indices.filter { tensors[$0].byteCount > 0 }
            .sorted { (tensors[$0].offset, $0) < (tensors[$1].offset, $1) }
        for (a, b) in zip(order, order.dropFirst()) where tensors[a].dataRange.upperBound > tensors[b].offset {
            throw .overlappingTensors(path: path, first: tensors[a].name, second: tensors[b].name)
        }
        return tensors
    }
}

/// A tensor info as read, before its data range is checked against the data section.
struct RawTensorInfo {
    var name: String
    var dimensions: [Int]
    var type: GGMLType
    var offset: UInt64
    var byteCount: Int
    var elementCount: Int
}

/// Reads little-endian values from the mapped file, checking every length against what is left.
struct GGUFCursor {
    let bytes: UnsafeRawBufferPointer
    let path: String
    private(set) var position = 0

    init(bytes: UnsafeRawBufferPointer, path: String) {
        self.bytes = bytes
        self.path = path
    }

    var remaining: Int { bytes.count - position }

    /// The next `count` bytes; `context` (what is being read) is only evaluated on error.
    mutating func take(_ count: UInt64, _ context: @autoclosure () -> String) throws(GGUFError) -> UnsafeRawBufferPointer {
        guard count <= UInt64(remaining) else {
            throw .truncated(path: path, offset: position, needed: count, fileSize: bytes.count, context: context())
        }
        let slice = UnsafeRawBufferPointer(rebasing: bytes[position..<(position + Int(count))])
        position += Int(count)
        return slice
    }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ context: @autoclosure () -> String) throws(GGUFError) -> T {
        let slice = try take(UInt64(MemoryLayout<T>.size), context())
        return T(littleEndian: slice.loadUnaligned(as: T.self))
    }

    /// A `uint64` count, at most `limit`, of things that take at least `minimumBytesEach` bytes
    /// each, all of which must fit in the rest of the file.
    mutating func count(
        _ what: @autoclosure () -> String, limit: Int, minimumBytesEach: Int, of things: @autoclosure () -> String
    ) throws(GGUFError) -> Int {
        let raw = try read(UInt64.self, what())
        guard raw <= UInt64(limit) else {
            throw .countTooLarge(path: path, what: what(), count: raw, limit: UInt64(limit))
        }
        let needed = raw * UInt64(minimumBytesEach)  // < 2^26 · 2^4: no overflow
        guard needed <= UInt64(remaining) else {
            throw .truncated(path: path, offset: position, needed: needed, fileSize: bytes.count,
                             context: "\(raw) \(things()) (at least \(minimumBytesEach) bytes each)")
        }
        return Int(raw)
    }

    /// A `uint64` length, at most `limit`, and that many bytes of UTF-8.
    mutating func string(_ context: @autoclosure () -> String, limit: Int) throws(GGUFError) -> String {
        let length = try read(UInt64.self, "the length of \(context())")
        guard length <= UInt64(limit) else {
            throw .stringTooLong(path: path, context: context(), length: length, limit: UInt64(limit))
        }
        let raw = try take(length, context())
        guard let text = String(validating: raw, as: UTF8.self) else { throw .invalidUTF8(path: path, context: context()) }
        return text
    }

    /// A metadata value of `type` belonging to `key`.
    mutating func value(_ type: GGUFValueType, key: String) throws(GGUFError) -> GGUFValue {
        let context = { "the value of '\(key)'" }
        switch type {
        case .uint8: return .uint8(try read(UInt8.self, context()))
        case .int8: return .int8(try read(Int8.self, context()))
        case .uint16: return .uint16(try read(UInt16.self, context()))
        case .int16: return .int16(try read(Int16.self, context()))
        case .uint32: return .uint32(try read(UInt32.self, context()))
        case .int32: return .int32(try read(Int32.self, context()))
        case .uint64: return .uint64(try read(UInt64.self, context()))
        case .int64: return .int64(try read(Int64.self, context()))
        case .float32: return .float32(Float(bitPattern: try read(UInt32.self, context())))
        case .float64: return .float64(Double(bitPattern: try read(UInt64.self, context())))
        case .bool:
            let byte = try read(UInt8.self, context())
            guard byte <= 1 else { throw .invalidValue(path: path, key: key, problem: "bool byte is \(byte), not 0 or 1") }
            return .bool(byte == 1)
        case .string: return .string(try string(context(), limit: GGUFLimits.maximumStringLength))
        case .array: return .array(try array(key: key, depth: 1))
        }
    }

    /// An array value (element type, count, elements) at nesting `depth` (1 = directly in an entry).
    mutating func array(key: String, depth: Int) throws(GGUFError) -> GGUFArray {
        guard depth <= GGUFLimits.maximumNesting else {
            throw .nestingTooDeep(path: path, key: key, limit: GGUFLimits.maximumNesting)
        }
        let rawType = try read(UInt32.self, "the element type of array '\(key)'")
        guard let type = GGUFValueType(rawValue: rawType) else {
            throw .unknownValueType(path: path, key: key, type: rawType)
        }
        let count = try self.count("the length of array '\(key)'", limit: GGUFLimits.maximumArrayCount,
                                   minimumBytesEach: type.minimumEncodedSize, of: "\(type) elements of array '\(key)'")
        switch type {
        case .uint8: return .uint8(try numbers(count, key))
        case .int8: return .int8(try numbers(count, key))
        case .uint16: return .uint16(try numbers(count, key))
        case .int16: return .int16(try numbers(count, key))
        case .uint32: return .uint32(try numbers(count, key))
        case .int32: return .int32(try numbers(count, key))
        case .uint64: return .uint64(try numbers(count, key))
        case .int64: return .int64(try numbers(count, key))
        case .float32: return .float32((try numbers(count, key) as [UInt32]).map { Float(bitPattern: $0) })
        case .float64: return .float64((try numbers(count, key) as [UInt64]).map { Double(bitPattern: $0) })
        case .bool:
            let raw: [UInt8] = try numbers(count, key)
            if let bad = raw.firstIndex(where: { $0 > 1 }) {
                throw .invalidValue(path: path, key: key, problem: "bool element \(bad) is \(raw[bad]), not 0 or 1")
            }
            return .bool(raw.map { $0 == 1 })
        case .string:
            var strings: [String] = []
            strings.reserveCapacity(count)
            for index in 0..<count {
                strings.append(try string("element \(index) of array '\(key)'", limit: GGUFLimits.maximumStringLength))
            }
            return .string(strings)
        case .array:
            var arrays: [GGUFArray] = []
            arrays.reserveCapacity(count)
            for _ in 0..<count { arrays.append(try array(key: key, depth: depth + 1)) }
            return .array(arrays)
        }
    }

    /// `count` little-endian fixed-width integers, copied in one go (`count` was checked to fit).
    private mutating func numbers<T: FixedWidthInteger>(_ count: Int, _ key: String) throws(GGUFError) -> [T] {
        let size = MemoryLayout<T>.size
        let slice = try take(UInt64(count * size), "\(count) elements of array '\(key)'")
        return [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0, let destination = buffer.baseAddress, let source = slice.baseAddress {
                UnsafeMutableRawPointer(destination).copyMemory(from: source, byteCount: count * size)
            }
            for i in 0..<count { buffer[i] = T(littleEndian: buffer[i]) }
            initialized = count
        }
    }

    /// Tensor info `index`: name, dimensions, type and offset, validated except for the data range.
    mutating func tensorInfo(index: Int, alignment: Int) throws(GGUFError) -> RawTensorInfo {
        let name = try string("the name of tensor info \(index)", limit: GGUFLimits.maximumTensorNameLength)
        let dimensionCount = try read(UInt32.self, "the dimension count of tensor '\(name)'")
        guard dimensionCount <= UInt32(GGUFLimits.maximumDimensions) else {
            throw .tooManyDimensions(path: path, tensor: name, count: dimensionCount, limit: GGUFLimits.maximumDimensions)
        }
        var raw: [UInt64] = []
        for d in 0..<Int(dimensionCount) { raw.append(try read(UInt64.self, "dimension \(d) of tensor '\(name)'")) }
        let rawType = try read(UInt32.self, "the type of tensor '\(name)'")
        let offset = try read(UInt64.self, "the data offset of tensor '\(name)'")

        var dimensions: [Int] = []
        var elementCount = 1
        for value in raw {
            guard let dim = Int(exactly: value) else { throw .shapeOverflow(path: path, tensor: name, dimensions: raw) }
            let (product, overflow) = elementCount.multipliedReportingOverflow(by: dim)
            guard !overflow else { throw .shapeOverflow(path: path, tensor: name, dimensions: raw) }
            elementCount = product
            dimensions.append(dim)
        }
        guard let type = GGMLType(rawValue: rawType) else {
            throw .unknownTensorType(path: path, tensor: name, type: rawType)
        }
        let innermost = dimensions.first ?? 1
        guard innermost % type.blockSize == 0 else {
            throw .blockSizeMismatch(path: path, tensor: name, type: type, innermost: innermost, blockSize: type.blockSize)
        }
        guard let byteCount = type.byteCount(elementCount: elementCount) else {
            throw .shapeOverflow(path: path, tensor: name, dimensions: raw)
        }
        guard offset % UInt64(alignment) == 0 else {
            throw .misalignedOffset(path: path, tensor: name, offset: offset, alignment: alignment)
        }
        return RawTensorInfo(name: name, dimensions: dimensions, type: type, offset: offset,
                             byteCount: byteCount, elementCount: elementCount)
    }
}
