import Foundation
import Formats
import Tokenizer

/// A GGUF model file seen through Hugging Face names, by its family (`ArchitectureRegistry`):
/// tensors come out dequantised to float32, in Hugging Face layout and values (llama.cpp's q/k
/// row permutation and value offsets undone, as transformers' GGUF loader does), with row-major
/// shapes.
public struct GGUFModel: Sendable {
    public let file: GGUFFile
    public let architecture: any Architecture.Type
    public let config: ModelConfig

    public init(url: URL) throws {
        try self.init(file: GGUFFile(url: url))
    }

    /// Refuses unknown families and unsupported features, and checks that every tensor the config
    /// implies is present with the implied dimensions (all problems listed together).
    public init(file: GGUFFile) throws {
        self.file = file
        architecture = try ArchitectureRegistry.architecture(gguf: file)
        config = try architecture.config(gguf: file)
        var problems: [String] = []
        for (name, shape) in ModelTensors.expected(config) {
            guard let ggufName = architecture.tensorNames.ggufName(forHuggingFace: name) else { continue }
            guard let info = file.info(ggufName) else { problems.append("'\(ggufName)' is missing"); continue }
            let dimensions = Array(shape.reversed())
            if info.dimensions != dimensions {
                problems.append("'\(ggufName)' has dimensions \(info.dimensions), the hyperparameters imply \(dimensions)")
            }
        }
        guard problems.isEmpty else { throw GGUFError.inconsistentModel(path: file.url.path, problems: problems) }
    }

    /// Hugging Face names of the tensors in the file, in file order. With tied embeddings there is
    /// no `lm_head.weight` (as in a Hugging Face checkpoint). GGUF tensors without a Hugging Face
    /// counterpart (e.g. `rope_freqs.weight`) are listed in `unmappedTensors`.
    public var huggingFaceTensorNames: [String] {
        file.tensors.compactMap { architecture.tensorNames.huggingFaceName(forGGUF: $0.name) }
    }

    /// GGUF tensors that the family's table has no Hugging Face name for.
    public var unmappedTensors: [String] {
        file.tensors.map(\.name).filter { architecture.tensorNames.huggingFaceName(forGGUF: $0) == nil }
    }

    /// The GGUF name of the tensor Hugging Face calls `hfName` (`lm_head.weight` of a tied model:
    /// the embedding), when the file has it.
    public func ggufName(forHuggingFace hfName: String) -> String? {
        guard var name = architecture.tensorNames.ggufName(forHuggingFace: hfName) else { return nil }
        if name == "output.weight", config.tieWordEmbeddings, file.info(name) == nil { name = "token_embd.weight" }
        return file.info(name) == nil ? nil : name
    }

    /// The tensor Hugging Face calls `hfName` as stored: its element type, row-major shape, the
    /// file's bytes (valid while `file` is alive) and, where llama.cpp permuted its rows, the GGUF
    /// row that holds each Hugging Face row (nil: the same order). For keeping quantised blocks as
    /// they are; nil when the family stores the tensor with a value offset (it must be dequantised).
    public func huggingFaceTensorBytes(named hfName: String) throws(GGUFError)
        -> (type: GGMLType, shape: [Int], bytes: UnsafeRawBufferPointer, rowOrder: [Int]?)? {
        let path = file.url.path
        guard let ggufName = ggufName(forHuggingFace: hfName), let info = file.info(ggufName) else {
            throw .unknownHuggingFaceName(path: path, name: hfName)
        }
        guard architecture.ggufValueOffset(huggingFace: hfName) == 0 else { return nil }
        var order: [Int]?
        if let heads = architecture.ggufPermutedHeads(huggingFace: hfName, config: config), info.dimensions.count == 2 {
            let rows = info.dimensions[1]
            guard rows % (2 * heads) == 0 else {
                throw .invalidHyperparameter(path: path, key: ggufName,
                                             problem: "shape \(info.shape) cannot be split into \(heads) heads of row pairs")
            }
            order = (0..<rows).map { GGUFRowPermutation.ggufRow(ofHuggingFaceRow: $0, rows: rows, heads: heads) }
        }
        return (info.type, info.shape, file.rawBytes(info), order)
    }

    /// The tensor Hugging Face calls `hfName`, dequantised, in Hugging Face layout and values, and
    /// its row-major shape (out × in for a weight).
    public func huggingFaceTensor(named hfName: String) throws(GGUFError) -> (shape: [Int], floats: [Float]) {
        let path = file.url.path
        guard let ggufName = ggufName(forHuggingFace: hfName), let info = file.info(ggufName) else {
            throw .unknownHuggingFaceName(path: path, name: hfName)
        }
        var values = try file.floats(info)
        if let heads = architecture.ggufPermutedHeads(huggingFace: hfName, config: config) {
            let rows = info.dimensions.count == 2 ? info.dimensions[1] : info.dimensions.first ?? 1
            let cols = info.dimensions.count == 2 ? info.dimensions[0] : 1
            guard info.dimensions.count <= 2, rows % (2 * heads) == 0 else {
                throw .invalidHyperparameter(path: path, key: ggufName,
                                             problem: "shape \(info.shape) cannot be split into \(heads) heads of row pairs")
            }
            GGUFRowPermutation.unpermuteRows(&values, rows: rows, cols: cols, heads: heads)
        }
        let offset = architecture.ggufValueOffset(huggingFace: hfName)
        if offset != 0 { for i in values.indices { values[i] -= offset } }
        return (info.shape, values)
    }

    /// The file's tokenizer, with the family's chat template as the default when the file has none.
    public func tokenizer() throws -> BPETokenizer {
        try BPETokenizer(gguf: file, defaultChatTemplate: architecture.defaultChatTemplate)
    }

    /// The Hugging Face `config.json` of this model, its weights stored as `torchDtype`.
    public func huggingFaceConfigJSON(torchDtype: String = "float32") throws -> Data {
        var c = config
        c.torchDtype = torchDtype
        return try architecture.huggingFaceConfigJSON(c)
    }
}
