/// A dense, row-major float32 matrix: `rows × cols`, element (i, j) at `storage[i * cols + j]`.
///
/// This is the one matrix type of the project. Value semantics come from `[Float]`'s
/// copy-on-write; kernels work through `withUnsafe…BufferPointer` so that no per-element
/// exclusivity checks happen in loops.
public struct Matrix: Sendable, Equatable {
    public let rows: Int
    public let cols: Int
    public var storage: [Float]

    public init(rows: Int, cols: Int, storage: [Float]) {
        precondition(rows >= 0 && cols >= 0 && storage.count == rows * cols,
                     "Matrix storage has \(storage.count) elements, expected \(rows)×\(cols)")
        self.rows = rows
        self.cols = cols
        self.storage = storage
    }

    /// A matrix filled with `value` (zeros by default).
    public init(rows: Int, cols: Int, repeating value: Float = 0) {
        self.init(rows: rows, cols: cols, storage: [Float](repeating: value, count: rows * cols))
    }

    public var count: Int { rows * cols }
    public var shape: [Int] { [rows, cols] }

    public subscript(i: Int, j: Int) -> Float {
        get { storage[i * cols + j] }
        set { storage[i * cols + j] = newValue }
    }

    /// The transpose, as a new matrix.
    public var transposed: Matrix {
        var out = Matrix(rows: cols, cols: rows)
        storage.withUnsafeBufferPointer { src in
            out.storage.withUnsafeMutableBufferPointer { dst in
                for i in 0..<rows {
                    for j in 0..<cols { dst[j * rows + i] = src[i * cols + j] }
                }
            }
        }
        return out
    }

    /// The first `count` rows.
    public func topRows(_ count: Int) -> Matrix {
        precondition(count <= rows)
        return Matrix(rows: count, cols: cols, storage: Array(storage[0..<(count * cols)]))
    }

    /// The first `count` columns.
    public func leftColumns(_ count: Int) -> Matrix {
        precondition(count <= cols)
        var out = Matrix(rows: rows, cols: count)
        for i in 0..<rows {
            for j in 0..<count { out.storage[i * count + j] = storage[i * cols + j] }
        }
        return out
    }

    /// Multiplies column j by `factors[j]` (i.e. `self · diag(factors)`).
    public mutating func scaleColumns(by factors: [Float]) {
        precondition(factors.count == cols)
        let cols = self.cols
        storage.withUnsafeMutableBufferPointer { m in
            for i in 0..<rows {
                for j in 0..<cols { m[i * cols + j] *= factors[j] }
            }
        }
    }

    /// Multiplies row i by `factors[i]` (i.e. `diag(factors) · self`).
    public mutating func scaleRows(by factors: [Float]) {
        precondition(factors.count == rows)
        let cols = self.cols
        storage.withUnsafeMutableBufferPointer { m in
            for i in 0..<rows {
                let f = factors[i]
                for j in 0..<cols { m[i * cols + j] *= f }
            }
        }
    }

    /// Frobenius norm, accumulated in Double.
    public var frobeniusNorm: Float {
        var sum = 0.0
        for x in storage { sum += Double(x) * Double(x) }
        return Float(sum.squareRoot())
    }

    /// `self − other`, elementwise.
    public static func - (lhs: Matrix, rhs: Matrix) -> Matrix {
        precondition(lhs.rows == rhs.rows && lhs.cols == rhs.cols)
        var out = lhs
        for i in 0..<out.storage.count { out.storage[i] -= rhs.storage[i] }
        return out
    }

    /// ‖self − other‖_F / ‖other‖_F (Double accumulation); 0 when both are zero.
    public func relativeDifference(to reference: Matrix) -> Double {
        precondition(rows == reference.rows && cols == reference.cols)
        var num = 0.0, den = 0.0
        for i in 0..<storage.count {
            let d = Double(storage[i]) - Double(reference.storage[i])
            num += d * d
            den += Double(reference.storage[i]) * Double(reference.storage[i])
        }
        if den == 0 { return num == 0 ? 0 : .infinity }
        return (num / den).squareRoot()
    }
}
