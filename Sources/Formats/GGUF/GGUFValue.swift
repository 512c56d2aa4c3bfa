/// The value types of GGUF metadata, numbered as in the file (`enum gguf_type`).
public enum GGUFValueType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, bool = 7
    case string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

    /// Bytes of one value of a fixed-size type; nil for `string` and `array`.
    var fixedSize: Int? {
        switch self {
        case .uint8, .int8, .bool: 1
        case .uint16, .int16: 2
        case .uint32, .int32, .float32: 4
        case .uint64, .int64, .float64: 8
        case .string, .array: nil
        }
    }

    /// The fewest bytes one value of this type takes in a file: an empty string is its 8-byte
    /// length, an empty array its 4-byte type and 8-byte count. Bounds array counts by file size.
    var minimumEncodedSize: Int {
        fixedSize ?? (self == .string ? 8 : 12)
    }

    public var description: String {
        switch self {
        case .uint8: "uint8"
        case .int8: "int8"
        case .uint16: "uint16"
        case .int16: "int16"
        case .uint32: "uint32"
        case .int32: "int32"
        case .float32: "float32"
        case .bool: "bool"
        case .string: "string"
        case .array: "array"
        case .uint64: "uint64"
        case .int64: "int64"
        case .float64: "float64"
        }
    }
}

/// One metadata value of a GGUF file, with its type as stored.
///
/// The accessors convert where nothing is lost: `.int` reads any integer type that fits in `Int`,
/// `.double` any float or integer, `.float` a `float32` (or a `float64` / integer, rounded).
public enum GGUFValue: Sendable, Equatable, CustomStringConvertible {
    case uint8(UInt8)
    case int8(Int8)
    case uint16(UInt16)
    case int16(Int16)
    case uint32(UInt32)
    case int32(Int32)
    case uint64(UInt64)
    case int64(Int64)
    case float32(Float)
    case float64(Double)
    case bool(Bool)
    case string(String)
    case array(GGUFArray)

    public var type: GGUFValueType {
        switch self {
        case .uint8: .uint8
        case .int8: .int8
        case .uint16: .uint16
        case .int16: .int16
        case .uint32: .uint32
        case .int32: .int32
        case .uint64: .uint64
        case .int64: .int64
        case .float32: .float32
        case .float64: .float64
        case .bool: .bool
        case .string: .string
        case .array: .array
        }
    }

    /// Any integer type whose value fits in `Int`; nil for other types (including `bool`).
    public var int: Int? {
        switch self {
        case let .uint8(v): Int(v)
        case let .int8(v): Int(v)
        case let .uint16(v): Int(v)
        case let .int16(v): Int(v)
        case let .uint32(v): Int(v)
        case let .int32(v): Int(v)
        case let .uint64(v): Int(exactly: v)
        case let .int64(v): Int(v)
        default: nil
        }
    }

    /// `float64` as is, `float32` widened exactly, integers converted; nil otherwise.
    public var double: Double? {
        switch self {
        case let .float32(v): Double(v)
        case let .float64(v): v
        default: int.map(Double.init)
        }
    }

    /// `float32` as is; `float64` and integers rounded to the nearest `Float`; nil otherwise.
    public var float: Float? {
        if case let .float32(v) = self { return v }
        return double.map(Float.init)
    }

    public var bool: Bool? {
        if case let .bool(v) = self { return v }
        return nil
    }

    public var string: String? {
        if case let .string(v) = self { return v }
        return nil
    }

    public var array: GGUFArray? {
        if case let .array(v) = self { return v }
        return nil
    }

    /// An array of strings.
    public var stringArray: [String]? {
        if case let .array(.string(v)) = self { return v }
        return nil
    }

    /// An array of any integer type whose elements all fit in `Int`.
    public var intArray: [Int]? { array?.ints }

    /// An array of `float32` (as is) or `float64` (rounded).
    public var floatArray: [Float]? {
        switch self {
        case let .array(.float32(v)): v
        case let .array(.float64(v)): v.map(Float.init)
        default: nil
        }
    }

    /// An array of `float64` (as is) or `float32` (widened exactly).
    public var doubleArray: [Double]? {
        switch self {
        case let .array(.float64(v)): v
        case let .array(.float32(v)): v.map(Double.init)
        default: nil
        }
    }

    /// Short, for messages: the value for scalars and strings up to 60 characters, else a summary.
    public var description: String {
        switch self {
        case let .string(s): s.count <= 60 ? "\"\(s)\"" : "\"\(s.prefix(57))…\" (\(s.utf8.count) bytes)"
        case let .array(a): "[\(a.count) × \(a.elementType)]"
        case let .bool(b): "\(b)"
        case let .float32(v): "\(v)"
        case let .float64(v): "\(v)"
        default: int.map { "\($0)" } ?? "\(self.type)"
        }
    }
}

/// A GGUF metadata array: every element has the same type, stored compactly (a `[UInt8]` holds one
/// byte per element), so that the memory an array takes is bounded by the bytes it takes in the
/// file. Arrays of arrays hold each inner array with its own element type.
public enum GGUFArray: Sendable, Equatable {
    case uint8([UInt8])
    case int8([Int8])
    case uint16([UInt16])
    case int16([Int16])
    case uint32([UInt32])
    case int32([Int32])
    case uint64([UInt64])
    case int64([Int64])
    case float32([Float])
    case float64([Double])
    case bool([Bool])
    case string([String])
    case array([GGUFArray])

    public var elementType: GGUFValueType {
        switch self {
        case .uint8: .uint8
        case .int8: .int8
        case .uint16: .uint16
        case .int16: .int16
        case .uint32: .uint32
        case .int32: .int32
        case .uint64: .uint64
        case .int64: .int64
        case .float32: .float32
        case .float64: .float64
        case .bool: .bool
        case .string: .string
        case .array: .array
        }
    }

    public var count: Int {
        switch self {
        case let .uint8(a): a.count
        case let .int8(a): a.count
        case let .uint16(a): a.count
        case let .int16(a): a.count
        case let .uint32(a): a.count
        case let .int32(a): a.count
        case let .uint64(a): a.count
        case let .int64(a): a.count
        case let .float32(a): a.count
        case let .float64(a): a.count
        case let .bool(a): a.count
        case let .string(a): a.count
        case let .array(a): a.count
        }
    }

    /// Element `index` as a `GGUFValue` (`index` must be in `0..<count`).
    public subscript(index: Int) -> GGUFValue {
        switch self {
        case let .uint8(a): .uint8(a[index])
        case let .int8(a): .int8(a[index])
        case let .uint16(a): .uint16(a[index])
        case let .int16(a): .int16(a[index])
        case let .uint32(a): .uint32(a[index])
        case let .int32(a): .int32(a[index])
        case let .uint64(a): .uint64(a[index])
        case let .int64(a): .int64(a[index])
        case let .float32(a): .float32(a[index])
        case let .float64(a): .float64(a[index])
        case let .bool(a): .bool(a[index])
        case let .string(a): .string(a[index])
        case let .array(a): .array(a[index])
        }
    }

    /// All elements as `GGUFValue`s (convenient, not compact).
    public var values: [GGUFValue] { (0..<count).map { self[$0] } }

    /// The elements as `Int` when the element type is an integer type and every element fits.
    public var ints: [Int]? {
        func convert<T: BinaryInteger>(_ a: [T]) -> [Int]? {
            var out: [Int] = []
            out.reserveCapacity(a.count)
            for v in a {
                guard let i = Int(exactly: v) else { return nil }
                out.append(i)
            }
            return out
        }
        switch self {
        case let .uint8(a): return convert(a)
        case let .int8(a): return convert(a)
        case let .uint16(a): return convert(a)
        case let .int16(a): return convert(a)
        case let .uint32(a): return convert(a)
        case let .int32(a): return convert(a)
        case let .uint64(a): return convert(a)
        case let .int64(a): return convert(a)
        default: return nil
        }
    }
}
