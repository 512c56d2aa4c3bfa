import ArgumentParser
import Foundation
import Model
import Training

/// `--model`, shared by the commands that run a model.
struct ModelOptions: ParsableArguments {
    static let help: ArgumentHelp = "A GGUF file or a Hugging Face model directory (default: the fetched SmolLM2-135M-Instruct)."

    @Option(help: help)
    var model: String?

    var path: String { model ?? LanguageModel.defaultModelPath }

    func validate() throws { try Self.validate(model: model) }

    /// `--model` (or the default when nil) must exist.
    static func validate(model: String?) throws {
        let path = model ?? LanguageModel.defaultModelPath
        guard FileManager.default.fileExists(atPath: path) else {
            if model == nil {
                throw ValidationError("""
                    The default model is not at \(path). Fetch it with `scripts/assets/fetch.sh smollm2` \
                    (run from the repository; set PISSA_CACHE to use another cache), or pass --model.
                    """)
            }
            throw PathCheck.missing(path, "--model")
        }
    }

    /// The model; `keepBlocks` keeps a GGUF's quantised weights in their blocks (generation).
    func load(lanes: Int = 2, keepBlocks: Bool = false) throws -> LanguageModel {
        try LanguageModel.load(path: path, lanes: lanes, keepBlocks: keepBlocks)
    }

    /// The adapter at `path` for inference on `lm` (this `--model`); says on stderr when a PiSSA
    /// run's adapter is applied as its conversion.
    func inferenceAdapter(_ path: String, on lm: LanguageModel) throws -> TrainableAdapters {
        let (adapters, note) = try AdapterLoading.inference(path: path, model: lm.model, modelPath: self.path)
        if let note { FileHandle.standardError.write(Data(("note: " + note + "\n").utf8)) }
        return adapters
    }
}
