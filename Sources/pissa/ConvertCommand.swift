import Adapters
import ArgumentParser
import Formats
import Foundation
import Model

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a trained PiSSA adapter into a LoRA on the original model.",
        discussion: """
        A PiSSA adapter is trained on the residual W_res = W − s·B₀A₀; on the original W it gives \
        garbage. This writes the rank-2r LoRA ΔW = s·(B′A′ − B₀A₀): lora_A = [A′; A₀], \
        lora_B = [B′, −B₀], r and lora_alpha doubled (rsLoRA: alpha·√2), init_lora_weights: true. \
        OUT is an ordinary PEFT adapter for the original model (PEFT, `pissa merge`, `pissa export`). \
        A quantised (NF4) residual cannot be converted exactly and is refused unless --force; \
        --model ORIGINAL measures the gap.
        """)

    @Option(help: "The initial adapter (RUN/pissa_init, or OUT/pissa_init of `pissa init`).")
    var initial: String

    @Option(help: "The trained adapter (RUN/adapter or a checkpoint's adapter).")
    var adapter: String

    @Option(help: "Output directory for the converted PEFT adapter.")
    var out: String

    @Option(help: "The original model (before decomposition), to measure the gap when the residual was quantised.")
    var model: String?

    @Flag(help: "Convert even when the residual was quantised (the result is then approximate).")
    var force = false

    @Flag(help: "Print a machine-readable report on standard output.")
    var json = false

    func validate() throws {
        for (option, path) in [("--initial", initial), ("--adapter", adapter)] {
            try PathCheck.existing(path, option, kind: .directory, hint: "a PEFT adapter directory")
        }
        if let model { try PathCheck.existing(model, "--model") }
        try PathCheck.output(out, kind: .directory)
    }

    func run() throws {
        let original = try model.map { try openWeightSource($0).source }
        let report = try PiSSAConversion.convertDirectories(
            initial: URL(fileURLWithPath: initial), adapter: URL(fileURLWithPath: adapter), output: URL(fileURLWithPath: out),
            force: force, original: original)
        if let q = report.quantization {
            printError("warning: the residual was quantised (\(q)); the converted LoRA is approximate. "
                + PiSSAConversion.gapSummary(report.quantizationGap))
        }
        if json { return try printJSON(report) }
        if report.unchanged {
            print("the initial adapter is a LoRA start (B₀ = 0): the trained adapter already applies to the original model; copied to \(report.output)")
        } else {
            print("wrote \(report.output): \(report.modules) modules, r = \(report.rank), lora_alpha = \(report.loraAlpha) (for the original model)")
        }
    }
}

extension ConvertCommand {
    /// `pissa train --convert`: converts RUN/adapter with RUN's initial adapter into
    /// RUN/lora_converted once the run has finished. A quantised residual is reported, not converted.
    static func convertAfterTraining(run: String, steps: Int) throws {
        let runURL = URL(fileURLWithPath: run)
        let adapter = runURL.appendingPathComponent("adapter"), out = runURL.appendingPathComponent("lora_converted")
        guard let initial = ["pissa_init", "lora_init", "initial_adapter"].map(runURL.appendingPathComponent)
            .first(where: { FileManager.default.fileExists(atPath: $0.appendingPathComponent("adapter_config.json").path) }) else {
            printError("--convert: no initial adapter in \(run); nothing converted")
            return
        }
        guard FileManager.default.fileExists(atPath: adapter.appendingPathComponent("adapter_config.json").path) else {
            printError("--convert: the run stopped before \(steps) steps (no \(adapter.path)); convert later with `pissa convert`")
            return
        }
        do {
            let report = try PiSSAConversion.convertDirectories(initial: initial, adapter: adapter, output: out)
            print("converted for the original model: \(report.output) (r = \(report.rank), lora_alpha = \(report.loraAlpha))")
        } catch let error as ConversionError {
            printError("--convert: \(error)")
        }
    }
}

/// Warns when `adapter` looks like an unconverted PiSSA adapter (RUN/adapter beside RUN/pissa_init,
/// or a PEFT config with init_lora_weights "pissa…"): it belongs to the residual model.
func warnIfUnconvertedPiSSA(adapter: String) {
    let url = URL(fileURLWithPath: adapter).standardizedFileURL
    let sibling = url.deletingLastPathComponent().appendingPathComponent("pissa_init/adapter_config.json")
    let named: Bool
    if let config = try? PEFTAdapter.read(directory: url).config, case let .named(name) = config.initLoraWeights {
        named = name.lowercased().hasPrefix("pissa")
    } else { named = false }
    if named || (url.lastPathComponent == "adapter" && FileManager.default.fileExists(atPath: sibling.path)) {
        printError("warning: \(adapter) looks like a trained PiSSA adapter; it applies to the residual model it was trained on. "
            + "For the original model, `pissa convert` it first.")
    }
}
