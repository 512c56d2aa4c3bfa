/// Typed reads of a GGUF file's metadata, with errors that name the file and key. Sizes are
/// capped at 2^30 so that products of two sizes (weight element counts) cannot overflow.
public struct GGUFMetadataReader: Sendable {
    public let file: GGUFFile
    public var path: String { file.url.path }

    public init(file: GGUFFile) { self.file = file }

    public func has(_ key: String) -> Bool { file.metadata[key] != nil }

    public func value(_ key: String) throws(GGUFError) -> GGUFValue {
        guard let value = file.metadata[key] else { throw .missingMetadata(path: path, key: key) }
        return value
    }

    public func string(_ key: String) throws(GGUFError) -> String {
        let value = try value(key)
        guard let text = value.string else { throw .wrongMetadataType(path: path, key: key, expected: "a string", found: value.type) }
        return text
    }

    public func optionalInt(_ key: String) throws(GGUFError) -> Int? {
        guard let value = file.metadata[key] else { return nil }
        guard let int = value.int else { throw .wrongMetadataType(path: path, key: key, expected: "an integer", found: value.type) }
        return int
    }

    /// A positive integer ≤ 2^30; `default` when the key is absent (required when nil).
    public func positive(_ key: String, default fallback: Int? = nil) throws(GGUFError) -> Int {
        if file.metadata[key] == nil, let fallback { return fallback }
        let value = try value(key)
        guard let int = value.int else { throw .wrongMetadataType(path: path, key: key, expected: "an integer", found: value.type) }
        guard int > 0 else { throw .invalidHyperparameter(path: path, key: key, problem: "is \(int), must be positive") }
        guard int <= 1 << 30 else { throw .invalidHyperparameter(path: path, key: key, problem: "is \(int), larger than 2^30") }
        return int
    }

    /// A finite, positive number (any numeric type); `default` when the key is absent (required when nil).
    public func double(_ key: String, default fallback: Double? = nil) throws(GGUFError) -> Double {
        if file.metadata[key] == nil, let fallback { return fallback }
        let value = try value(key)
        guard let double = value.double else { throw .wrongMetadataType(path: path, key: key, expected: "a number", found: value.type) }
        guard double.isFinite, double > 0 else {
            throw .invalidHyperparameter(path: path, key: key, problem: "is \(double), must be finite and positive")
        }
        return double
    }

    /// A finite, positive number, or nil when the key is absent.
    public func optionalDouble(_ key: String) throws(GGUFError) -> Double? {
        has(key) ? try double(key) : nil
    }
}
