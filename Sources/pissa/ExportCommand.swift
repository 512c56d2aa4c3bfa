import Adapters
import ArgumentParser
import Formats
import Foundation
import Model

struct ExportCommand: ParsableCommand, Diagnosable {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a PEFT LoRA adapter for llama.cpp (GGUF) or mlx-lm.",
        discussion: """
        gguf-lora: one GGUF file (general.type adapter, adapter.lora.alpha, tensors \
        blk.N.<name>.weight.lora_a / .lora_b in F32, q/k rows permuted as llama.cpp permutes the \
        base weights), for `llama-cli -m BASE.gguf --lora OUT.gguf`. mlx: a directory with \
        adapters.safetensors and adapter_config.json for mlx_lm (--adapter-path). --model gives the \
        heads, layer count and shapes the adapter is checked against. A trained PiSSA adapter \
        belongs to its residual model: `pissa convert` it first to use it on the original model.
        """)

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case ggufLora = "gguf-lora", mlx
    }

    @Option(help: "The PEFT LoRA adapter directory.")
    var adapter: String

    @Option(help: "The model the adapter applies to (GGUF file or Hugging Face directory).")
    var model: String

    @Option(help: "gguf-lora (a llama.cpp adapter file) or mlx (an mlx-lm adapter directory).")
    var format: Format

    @Option(help: "Output: a .gguf file for gguf-lora, a directory for mlx.")
    var out: String

    @Flag(help: "Replace an --out that pissa did not write (gguf-lora: a file that is not a GGUF adapter; mlx: a non-empty directory, whose files of the same names are replaced).")
    var overwrite = false

    @Flag(help: "Print a machine-readable summary on standard output.")
    var json = false

    @OptionGroup var diagnostics: DiagnosticOptions

    func validate() throws {
        try PathCheck.existing(model, "--model")
        try PathCheck.existing(adapter, "--adapter", kind: .directory, hint: "a PEFT adapter directory")
        switch format {
        case .ggufLora:
            do { try Self.checkFile(out, inputs: inputs, overwrite: overwrite) } catch { throw ValidationError(error.description + ".") }
        case .mlx:
            try PathCheck.outputDirectory(out, kind: .mlxAdapter, inputs: inputs, overwrite: overwrite)
        }
    }

    private var inputs: [OutputDirectory.Input] { [.init("--model", model), .init("--adapter", adapter)] }

    /// A GGUF-LoRA output file: not an input, not a directory, and replaced without --overwrite
    /// only when it is a GGUF adapter already.
    @discardableResult
    private static func checkFile(_ out: String, inputs: [OutputDirectory.Input], overwrite: Bool,
                                  prepare: Bool = false) throws(OutputError) -> (url: URL, removed: [String]) {
        let isAdapter: (URL) -> Bool = { (try? GGUFFile(url: $0))?.metadata["general.type"]?.string == "adapter" }
        if prepare {
            return try OutputFile.prepare(out, inputs: inputs, overwrite: overwrite, hint: "a .gguf file name",
                                          expected: "a GGUF adapter", isOwn: isAdapter)
        }
        let url = try OutputFile.check(out, inputs: inputs, overwrite: overwrite, hint: "a .gguf file name", expected: "a GGUF adapter",
                                       isOwn: isAdapter)
        return (url, [])
    }

    func run() throws {
        let loaded = try PEFTAdapter.read(directory: URL(fileURLWithPath: adapter))
        warnIfUnconvertedPiSSA(adapter: adapter)
        let (source, name) = try openWeightSource(model)
        let modules = loaded.scaledModules
        try AdapterMerge.checkFit(modules, layout: try AdapterMerge.tensorLayout(source, name: name), model: name)
        switch format {
        case .ggufLora:
            let (url, removed) = try Self.checkFile(out, inputs: inputs, overwrite: overwrite, prepare: true)
            noteRemovedTemporaries(removed)
            var summary = try GGUFLoRAExport.write(adapters: modules, config: source.config, to: url)
            summary.path = URL(fileURLWithPath: out).path
            if json { return try printJSON(summary) }
            print("wrote \(summary.path): \(summary.tensors) tensors for \(summary.modules) modules, adapter.lora.alpha = \(summary.alpha)"
                + (summary.foldedModules > 0 ? " (\(summary.foldedModules) modules carry their own scale in lora_b)" : ""))
        case .mlx:
            let config = try OutputWriting.write(out, kind: .mlxAdapter, inputs: inputs, overwrite: overwrite) { staging in
                try MLXAdapterExport.write(adapters: modules, config: source.config, to: staging)
            }
            if json { return try printJSON(config) }
            print("wrote \(out): \(MLXAdapterExport.weightsFileName) and \(MLXAdapterExport.configFileName) "
                + "(rank \(config.loraParameters.rank), scale \(config.loraParameters.scale), \(config.numLayers) layers, keys \(config.loraParameters.keys.joined(separator: ",")))")
        }
    }
}
