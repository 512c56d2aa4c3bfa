import Adapters
import ArgumentParser
import Formats
import Foundation
import Model
import Training

struct ConvertCommand: ParsableCommand, Diagnosable {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a trained PiSSA adapter into a LoRA on the original model.",
        discussion: """
        A PiSSA adapter is trained on the residual W_res = W − s·B₀A₀; on the original W it gives \
        garbage. This writes the rank-2r LoRA ΔW = s·(B′A′ − B₀A₀): lora_A = [A′; A₀], \
        lora_B = [B′, −B₀], r and lora_alpha doubled (rsLoRA: alpha·√2), init_lora_weights: true. \
        OUT is an ordinary PEFT adapter for the original model (PEFT, `pissa merge`, `pissa export`). \
        A quantised (NF4) residual cannot be converted exactly and is refused unless --force; \
        --model ORIGINAL measures the gap. Adapters given the wrong way round (or the same one \
        twice) are refused: this tool records in each adapter whether it is a start or trained.
        """)

    @Option(help: "The initial adapter (RUN/pissa_init, or OUT/pissa_init of `pissa init`).")
    var initial: String

    @Option(help: "The trained adapter (RUN/adapter or a checkpoint's adapter).")
    var adapter: String

    @Option(help: "Output directory for the converted PEFT adapter.")
    var out: String

    @Flag(help: "Write into a non-empty --out that does not hold an earlier `pissa convert` output (files of the same names are replaced, others kept).")
    var overwrite = false

    @Option(help: "The original model (before decomposition), to measure the gap when the residual was quantised.")
    var model: String?

    @Flag(help: "Convert even when the residual was quantised (the result is then approximate).")
    var force = false

    @Flag(help: "Print a machine-readable report on standard output.")
    var json = false

    @OptionGroup var diagnostics: DiagnosticOptions

    func validate() throws {
        for (option, path) in [("--initial", initial), ("--adapter", adapter)] {
            try PathCheck.existing(path, option, kind: .directory, hint: "a PEFT adapter directory")
        }
        if let model { try PathCheck.existing(model, "--model") }
        try PathCheck.outputDirectory(out, kind: .adapter, inputs: inputs, overwrite: overwrite)
    }

    private var inputs: [OutputDirectory.Input] {
        [.init("--initial", initial), .init("--adapter", adapter)] + (model.map { [.init("--model", $0)] } ?? [])
    }

    func run() throws {
        let original = try model.map { try openWeightSource($0).source }
        var report = try OutputWriting.write(out, kind: .adapter, inputs: inputs, overwrite: overwrite) { staging in
            try PiSSAConversion.convertDirectories(
                initial: URL(fileURLWithPath: initial), adapter: URL(fileURLWithPath: adapter), output: staging,
                force: force, original: original)
        }
        report.output = URL(fileURLWithPath: out).path   // not the temporary directory it was written in
        for warning in report.warnings { printError("warning: " + warning) }
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
    static func convertAfterTraining(run path: String, steps: Int) throws {
        let run = RunDirectory(URL(fileURLWithPath: path))
        guard let initial = run.existingInitialAdapter else {
            printError("--convert: no initial adapter in \(path); nothing converted")
            return
        }
        guard FileManager.default.fileExists(atPath: run.adapterURL.appendingPathComponent(PEFTAdapterConfig.configFileName).path) else {
            printError("--convert: the run stopped before \(steps) steps (no \(run.adapterURL.path)); convert later with `pissa convert`")
            return
        }
        do {
            var report: PiSSAConversion.Report?
            try AtomicDirectory.write(run.convertedURL) { staging in
                report = try PiSSAConversion.convertDirectories(initial: initial, adapter: run.adapterURL, output: staging)
            }
            guard let report else { return }
            for warning in report.warnings { printError("warning: --convert: " + warning) }
            print("converted for the original model: \(run.convertedURL.path) (r = \(report.rank), lora_alpha = \(report.loraAlpha))")
        } catch let error as ConversionError {
            printError("--convert: \(error)")
        }
    }
}

/// Warns when `adapter` looks like an unconverted PiSSA adapter (RUN/adapter beside RUN/pissa_init,
/// or a PEFT config with init_lora_weights "pissa…"): it belongs to the residual model.
func warnIfUnconvertedPiSSA(adapter: String) {
    let named: Bool
    if let config = try? PEFTAdapter.read(directory: URL(fileURLWithPath: adapter)).config, case let .named(name) = config.initLoraWeights {
        named = name.lowercased().hasPrefix("pissa")
    } else { named = false }
    // A run's adapter from a start with B₀ ≠ 0 (PiSSA, LoftQ, or a loaded start) belongs to its residual.
    let inRun = RunDirectory.enclosing(adapter: adapter).map { $0.config.method == .adapter
        && ($0.config.adapterPath != nil || !$0.config.adapter.initMethod.isZeroB) } ?? false
    if named || inRun {
        printError("warning: \(adapter) looks like a trained PiSSA adapter; it applies to the residual model it was trained on. "
            + "For the original model, `pissa convert` it first.")
    }
}
