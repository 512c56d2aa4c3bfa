import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The safetensors files of one checkpoint directory, as one namespace of tensors.
///
/// `init(directory:)` picks the files the way Hugging Face loaders do:
/// 1. `model.safetensors.index.json`, if present: its `weight_map` (tensor name → shard file
///    name) names the shards. Every tensor in the map must exist in the shard it names, and every
///    tensor of every shard must be in the map under that shard; a shard named in the map must
///    exist. Shard names must be plain file names in the same directory.
/// 2. otherwise `model.safetensors`, alone;
/// 3. otherwise every `*.safetensors` file of the directory (hidden files skipped), sorted by name.
/// Each file is opened and validated (`SafeTensorsFile`), and a tensor name found in two files
/// is an error.
public struct ShardedSafeTensors: Sendable {
    /// The index file name Hugging Face uses for sharded checkpoints.
    public static let standardIndexFileName = "model.safetensors.index.json"
    /// The single-file checkpoint name.
    public static let standardFileName = "model.safetensors"
    /// Largest index file accepted (a real one is a few hundred kB).
    static let maximumIndexSize = 100_000_000

    public let directory: URL
    /// In shard-name order (index) or file-name order.
    public let files: [SafeTensorsFile]
    /// `"model.safetensors.index.json"` when the shards came from the index, else nil.
    public let indexFileName: String?
    /// Every tensor name, file by file in `files` order and by data offset within a file.
    public let tensorNames: [String]
    private let fileIndexByName: [String: Int]

    public init(directory: URL) throws(SafeTensorsError) {
        let names = try Self.listDirectory(directory.path)
        let indexURL = directory.appendingPathComponent(Self.standardIndexFileName)
        var files: [SafeTensorsFile] = []
        var weightMap: [String: String]?
        if names.contains(Self.standardIndexFileName) {
            let map = try Self.readWeightMap(indexURL)
            for shard in Set(map.values).sorted() {
                guard names.contains(shard) else { throw .missingShard(index: indexURL.path, shard: shard) }
                files.append(try SafeTensorsFile(url: directory.appendingPathComponent(shard)))
            }
            weightMap = map
        } else if names.contains(Self.standardFileName) {
            files = [try SafeTensorsFile(url: directory.appendingPathComponent(Self.standardFileName))]
        } else {
            let shards = names.filter { $0.hasSuffix(".safetensors") && !$0.hasPrefix(".") }.sorted()
            guard !shards.isEmpty else { throw .noSafeTensorsFiles(directory: directory.path) }
            for shard in shards {
                files.append(try SafeTensorsFile(url: directory.appendingPathComponent(shard)))
            }
        }

        var fileIndexByName: [String: Int] = [:]
        var tensorNames: [String] = []
        for (fileIndex, file) in files.enumerated() {
            for tensor in file.tensors {
                if let first = fileIndexByName[tensor.name] {
                    throw .duplicateTensor(tensor: tensor.name, firstFile: files[first].url.path, secondFile: file.url.path)
                }
                fileIndexByName[tensor.name] = fileIndex
                tensorNames.append(tensor.name)
            }
        }
        if let weightMap {
            for (tensor, shard) in weightMap.sorted(by: { $0.key < $1.key }) {
                let file = files.first { $0.url.lastPathComponent == shard }
                guard let file, file.info(tensor) != nil else {
                    throw .tensorMissingFromShard(index: indexURL.path, tensor: tensor, shard: shard)
                }
            }
            for file in files {
                for tensor in file.tensors where weightMap[tensor.name] != file.url.lastPathComponent {
                    throw .tensorNotInIndex(index: indexURL.path, tensor: tensor.name, shard: file.url.lastPathComponent)
                }
            }
        }

        self.directory = directory
        self.files = files
        self.indexFileName = weightMap == nil ? nil : Self.standardIndexFileName
        self.tensorNames = tensorNames
        self.fileIndexByName = fileIndexByName
    }

    /// The file holding `name` and the tensor's entry there.
    public func locate(_ name: String) -> (file: SafeTensorsFile, info: TensorInfo)? {
        guard let index = fileIndexByName[name], let info = files[index].info(name) else { return nil }
        return (files[index], info)
    }

    // MARK: Reading the directory and the index

    /// Entry names of a directory (without `.` and `..`).
    private static func listDirectory(_ path: String) throws(SafeTensorsError) -> Set<String> {
        guard let handle = opendir(path) else { throw .io(path: path, operation: "list directory", errno: errno) }
        defer { closedir(handle) }
        var names: Set<String> = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.insert(name) }
        }
        return names
    }

    /// The `weight_map` of an index file, checked to map strings to plain file names.
    private static func readWeightMap(_ url: URL) throws(SafeTensorsError) -> [String: String] {
        let data = try readFile(url.path, limit: maximumIndexSize)
        let root: JSONValue
        do {
            root = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw .invalidIndex(path: url.path, problem: "not valid JSON (\(ErrorText.plain(error)))")
        }
        guard case let .object(top) = root, case let .object(entries)? = top["weight_map"] else {
            throw .invalidIndex(path: url.path, problem: "expected a JSON object with a \"weight_map\" object")
        }
        var map: [String: String] = [:]
        for (tensor, value) in entries {
            guard case let .string(shard) = value else {
                throw .invalidIndex(path: url.path, problem: "weight_map value of '\(tensor)' is \(value.rendered), not a file name")
            }
            guard !shard.isEmpty, !shard.contains("/"), shard != ".", shard != ".." else {
                throw .invalidIndex(path: url.path, problem: "shard '\(shard)' of tensor '\(tensor)' is not a plain file name")
            }
            map[tensor] = shard
        }
        guard !map.isEmpty else { throw .invalidIndex(path: url.path, problem: "weight_map is empty") }
        return map
    }

    /// The whole file, refusing files larger than `limit` bytes.
    private static func readFile(_ path: String, limit: Int) throws(SafeTensorsError) -> Data {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io(path: path, operation: "open for reading", errno: errno) }
        defer { _ = close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw .io(path: path, operation: "stat", errno: errno) }
        guard Int(status.st_size) <= limit else {
            throw .io(path: path, operation: "read a file of \(status.st_size) bytes (limit \(limit))", errno: EFBIG)
        }
        var data = Data(count: Int(status.st_size))
        var filled = 0
        var failure: Int32 = 0
        data.withUnsafeMutableBytes { buffer in
            while filled < buffer.count, let base = buffer.baseAddress {
                let got = read(fd, base + filled, buffer.count - filled)
                if got < 0 && errno == EINTR { continue }
                if got < 0 { failure = errno }
                if got <= 0 { break }
                filled += got
            }
        }
        guard failure == 0 else { throw .io(path: path, operation: "read", errno: failure) }
        return data.prefix(filled)
    }
}
