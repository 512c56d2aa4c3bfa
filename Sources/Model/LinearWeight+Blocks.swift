import Formats
import LinearAlgebra

/// A frozen weight kept as a GGUF file's quantised blocks (Q4_0, Q4_1, Q5_0, Q8_0, Q4_K, Q6_K),
/// held at the file's size instead of four bytes a value.
///
/// - A few rows of x (decoding, up to `directRows`): each lane takes a range of weight rows and
///   multiplies their blocks into x in place (`BlockProducts`: decoded into registers, never
///   written out as float32), the kernel level chosen by cpuid (`CPUKernels`).
/// - More rows (prefill, evaluation): tiles of rows are dequantised and multiplied by BLAS
///   (`DequantizedTiles`), as for NF4.
///
/// Both equal the products on `dequantized()` (the GGUF dequantiser's values) up to the
/// summation order. Rows are in Hugging Face order (q and k un-permuted when loaded).
public struct GGMLBlockMatrix: LinearWeight, DenseWeight, @unchecked Sendable {
    public let type: GGMLType
    let format: BlockFormat
    public let rows: Int
    public let cols: Int
    /// Bytes of one row's blocks.
    let rowBytes: Int
    private let storage: Storage

    /// Rows of x up to which the forward product reads the blocks directly.
    public static let directRows = 8
    /// Weight rows per lane below which a direct product stays on one lane.
    static let rowsPerLane = 64

    /// The ggml types whose blocks the products read.
    public static func supports(_ type: GGMLType) -> Bool { BlockFormat(type) != nil }

    /// Copies a (rows, cols) tensor of `type` blocks from `bytes`, Hugging Face row `i` taken from
    /// stored row `rowOrder[i]` (nil: the same row). Nil when the type is not supported or
    /// `cols` is not a whole number of blocks.
    public init?(type: GGMLType, rows: Int, cols: Int, bytes: UnsafeRawBufferPointer, rowOrder: [Int]? = nil) {
        guard let format = BlockFormat(type), cols > 0, cols % format.blockValues == 0 else { return nil }
        let rowBytes = cols / format.blockValues * format.blockBytes
        guard bytes.count == rows * rowBytes, rowOrder.map({ $0.count == rows }) ?? true else { return nil }
        self.type = type
        self.format = format
        self.rows = rows
        self.cols = cols
        self.rowBytes = rowBytes
        storage = Storage(byteCount: rows * rowBytes)
        for r in 0..<rows {
            let from = rowOrder?[r] ?? r
            (storage.bytes + r * rowBytes).copyMemory(from: bytes.baseAddress! + from * rowBytes, byteCount: rowBytes)
        }
    }

    /// An NF4 weight is frozen; so is this one.
    public var gradient: UnsafeMutablePointer<Float>? { nil }

    public var byteCount: Int { rows * rowBytes }

    public var shape: [Int] { [rows, cols] }

    public func forward(_ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>, beta: Float, lanes: Int) {
        guard n > Self.directRows else {
            let p = Pointers(x: x, y: y, xa: nil)
            Parallel.chunks(rows, lanes: lanes, minimumChunk: Self.rowsPerLane) { r in
                forward(p.x, rows: n, into: p.y, beta: beta, outputs: r)
            }
            return
        }
        DequantizedTiles.forward(outF: rows, inF: cols, x: x, rows: n, into: y, beta: beta, lanes: lanes,
                                 dequantize: { self.dequantizeRows($0, into: $1) })
    }

    public func forward(_ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>, beta: Float, outputs: Range<Int>) {
        guard n > Self.directRows else {
            BlockProducts.forward(format: format, w: storage.bytes + outputs.lowerBound * rowBytes, rowBytes: rowBytes,
                                  rows: outputs.count, cols: cols, x: x, n: n, ldx: cols, y: y + outputs.lowerBound, ldy: rows, beta: beta)
            return
        }
        DequantizedTiles.forward(outF: rows, inF: cols, x: x, rows: n, into: y, beta: beta, outputs: outputs,
                                 dequantize: { self.dequantizeRows($0, into: $1) })
    }

    public func backward(_ dy: UnsafePointer<Float>, rows n: Int, into dx: UnsafeMutablePointer<Float>, beta: Float, lanes: Int) {
        DequantizedTiles.backward(outF: rows, inF: cols, dy: dy, rows: n, into: dx, beta: beta, lanes: lanes,
                                  dequantize: { self.dequantizeRows($0, into: $1) })
    }

    /// Weight rows `range`, dequantised ((range.count, cols) floats).
    public func dequantizeRows(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= rows, "rows \(range) of \(rows)")
        type.dequantize(storage.bytes + range.lowerBound * rowBytes, into: out, count: range.count * cols)
    }

    public func dequantized() -> Matrix {
        var m = Matrix(rows: rows, cols: cols)
        m.storage.withUnsafeMutableBufferPointer { dequantizeRows(0..<rows, into: $0.baseAddress!) }
        return m
    }

    /// The whole weight in float32 for a dense caller (a loss head, which multiplies many rows):
    /// a temporary copy per call. Decoding reads the blocks instead (`forward`, `copyRow`).
    func withValues<R>(_ body: (UnsafePointer<Float>) throws -> R) rethrows -> R {
        let m = dequantized()
        return try m.storage.withUnsafeBufferPointer { try body($0.baseAddress!) }
    }

    /// One row dequantised (an embedding lookup).
    func copyRow(_ row: Int, into out: UnsafeMutablePointer<Float>) { dequantizeRows(row..<(row + 1), into: out) }

    /// The allocation, 64-byte aligned, freed with the last copy of the matrix.
    private final class Storage: @unchecked Sendable {
        let bytes: UnsafeMutableRawPointer
        init(byteCount: Int) { bytes = .allocate(byteCount: max(1, byteCount), alignment: 64) }
        deinit { bytes.deallocate() }
    }
}

extension BlockFormat {
    /// The format of a ggml type, nil when `BlockProducts` cannot read it.
    init?(_ type: GGMLType) {
        switch type {
        case .q4_0: self = .q4_0
        case .q4_1: self = .q4_1
        case .q5_0: self = .q5_0
        case .q8_0: self = .q8_0
        case .q4_K: self = .q4_K
        case .q6_K: self = .q6_K
        default: return nil
        }
    }
}
