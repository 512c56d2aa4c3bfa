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
            guard let location = location(forHuggingFace: name) else { continue }
            guard let info = file.info(location.gguf) else {
                if !problems.contains("'\(location.gguf)' is missing") { problems.append("'\(location.gguf)' is missing") }
                continue
            }
            let dimensions = location.expert == nil ? Array(shape.reversed()) : Array(shape.reversed()) + [config.block.layout.expertCount]
            if info.dimensions != dimensions, !problems.contains(where: { $0.hasPrefix("'\(location.gguf)' has") }) {
                problems.append("'\(location.gguf)' has dimensions \(info.dimensions), the hyperparameters imply \(dimensions)")
            }
        }
        guard problems.isEmpty else { throw GGUFError.inconsistentModel(path: file.url.path, problems: problems) }
    }

    /// Where the tensor Hugging Face calls `hfName` lives: a GGUF tensor, or one expert's slice of
    /// a layer's stacked expert tensor (`Architecture.ggufExpertStacks`). nil outside the family's names.
    func location(forHuggingFace hfName: String) -> (gguf: String, expert: Int?)? {
        if let name = architecture.tensorNames.ggufName(forHuggingFace: hfName) { return (name, nil) }
        guard hfName.hasSuffix(".weight"), let (layer, p) = config.projection(modulePath: String(hfName.dropLast(".weight".count))),
              case let .expert(e, m) = p, let stack = architecture.ggufExpertStacks.first(where: { $0.matrix == m }) else { return nil }
        return ("blk.\(layer).\(stack.gguf).weight", e)
    }

    /// Hugging Face names of the tensors in the file, in file order (a stacked expert tensor as
    /// its experts' matrices). With tied embeddings there is no `lm_head.weight` (as in a Hugging
    /// Face checkpoint). GGUF tensors without a Hugging Face counterpart (e.g. `rope_freqs.weight`)
    /// are listed in `unmappedTensors`.
    public var huggingFaceTensorNames: [String] {
        file.tensors.flatMap { t -> [String] in
            if let name = architecture.tensorNames.huggingFaceName(forGGUF: t.name) { return [name] }
            return expertNames(forGGUF: t.name)
        }
    }

    /// The experts' Hugging Face names of a stacked GGUF tensor (none for other tensors).
    private func expertNames(forGGUF name: String) -> [String] {
        let parts = name.split(separator: ".")
        guard parts.count == 4, parts[0] == "blk", let layer = Int(parts[1]), String(layer) == parts[1], parts[3] == "weight",
              let stack = architecture.ggufExpertStacks.first(where: { $0.gguf == parts[2] }) else { return [] }
        return (0..<config.block.layout.expertCount).map { config.modulePath(.expert($0, stack.matrix), layer: layer) + ".weight" }
    }

    /// GGUF tensors that the family's table has no Hugging Face name for.
    public var unmappedTensors: [String] {
        file.tensors.map(\.name).filter { architecture.tensorNames.huggingFaceName(forGGUF: $0) == nil && expertNames(forGGUF: $0).isEmpty }
    }

    /// The GGUF name of the tensor Hugging Face calls `hfName` (`lm_head.weight` of a tied model:
    /// the embedding; an expert's matrix: its layer's stack), when the file has it.
    public func ggufName(forHuggingFace hfName: String) -> String? {
        guard var name = location(forHuggingFace: hfName)?.gguf else { return nil }
        if name == "output.weight", config.tieWordEmbeddings, file.info(name) == nil { name = "token_embd.weight" }
        return file.info(name) == nil ? nil : name
    }

    /// The tensor Hugging Face calls `hfName` as stored: its element type, row-major shape, the
    /// file's bytes (valid while `file` is alive) and, where llama.cpp permuted its rows, the GGUF
    /// row that holds each Hugging Face row (nil: the same order). For keeping quantised blocks as
    /// they are; nil when the family stores the tensor with a value offset or it is one expert's slice
    /// of a stack (it must be dequantised).
    public func huggingFaceTensorBytes(named hfName: String) throws(GGUFError)
        -> (type: GGMLType, shape: [Int], bytes: UnsafeRawBufferPointer, rowOrder: [Int]?)? {
        let path = file.url.path
        guard let ggufName = ggufName(forHuggingFace: hfName), let info = file.info(ggufName) else {
            throw .unknownHuggingFaceName(path: path, name: hfName)
        }
        guard architecture.ggufValueOffset(huggingFace: hfName) == 0,
              location(forHuggingFace: hfName)?.expert == nil else { return nil }
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

    /// The row-major shape of the tensor Hugging Face calls `hfName`, when the file has it.
    public func huggingFaceShape(named hfName: String) -> [Int]? {
        guard let name = ggufName(forHuggingFace: hfName), let info = file.info(name) else { return nil }
        return location(forHuggingFace: hfName)?.expert == nil ? info.shape : Array(info.shape.dropFirst())
    }

    /// The tensor Hugging Face calls `hfName`, dequantised, in Hugging Face layout and values, and
    /// its row-major shape (out × in for a weight). An expert's matrix is its slice of the stack
    /// (the whole stack is dequantised to read it).
    public func huggingFaceTensor(named hfName: String) throws(GGUFError) -> (shape: [Int], floats: [Float]) {
        let path = file.url.path
        guard let ggufName = ggufName(forHuggingFace: hfName), let info = file.info(ggufName) else {
            throw .unknownHuggingFaceName(path: path, name: hfName)
        }
        var values = try file.floats(info)
        if let expert = location(forHuggingFace: hfName)?.expert {
            let shape = Array(info.shape.dropFirst()), size = shape.reduce(1, *)
            return (shape, Array(values[(expert * size)..<((expert + 1) * size)]))
        }
        if let heads = architecture.ggufPermutedHeads(huggingFace: hfName, config: config) {            let rows = info.dimensions.count == 2 ? info.dimensions[1] : info.dimensions.first ?? 1
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
