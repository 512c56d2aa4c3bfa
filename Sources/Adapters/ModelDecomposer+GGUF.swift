import Foundation
import Formats
import Model
import Tokenizer

extension ModelDecomposer {
    /// `pissa init` on a GGUF file: the model is first written as a float32 Hugging Face directory
    /// inside the output (`OUT/.gguf-source.tmp-…`, removed afterwards; a killed run's copy is
    /// removed with the other temporaries by the next writer of OUT), then decomposed as usual. The
    /// residual is stored in float32: a quantised block format cannot hold W − scale·B·A, and
    /// decomposing at full precision is the point (docs/METHOD.md §6).
    public static func runOnGGUF(_ options: Options, progress: @escaping @Sendable (Progress) -> Void = { _ in }) throws -> InitReport {
        let gguf = try GGUFModel(url: options.model)
        let tokenizer = try gguf.tokenizer()
        let createdOutput = !FileManager.default.fileExists(atPath: options.output.path)
        try FileManager.default.createDirectory(at: options.output, withIntermediateDirectories: true)
        let staging = options.output.appendingPathComponent(Temporaries.name(for: "gguf-source"))
        defer { try? FileManager.default.removeItem(at: staging) }
        var report: InitReport
        do {
            _ = try HuggingFaceExport.write(gguf: gguf, tokenizer: tokenizer, to: staging, dtype: .f32)
            var staged = options
            staged.model = staging
            report = try run(staged, progress: progress)
        } catch {
            if createdOutput { try? FileManager.default.removeItem(at: options.output) }
            if case let AdapterError.nonFiniteWeight(_, tensor, index, value) = error {
                throw AdapterError.nonFiniteWeight(path: options.model.path, tensor: gguf.ggufName(forHuggingFace: tensor) ?? tensor,
                                                   index: index, value: value)
            }
            throw error
        }
        report.model = options.model.path
        // The adapter config should name the model the user gave, not the staging copy.
        let adapter = URL(fileURLWithPath: report.adapter).appendingPathComponent(PEFTAdapterConfig.configFileName)
        if var config = try? JSONDecoder().decode(PEFTAdapterConfig.self, from: Data(contentsOf: adapter)) {
            config.baseModelNameOrPath = options.model.path
            try AtomicFile.write(config.jsonData(), to: adapter)
        }
        return report
    }
}

extension QuantErrorAnalysis {
    /// `run` on a GGUF file: the model is first written as a float32 Hugging Face directory
    /// beside `scratch` (removed afterwards), as `pissa init` does.
    public static func runOnGGUF(_ options: Options, scratch: URL, progress: @escaping @Sendable (Progress) -> Void = { _ in }) throws -> Report {
        let gguf = try GGUFModel(url: options.model)
        let tokenizer = try gguf.tokenizer()
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        let staging = scratch.appendingPathComponent(Temporaries.name(for: "quant-error-source"))
        defer { try? FileManager.default.removeItem(at: staging) }
        _ = try HuggingFaceExport.write(gguf: gguf, tokenizer: tokenizer, to: staging, dtype: .f32)
        var staged = options
        staged.model = staging
        var report = try run(staged, progress: progress)
        report.model = options.model.path
        return report
    }
}
