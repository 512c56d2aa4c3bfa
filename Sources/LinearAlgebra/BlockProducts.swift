import CKernels

/// ggml block formats whose blocks `BlockProducts` multiplies directly. Block layouts are
/// ggml-common.h's; the decoded values are those of the GGUF dequantiser.
public enum BlockFormat: Int32, CaseIterable, Sendable {
    case q4_0, q4_1, q5_0, q8_0, q4_K, q6_K

    /// Values per block.
    public var blockValues: Int { self == .q4_K || self == .q6_K ? 256 : 32 }

    /// Bytes per block.
    public var blockBytes: Int {
        switch self {
        case .q4_0: 18
        case .q4_1: 20
        case .q5_0: 22
        case .q8_0: 34
        case .q4_K: 144
        case .q6_K: 210
        }
    }
}

/// Products of float32 rows with a weight held as ggml blocks, read in place (no float32 copy of
/// the weight): each block is decoded into registers and multiplied into up to four rows of x at
/// once, by the CPU's kernel level (`CPUKernels`). For decoding, where x has a few rows.
public enum BlockProducts {
    /// y (n, ldy) ← β·y + x (n, ldx) · Wᵀ over weight rows `rows` (W: `rowBytes` bytes a row of
    /// `format` blocks, `cols` values, a multiple of the block size). Output column o of y is
    /// weight row o counted from `w`.
    public static func forward(format: BlockFormat, w: UnsafeRawPointer, rowBytes: Int, rows: Int, cols: Int,
                               x: UnsafePointer<Float>, n: Int, ldx: Int,
                               y: UnsafeMutablePointer<Float>, ldy: Int, beta: Float) {
        precondition(cols % format.blockValues == 0 && rowBytes == cols / format.blockValues * format.blockBytes,
                     "block product: \(cols) values in \(rowBytes) bytes of \(format)")
        guard rows > 0, n > 0 else { return }
        CPUKernels.table.block_dot(format.rawValue, w.assumingMemoryBound(to: UInt8.self), rowBytes, Int32(rows), Int32(cols),
                                   x, Int32(n), ldx, y, ldy, beta)
    }
}
