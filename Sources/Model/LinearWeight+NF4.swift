import LinearAlgebra

/// The NF4 base: the products dequantise W a tile of rows at a time (`DequantizedTiles`), so
/// that W is never whole in float32. Results equal the dense products on `dequantized()` up to
/// the gemm's summation order.
extension NF4Matrix: LinearWeight {
    /// An NF4 weight is frozen.
    public var gradient: UnsafeMutablePointer<Float>? { nil }

    public func forward(_ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>, beta: Float, lanes: Int) {
        DequantizedTiles.forward(outF: rows, inF: cols, x: x, rows: n, into: y, beta: beta, lanes: lanes,
                                 dequantize: { self.dequantizeRows($0, into: $1) })
    }

    public func forward(_ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>, beta: Float, outputs: Range<Int>) {
        DequantizedTiles.forward(outF: rows, inF: cols, x: x, rows: n, into: y, beta: beta, outputs: outputs,
                                 dequantize: { self.dequantizeRows($0, into: $1) })
    }

    public func backward(_ dy: UnsafePointer<Float>, rows n: Int, into dx: UnsafeMutablePointer<Float>, beta: Float, lanes: Int) {
        DequantizedTiles.backward(outF: rows, inF: cols, dy: dy, rows: n, into: dx, beta: beta, lanes: lanes,
                                  dequantize: { self.dequantizeRows($0, into: $1) })
    }
}
