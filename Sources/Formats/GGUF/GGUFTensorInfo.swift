/// One tensor of a GGUF file, as described by its tensor info (validated when the file was opened).
///
/// GGUF lists dimensions innermost first: `dimensions[0]` (ne0) is the contiguous one, the
/// number of input features of a weight. `shape` gives the same dimensions in row-major (PyTorch)
/// order: a weight with `dimensions == [576, 1536]` is a 1536×576 row-major matrix, out × in.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// ne0, ne1, …: innermost first, as in the file.
    public let dimensions: [Int]
    public let type: GGMLType
    /// Byte offset of the data relative to the start of the data section (a multiple of the
    /// file's alignment).
    public let offset: Int
    /// Bytes of data: (elementCount / type.blockSize) × type.typeSize.
    public let byteCount: Int
    /// Product of `dimensions` (1 for a tensor without dimensions).
    public let elementCount: Int

    public init(name: String, dimensions: [Int], type: GGMLType, offset: Int, byteCount: Int, elementCount: Int) {
        self.name = name
        self.dimensions = dimensions
        self.type = type
        self.offset = offset
        self.byteCount = byteCount
        self.elementCount = elementCount
    }

    /// Row-major (PyTorch) order: `dimensions.reversed()`.
    public var shape: [Int] { dimensions.reversed() }

    /// Byte range relative to the data section.
    public var dataRange: Range<Int> { offset..<(offset + byteCount) }
}
