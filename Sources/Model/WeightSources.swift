import Foundation
import Formats
import LinearAlgebra

/// Tensors of a GGUF file (dequantised, q/k un-permuted to Hugging Face layout).
public struct GGUFWeightSource: WeightSource {
    public let model: LlamaGGUFModel
    public let config: HFLlamaConfig

    public init(url: URL) throws {
        model = try LlamaGGUFModel(url: url)
        config = model.huggingFaceConfig()
    }

    public func has(_ name: String) -> Bool { model.huggingFaceTensorNames.contains(name) }

    /// Dequantises the tensor, then releases its pages of the memory map so that the quantised
    /// file does not stay resident beside the float32 weights.
    public func tensor(_ name: String) throws -> (shape: [Int], floats: [Float]) {
        let t = try model.huggingFaceTensor(named: name)
        release(name)
        return t
    }

    /// The quantised blocks copied out of the file (q/k rows reordered), its pages released.
    public func blockTensor(_ name: String) throws -> GGMLBlockMatrix? {
        let t = try model.huggingFaceTensorBytes(named: name)
        guard t.shape.count == 2, GGMLBlockMatrix.supports(t.type) else { return nil }
        defer { release(name) }
        return GGMLBlockMatrix(type: t.type, rows: t.shape[0], cols: t.shape[1], bytes: t.bytes, rowOrder: t.rowOrder)
    }

    private func release(_ name: String) {
        if let gguf = LlamaGGUF.ggufName(forHuggingFace: name), let info = model.file.info(gguf) { model.file.release(info) }
    }
}

/// Tensors of a Hugging Face model directory (config.json + safetensors, sharded or not).
public struct SafeTensorsWeightSource: WeightSource {
    public let files: ShardedSafeTensors
    public let config: HFLlamaConfig

    public init(directory: URL) throws {
        let configURL = directory.appendingPathComponent("config.json")
        let data: Data
        do { data = try Data(contentsOf: configURL) } catch {
            throw ModelError.invalidConfig(path: configURL.path, problem: "cannot be read (\(error.localizedDescription))")
        }
        do { config = try JSONDecoder().decode(HFLlamaConfig.self, from: data) } catch {
            throw ModelError.invalidConfig(path: configURL.path, problem: "is not a Llama config: \(error)")
        }
        files = try ShardedSafeTensors(directory: directory)
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
