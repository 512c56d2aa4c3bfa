import ArgumentParser
import Formats
import Foundation
import Model
import Tokenizer

struct ConvertModelCommand: ParsableCommand, Diagnosable {
    static let configuration = CommandConfiguration(
        commandName: "convert-model",
        abstract: "Convert a GGUF model file into a Hugging Face model directory.",
        discussion: """
        OUT receives config.json, generation_config.json, model.safetensors (every tensor \
        dequantised, in Hugging Face names and layout), tokenizer.json and tokenizer_config.json \
        (built from the GGUF's tokenizer metadata, chat template included). transformers loads OUT \
        with AutoModelForCausalLM and AutoTokenizer and computes the same logits as from the GGUF \
        (check: scripts/reference/check_converted_model.py OUT GGUF).
        """
    )

    /// `--dtype`: the element type of model.safetensors.
    enum ExportDType: String, ExpressibleByArgument, CaseIterable {
        case f32, bf16, f16

        var dtype: DType {
            switch self {
            case .f32: .f32
            case .bf16: .bf16
            case .f16: .f16
            }
        }
    }

    @Option(help: "The GGUF file to convert (an architecture of `pissa`'s families, byte-level BPE tokenizer).")
    var model: String

    @Option(help: "Output directory (created if needed; written whole, replacing an earlier `convert-model` or `merge` output).")
    var out: String

    @Flag(help: "Write into a non-empty --out that holds no earlier model written by pissa (files of the same names are replaced, others kept).")
    var overwrite = false

    @Option(help: "Element type of the weights: f32 (exact), bf16 or f16 (rounded to nearest even).")
    var dtype: ExportDType = .f32

    @Flag(help: "Print a machine-readable summary on standard output.")
    var json = false

    @OptionGroup var diagnostics: DiagnosticOptions

    func validate() throws {
        try PathCheck.existing(model, "--model", kind: .file, hint: "a GGUF file (a Hugging Face directory needs no conversion)")
        try PathCheck.outputDirectory(out, kind: .model, inputs: [.init("--model", model)], overwrite: overwrite)
    }

    func run() throws {
        let started = Date()
        let gguf = try GGUFModel(url: URL(fileURLWithPath: model))
        let tokenizer = try gguf.tokenizer()
        let line = ProgressLine()
        var summary: HuggingFaceExport.Summary
        do {
            summary = try OutputWriting.write(out, kind: .model, inputs: [.init("--model", model)], overwrite: overwrite) { staging in
                try HuggingFaceExport.write(gguf: gguf, tokenizer: tokenizer, to: staging, dtype: dtype.dtype) { p in
                    line.update("[\(p.completed)/\(p.total)] \(p.tensor)", force: p.completed == p.total)
                }
            }
            summary.directory = URL(fileURLWithPath: out).path   // not the temporary directory it was written in
        } catch {
            line.finish()
            throw error
        }
        line.finish()
        if !summary.skippedTensors.isEmpty {
            printError("warning: no Hugging Face counterpart, not written: \(summary.skippedTensors.joined(separator: ", "))")
        }
        if json {
            try printJSON(summary)
        } else {
            print("wrote \(summary.directory): \(summary.files.joined(separator: ", "))")
            print("\(summary.tensors) tensors, \(summary.parameters) parameters as \(summary.dtype.rawValue), "
                + "\(formatDuration(Date().timeIntervalSince(started)))")
        }
    }
}
