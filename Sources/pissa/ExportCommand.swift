import Adapters
import ArgumentParser
import Foundation
import Model

struct ExportCommand: ParsableCommand {
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

    @Flag(help: "Print a machine-readable summary on standard output.")
    var json = false

    func validate() throws {
        try PathCheck.existing(model, "--model")
        try PathCheck.existing(adapter, "--adapter", kind: .directory, hint: "a PEFT adapter directory")
        switch format {
        case .ggufLora: try PathCheck.output(out, kind: .file, hint: "a .gguf file name")
        case .mlx: try PathCheck.output(out, kind: .directory)
        }
    }

    func run() throws {
        let loaded = try PEFTAdapter.read(directory: URL(fileURLWithPath: adapter))
        warnIfUnconvertedPiSSA(adapter: adapter)
        let (source, name) = try openWeightSource(model)
        let modules = loaded.scaledModules
        try AdapterMerge.checkFit(modules, layout: try AdapterMerge.tensorLayout(source, name: name), model: name)
        switch format {
        case .ggufLora:
            let summary = try GGUFLoRAExport.write(adapters: modules, config: source.config, to: URL(fileURLWithPath: out))
            if json { return try printJSON(summary) }
            print("wrote \(summary.path): \(summary.tensors) tensors for \(summary.modules) modules, adapter.lora.alpha = \(summary.alpha)"
                + (summary.foldedModules > 0 ? " (\(summary.foldedModules) modules carry their own scale in lora_b)" : ""))
        case .mlx:
            let config = try MLXAdapterExport.write(adapters: modules, layerCount: source.config.numHiddenLayers, to: URL(fileURLWithPath: out))
            if json { return try printJSON(config) }
            print("wrote \(out): \(MLXAdapterExport.weightsFileName) and \(MLXAdapterExport.configFileName) "
                + "(rank \(config.loraParameters.rank), scale \(config.loraParameters.scale), \(config.numLayers) layers, keys \(config.loraParameters.keys.joined(separator: ",")))")
        }
    }
}
