import Formats
import LinearAlgebra
import XCTest

extension SafeTensorsFile {
    /// A 2-D float tensor as a matrix (1-D tensors become one row).
    public func matrix(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> Matrix {
        let info = try XCTUnwrap(self.info(name), "\(name) missing from \(url.lastPathComponent)", file: file, line: line)
        let rows = info.shape.count >= 2 ? info.shape.dropLast().reduce(1, *) : 1
        return Matrix(rows: rows, cols: info.shape.last ?? 1, storage: try floats(info))
    }

    /// An I64 tensor as Ints.
    public func integers(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> [Int] {
        let info = try XCTUnwrap(self.info(name), "\(name) missing", file: file, line: line)
        XCTAssertEqual(info.dtype, .i64, file: file, line: line)
        let raw = rawBytes(info)
        return (0..<info.elementCount).map { Int(raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }
    }
}

extension SafeTensorsFile {
    /// An F64 tensor as Doubles.
    public func doubles(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> [Double] {
        let info = try XCTUnwrap(self.info(name), "\(name) missing", file: file, line: line)
        XCTAssertEqual(info.dtype, .f64, file: file, line: line)
        let raw = rawBytes(info)
        return (0..<info.elementCount).map { raw.loadUnaligned(fromByteOffset: 8 * $0, as: Double.self) }
    }
}
