import Adapters
import ArgumentParser
import Formats
import Foundation
import Model

struct MergeCommand: ParsableCommand, Diagnosable {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Fold a LoRA adapter into a model and write a Hugging Face model directory.",
        discussion: """
        Every adapted weight becomes W + s·B·A (float32), every other tensor is copied; OUT gets \
        model.safetensors, config.json and the tokenizer files (copied from a Hugging Face \
        directory, made from the metadata of a GGUF file). Use the adapter with the model it \
        applies to: a trained PiSSA adapter with its residual model, or first `pissa convert` it \
        to a LoRA on the original model.
        """)

    @Option(help: "The model: a GGUF file or a Hugging Face directory.")
    var model: String

    @Option(help: "The PEFT LoRA adapter directory to fold in.")
    var adapter: String

    @Option(help: "Output directory (created if needed; written whole, replacing an earlier `merge` or `convert-model` output).")
    var out: String

    @Flag(help: "Write into a non-empty --out that holds no earlier model written by pissa (files of the same names are replaced, others kept).")
    var overwrite = false

    @Option(help: "Element type of the merged weights: f32, bf16 or f16 (rounded to nearest even).")
    var dtype: ConvertModelCommand.ExportDType = .f32

    @Flag(help: "Print a machine-readable summary on standard output.")
    var json = false

    @OptionGroup var diagnostics: DiagnosticOptions

    func validate() throws {
        try PathCheck.existing(model, "--model")
        try PathCheck.existing(adapter, "--adapter", kind: .directory, hint: "a PEFT adapter directory")
        try PathCheck.outputDirectory(out, kind: .model, inputs: inputs, overwrite: overwrite)
    }

    private var inputs: [OutputDirectory.Input] { [.init("--model", model), .init("--adapter", adapter)] }

    func run() throws {
        let loaded = try PEFTAdapter.read(directory: URL(fileURLWithPath: adapter))
        warnIfUnconvertedPiSSA(adapter: adapter)
        let line = ProgressLine()
        var summary: AdapterMerge.Summary
        do {
            summary = try OutputWriting.write(out, kind: .model, inputs: inputs, overwrite: overwrite) { staging in
                try AdapterMerge.write(modelPath: model, adapters: loaded.scaledModules, to: staging, dtype: dtype.dtype) { p in
                    line.update("[\(p.completed)/\(p.total)] \(p.tensor)", force: p.completed == p.total)
                }
            }
            summary.directory = URL(fileURLWithPath: out).path   // not the temporary directory it was written in
        } catch {
            line.finish()
            throw error
        }
        line.finish()
        if json { return try printJSON(summary) }
        print("wrote \(summary.directory): \(summary.files.joined(separator: ", "))")
        print("\(summary.tensors) tensors as \(summary.dtype.rawValue), \(summary.mergedModules) with the adapter folded in")
    }
}
