import Foundation

/// Writes a GGUF file (version 3, little-endian): the layout `GGUFFile` reads and llama.cpp's
/// `gguf_init_from_file` expects.
///
///     "GGUF" · u32 version 3 · u64 tensor count · u64 metadata count
///     metadata: string key (u64 length + UTF-8) · u32 value type · value
///               (arrays: u32 element type · u64 count · elements)
///     tensor infos: string name · u32 n_dims · u64 ne0, ne1, … · u32 ggml type · u64 offset
///     padding to `alignment` · tensor data, each tensor starting at a multiple of `alignment`
///
/// Tensors are float32 (`GGMLType.f32`); `dimensions` are innermost first (ne0 = the
/// contiguous one, a weight's input features). The whole file is assembled in memory and written
/// atomically (temporary file, fsync, rename): it is meant for adapters, not for whole models.
public enum GGUFWriter {
    /// A float32 tensor: `values.count` must equal the product of `dimensions`.
    public struct Tensor: Sendable {
        public var name: String
        /// ne0, ne1, …: innermost first.
        public var dimensions: [Int]
        public var values: [Float]

        public init(name: String, dimensions: [Int], values: [Float]) {
            self.name = name
            self.dimensions = dimensions
            self.values = values
        }
    }

    /// The default alignment of the data section and of every tensor (`general.alignment`).
    public static let defaultAlignment = 32

    /// The bytes of a GGUF file with `metadata` (in the given order) and `tensors`. Throws
    /// `GGUFError.invalidValue` / `.duplicateKey` / `.duplicateTensor` / `.shapeOverflow` for
    /// input a reader would refuse; `path` only names the file in those errors.
    public static func encode(metadata: [(key: String, value: GGUFValue)], tensors: [Tensor], path: String = "<memory>") throws(GGUFError) -> Data {
        var keys = Set<String>()
        for (key, _) in metadata where !keys.insert(key).inserted { throw .duplicateKey(path: path, key: key) }
        var names = Set<String>()
        for t in tensors {
            guard names.insert(t.name).inserted else { throw .duplicateTensor(path: path, tensor: t.name) }
            guard !t.dimensions.isEmpty, t.dimensions.allSatisfy({ $0 > 0 }),
                  t.dimensions.reduce(1, *) == t.values.count else {
                throw .shapeOverflow(path: path, tensor: t.name, dimensions: t.dimensions.map { UInt64(max(0, $0)) })
            }
        }
        var alignment = defaultAlignment
        if let a = metadata.first(where: { $0.key == "general.alignment" })?.value.int {
            guard a > 0, a % 8 == 0 else { throw .invalidAlignment(path: path, problem: "general.alignment \(a) is not a positive multiple of 8") }
            alignment = a
        }

        var out = Data()
        out.append(contentsOf: Array("GGUF".utf8))
        append(&out, UInt32(3))
        append(&out, UInt64(tensors.count))
        append(&out, UInt64(metadata.count))
        for (key, value) in metadata {
            appendString(&out, key)
            append(&out, value.type.rawValue)
            appendValue(&out, value)
        }
        var offset = 0
        var offsets: [Int] = []
        for t in tensors {
            offsets.append(offset)
            appendString(&out, t.name)
            append(&out, UInt32(t.dimensions.count))
            for d in t.dimensions { append(&out, UInt64(d)) }
            append(&out, GGMLType.f32.rawValue)
            append(&out, UInt64(offset))
            offset += padded(t.values.count * 4, to: alignment)
        }
        out.append(Data(count: padded(out.count, to: alignment) - out.count))
        let dataStart = out.count
        for (t, o) in zip(tensors, offsets) {
            precondition(out.count == dataStart + o)
            t.values.withUnsafeBytes { out.append(contentsOf: $0) }   // little-endian on every supported platform
            out.append(Data(count: padded(t.values.count * 4, to: alignment) - t.values.count * 4))
        }
        return out
    }

    /// `encode`s and writes the file atomically.
    public static func write(to url: URL, metadata: [(key: String, value: GGUFValue)], tensors: [Tensor]) throws {
        try AtomicFile.write(try encode(metadata: metadata, tensors: tensors, path: url.path), to: url)
    }

    // MARK: Encoding

    private static func padded(_ n: Int, to alignment: Int) -> Int { (n + alignment - 1) / alignment * alignment }

    private static func append<T: FixedWidthInteger>(_ out: inout Data, _ v: T) {
        withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
    }

    private static func appendString(_ out: inout Data, _ s: String) {
        let bytes = Array(s.utf8)
        append(&out, UInt64(bytes.count))
        out.append(contentsOf: bytes)
    }

    private static func appendValue(_ out: inout Data, _ value: GGUFValue) {
        switch value {
        case let .uint8(v): append(&out, v)
        case let .int8(v): append(&out, v)
        case let .uint16(v): append(&out, v)
        case let .int16(v): append(&out, v)
        case let .uint32(v): append(&out, v)
        case let .int32(v): append(&out, v)
        case let .uint64(v): append(&out, v)
        case let .int64(v): append(&out, v)
        case let .float32(v): append(&out, v.bitPattern)
        case let .float64(v): append(&out, v.bitPattern)
        case let .bool(v): append(&out, UInt8(v ? 1 : 0))
        case let .string(s): appendString(&out, s)
        case let .array(a):
            append(&out, a.elementType.rawValue)
            append(&out, UInt64(a.count))
            for i in 0..<a.count { appendValue(&out, a[i]) }   // inner arrays carry their own header
        }
    }
}
