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

    public static func load(path: String, lanes: Int = 2) throws -> LanguageModel {
        let t0 = Date()
        let (weights, tokenizer) = try loadParts(path: path)
        return LanguageModel(model: DecoderModel(weights: weights, lanes: lanes), tokenizer: tokenizer, path: path,
                             loadSeconds: Date().timeIntervalSince(t0))
    }

    /// The weights and tokenizer without a model around them, for callers that change the
    /// weights first (PiSSA replaces each target weight by its residual): no second copy is made.
    /// `prepare` sees each float32 projection as it is read (`ModelWeights.ProjectionPreparer`).
    public static func loadParts(path: String, prepare: ModelWeights.ProjectionPreparer? = nil) throws
        -> (weights: ModelWeights, tokenizer: BPETokenizer) {
        let (source, name) = try openWeightSource(path)
        let weights = try ModelWeights(source: source, sourceName: name, prepare: prepare)
        let tokenizer: BPETokenizer
        if let gguf = source as? GGUFWeightSource {
            tokenizer = try BPETokenizer(gguf: gguf.model.file)
        } else {
            let dir = URL(fileURLWithPath: path)
            let config = dir.appendingPathComponent("tokenizer_config.json")
            tokenizer = try BPETokenizer(tokenizerJSON: dir.appendingPathComponent("tokenizer.json"),
                                         tokenizerConfig: FileManager.default.fileExists(atPath: config.path) ? config : nil)
        }
        return (weights, tokenizer)
    }
}
