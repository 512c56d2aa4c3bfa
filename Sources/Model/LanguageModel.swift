import Foundation
import Formats
import Tokenizer

/// A model with its tokenizer, opened from a GGUF file or a Hugging Face directory.
public struct LanguageModel: Sendable {
    public let model: DecoderModel
    public let tokenizer: BPETokenizer
    public let path: String
    public let loadSeconds: Double

    public static let defaultModelRelativePath = "SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf"

    /// Where the default model lives: `$PISSA_CACHE/…`, else `./.cache/assets/…`.
    public static var defaultModelPath: String {
        let cache = ProcessInfo.processInfo.environment["PISSA_CACHE"] ?? ".cache/assets"
        return (cache as NSString).appendingPathComponent(defaultModelRelativePath)
    }

    /// With `keepBlocks`, a GGUF's quantised weights stay in their blocks (`ModelWeights`): for
    /// generation, which then reads ≈ 5× fewer bytes per token than from float32.
    public static func load(path: String, lanes: Int = 2, keepBlocks: Bool = false) throws -> LanguageModel {
        let t0 = Date()
        let (weights, tokenizer) = try loadParts(path: path, keepBlocks: keepBlocks)
        return LanguageModel(model: DecoderModel(weights: weights, lanes: lanes), tokenizer: tokenizer, path: path,
                             loadSeconds: Date().timeIntervalSince(t0))
    }

    /// The weights and tokenizer without a model around them, for callers that change the
    /// weights first (PiSSA replaces each target weight by its residual): no second copy is made.
    /// `prepare` sees each float32 projection as it is read (`ModelWeights.ProjectionPreparer`).
    public static func loadParts(path: String, keepBlocks: Bool = false, prepare: ModelWeights.ProjectionPreparer? = nil) throws
        -> (weights: ModelWeights, tokenizer: BPETokenizer) {
        let (source, name) = try openWeightSource(path)
        let weights = try ModelWeights(source: source, sourceName: name, keepBlocks: keepBlocks, prepare: prepare)
        let tokenizer: BPETokenizer
        if let gguf = source as? GGUFWeightSource {
            tokenizer = try gguf.model.tokenizer()
        } else {
            tokenizer = try directoryTokenizer(URL(fileURLWithPath: path), family: ArchitectureRegistry.architecture(of: weights.config))
        }
        return (weights, tokenizer)
    }

    /// Only the tokenizer of a model: a GGUF file's metadata, or a Hugging Face directory's
    /// tokenizer.json (+ tokenizer_config.json), with the family's chat template as the default
    /// when the files ship none.
    public static func loadTokenizer(path: String) throws -> BPETokenizer {
        let url = URL(fileURLWithPath: path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ModelError.unsupportedModel(source: path, problem: "no such file or directory")
        }
        if !isDirectory.boolValue { return try GGUFModel(url: url).tokenizer() }
        let family = try ArchitectureRegistry.architecture(huggingFace: try SafeTensorsWeightSource.configData(directory: url),
                                                          path: url.appendingPathComponent("config.json").path)
        return try directoryTokenizer(url, family: family)
    }

    private static func directoryTokenizer(_ directory: URL, family: any Architecture.Type) throws -> BPETokenizer {
        let config = directory.appendingPathComponent("tokenizer_config.json")
        return try BPETokenizer(tokenizerJSON: directory.appendingPathComponent("tokenizer.json"),
                                tokenizerConfig: FileManager.default.fileExists(atPath: config.path) ? config : nil,
                                defaultChatTemplate: family.defaultChatTemplate)
    }
}
