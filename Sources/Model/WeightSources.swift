import Foundation
import Formats
import LinearAlgebra

/// Tensors of a GGUF file, by Hugging Face name, dequantised to float32 in Hugging Face layout
/// and values (`GGUFModel`).
public struct GGUFWeightSource: WeightSource {
    public let model: GGUFModel
    public var config: ModelConfig { model.config }

    public init(url: URL) throws {
        model = try GGUFModel(url: url)
    }

    /// Whether the file holds the tensor itself (a tied model has no `lm_head.weight`).
    public func has(_ name: String) -> Bool {
        model.location(forHuggingFace: name).map { model.file.info($0.gguf) != nil } ?? false
    }

    /// Dequantises the tensor, then releases its pages of the memory map so that the quantised
    /// file does not stay resident beside the float32 weights.
    public func tensor(_ name: String) throws -> (shape: [Int], floats: [Float]) {
        let t = try model.huggingFaceTensor(named: name)
        release(name)
        return t
    }

    /// The quantised blocks copied out of the file (rows in Hugging Face order), its pages
    /// released; nil for tensors that must be dequantised (other types, value offsets).
    public func blockTensor(_ name: String) throws -> GGMLBlockMatrix? {
        guard let t = try model.huggingFaceTensorBytes(named: name), t.shape.count == 2, GGMLBlockMatrix.supports(t.type) else { return nil }
        defer { release(name) }
        return GGMLBlockMatrix(type: t.type, rows: t.shape[0], cols: t.shape[1], bytes: t.bytes, rowOrder: t.rowOrder)
    }

    private func release(_ name: String) {
        if let gguf = model.ggufName(forHuggingFace: name), let info = model.file.info(gguf) { model.file.release(info) }
    }
}

/// Tensors of a Hugging Face model directory (config.json + safetensors, sharded or not).
public struct SafeTensorsWeightSource: WeightSource {
    public let files: ShardedSafeTensors
    public let config: ModelConfig

    public init(directory: URL) throws {
        config = try Self.readConfig(directory: directory)
        files = try ShardedSafeTensors(directory: directory)
    }

    /// The directory's `config.json`, decoded by its family (`ArchitectureRegistry`).
    public static func readConfig(directory: URL) throws -> ModelConfig {
        try ArchitectureRegistry.config(huggingFace: try configData(directory: directory),
                                        path: directory.appendingPathComponent("config.json").path)
    }

    /// The bytes of the directory's `config.json`.
    public static func configData(directory: URL) throws -> Data {
        let configURL = directory.appendingPathComponent("config.json")
        do { return try Data(contentsOf: configURL) } catch {
            let missing = !FileManager.default.fileExists(atPath: configURL.path)
            throw ModelError.invalidConfig(path: configURL.path, problem: missing ? "does not exist" : "cannot be read (\(ErrorText.reason(error)))")
        }
    }

    public func has(_ name: String) -> Bool { files.locate(name) != nil }

    public func nf4Tensor(_ name: String) throws -> NF4Matrix? {
        try NF4Tensors.read(name, from: files)
    }

    public func tensor(_ name: String) throws -> (shape: [Int], floats: [Float]) {
        guard let (file, info) = files.locate(name) else {
            throw ModelError.missingTensor(source: files.directory.path, name: name)
        }
        let floats = try file.floats(info)
        file.release(info)
        return (info.shape, floats)
    }
}

/// Opens `path` as a GGUF file or a Hugging Face directory, whichever it is.
public func openWeightSource(_ path: String) throws -> (source: WeightSource, name: String) {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw ModelError.unsupportedModel(source: path, problem: "no such file or directory")
    }
    let url = URL(fileURLWithPath: path)
    if isDirectory.boolValue { return (try SafeTensorsWeightSource(directory: url), path) }
    return (try GGUFWeightSource(url: url), path)
}
