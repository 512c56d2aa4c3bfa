import Foundation

/// A Llama-architecture GGUF file seen through Hugging Face names: tensors come out dequantised
/// to float32, in the Hugging Face layout (q and k rows un-permuted), with row-major shapes.
public struct LlamaGGUFModel: Sendable {
    public let file: GGUFFile
    public let hyperparameters: GGUFLlamaHyperparameters

    public init(url: URL) throws(GGUFError) {
        try self.init(file: GGUFFile(url: url))
    }

    public init(file: GGUFFile) throws(GGUFError) {
        self.file = file
        self.hyperparameters = try GGUFLlamaHyperparameters(file: file)
        try Self.checkTensors(file, hyperparameters)
    }

    /// Every tensor a Llama needs is present with the dimensions (innermost first) that the
    /// hyperparameters imply; `output.weight` may be absent when the embeddings are tied.
    private static func checkTensors(_ file: GGUFFile, _ h: GGUFLlamaHyperparameters) throws(GGUFError) {
        let (C, F, V) = (h.embeddingLength, h.feedForwardLength, h.vocabSize)
        let (q, kv) = (h.headCount * h.headDim, h.headCountKV * h.headDim)
        var expected: [(String, [Int])] = [("token_embd.weight", [C, V]), ("output_norm.weight", [C])]
        if !h.tiedEmbeddings || file.info("output.weight") != nil { expected.append(("output.weight", [C, V])) }
        for i in 0..<h.blockCount {
            expected += [("attn_norm", [C]), ("attn_q", [C, q]), ("attn_k", [C, kv]), ("attn_v", [C, kv]),
                         ("attn_output", [q, C]), ("ffn_norm", [C]), ("ffn_gate", [C, F]), ("ffn_up", [C, F]),
                         ("ffn_down", [F, C])].map { ("blk.\(i).\($0.0).weight", $0.1) }
        }
        var problems: [String] = []
        for (name, dimensions) in expected {
            guard let info = file.info(name) else { problems.append("'\(name)' is missing"); continue }
            if info.dimensions != dimensions {
                problems.append("'\(name)' has dimensions \(info.dimensions), the hyperparameters imply \(dimensions)")
            }
        }
        guard problems.isEmpty else { throw .inconsistentModel(path: file.url.path, problems: problems) }
    }

    /// Hugging Face names of the tensors in the file, in file order. With tied embeddings there is
    /// no `lm_head.weight` (as in a Hugging Face checkpoint). GGUF tensors without a Hugging Face
    /// counterpart (e.g. `rope_freqs.weight`) are listed in `unmappedTensors`.
    public var huggingFaceTensorNames: [String] {
        file.tensors.compactMap { LlamaGGUF.huggingFaceName(forGGUF: $0.name) }
    }

    /// GGUF tensors that `LlamaGGUF` has no Hugging Face name for.
    public var unmappedTensors: [String] {
        file.tensors.map(\.name).filter { LlamaGGUF.huggingFaceName(forGGUF: $0) == nil }
    }

    /// The Hugging Face `config.json` of this model.
    public func huggingFaceConfig(torchDtype: String = "float32") -> HFLlamaConfig {
        hyperparameters.huggingFaceConfig(torchDtype: torchDtype)
    }

    /// The tensor Hugging Face calls `hfName` as stored: its element type, row-major shape, the
    /// file's bytes (valid while `file` is alive) and, for a q or k projection, the GGUF row that
    /// holds each Hugging Face row (nil: the same order). For keeping quantised blocks as they are.
    public func huggingFaceTensorBytes(named hfName: String) throws(GGUFError)
        -> (type: GGMLType, shape: [Int], bytes: UnsafeRawBufferPointer, rowOrder: [Int]?) {
        let path = file.url.path
        guard var ggufName = LlamaGGUF.ggufName(forHuggingFace: hfName) else {
            throw .unknownHuggingFaceName(path: path, name: hfName)
        }
        if ggufName == "output.weight", hyperparameters.tiedEmbeddings { ggufName = "token_embd.weight" }
        guard let info = file.info(ggufName) else { throw .unknownHuggingFaceName(path: path, name: hfName) }
        var order: [Int]?
        if let kind = LlamaGGUF.rotaryKind(ofGGUF: ggufName), info.dimensions.count == 2 {
            let heads = kind == .query ? hyperparameters.headCount : hyperparameters.headCountKV
            let rows = info.dimensions[1]
            guard rows % (2 * heads) == 0 else {
                throw .invalidHyperparameter(path: path, key: ggufName,
                                             problem: "shape \(info.shape) cannot be split into \(heads) heads of row pairs")
            }
            order = (0..<rows).map { LlamaGGUF.ggufRow(ofHuggingFaceRow: $0, rows: rows, heads: heads) }
        }
        return (info.type, info.shape, file.rawBytes(info), order)
    }

    /// The tensor Hugging Face calls `hfName`, dequantised, with q/k rows un-permuted, and its
    /// row-major shape (out × in for a weight). `lm_head.weight` of a tied model is the embedding.
    public func huggingFaceTensor(named hfName: String) throws(GGUFError) -> (shape: [Int], floats: [Float]) {
        let path = file.url.path
        guard var ggufName = LlamaGGUF.ggufName(forHuggingFace: hfName) else {
            throw .unknownHuggingFaceName(path: path, name: hfName)
        }
        if ggufName == "output.weight", hyperparameters.tiedEmbeddings { ggufName = "token_embd.weight" }
        guard let info = file.info(ggufName) else { throw .unknownHuggingFaceName(path: path, name: hfName) }
        var values = try file.floats(info)
        if let kind = LlamaGGUF.rotaryKind(ofGGUF: ggufName) {
            let heads = kind == .query ? hyperparameters.headCount : hyperparameters.headCountKV
            let rows = info.dimensions.count == 2 ? info.dimensions[1] : info.dimensions.first ?? 1
            let cols = info.dimensions.count == 2 ? info.dimensions[0] : 1
            guard info.dimensions.count <= 2, rows % (2 * heads) == 0 else {
                throw .invalidHyperparameter(path: path, key: ggufName,
                                             problem: "shape \(info.shape) cannot be split into \(heads) heads of row pairs")
            }
            LlamaGGUF.unpermuteRows(&values, rows: rows, cols: cols, heads: heads)
        }
        return (info.shape, values)
    }
}
