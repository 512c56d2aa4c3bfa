import Adapters
import ArgumentParser
import Formats
import Foundation
import Model
import Training

struct InitCommand: ParsableCommand, Diagnosable {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Decompose a model: write the residual model and its PiSSA (or LoRA) start adapter.",
        discussion: """
        OUT receives the residual model (every target weight W replaced by W − scale·B·A in its \
        original dtype, everything else copied unchanged) and OUT/pissa_init/ (OUT/lora_init/ for \
        --init lora|gaussian), a Hugging Face PEFT adapter. Loading OUT with transformers and the \
        adapter with PEFT gives the original model's outputs.

        With --quant nf4 the residual is stored in NF4 (bitsandbytes' Linear4bit layout, \
        docs/QPISSA.md): --init pissa… gives QPiSSA (T = --iters alternations of SVD and \
        quantisation), --init lora the QLoRA start, --init loftq LoftQ (OUT/loftq_init/). \
        --dequantized writes deq(NF4(W_res)) in the original dtype instead.

        OUT is written whole: into a temporary directory beside it, then put in its place, so an \
        interrupted run leaves the old OUT (or none), never half of one. A non-empty OUT is only \
        replaced when it holds the output of an earlier `pissa init`, or with --overwrite.
        """
    )

    @OptionGroup var modelOptions: ModelOptions

    /// A Hugging Face directory with *.safetensors (sharded through their index) or a Llama GGUF
    /// file (its residual is written in float32).
    var model: String { modelOptions.path }

    @Option(help: "Output directory (created if needed; never the model's own directory, nor one containing it).")
    var out: String

    @Flag(help: "Write into a non-empty --out that does not hold an earlier `pissa init` output (files of the same names are replaced, others kept).")
    var overwrite = false

    @OptionGroup var adapter: AdapterOptions

    @OptionGroup var quant: QuantOptions

    @OptionGroup var calibration: CalibrationOptions

    @Option(parsing: .unconditional, help: "Sequences per calibration batch (--init corda|eva|lora_ga).")
    var batchSize: Int = 4

    @Option(parsing: .unconditional, help: "Longest calibration sequence in tokens (longer ones are truncated, .txt is chunked).")
    var maxSeqLen: Int = 512

    @Flag(help: "With --quant: write the dequantised residual in the weight's original dtype instead of NF4 tensors.")
    var dequantized = false

    @Flag(help: "Also measure each rank-r product against the exact SVD's (one exact SVD per module).")
    var check = false

    @Flag(help: "Print a machine-readable summary on standard output.")
    var json = false

    @Option(parsing: .unconditional, help: "Matrices decomposed at once (each with single-threaded BLAS).")
    var lanes: Int = 2

    @OptionGroup var diagnostics: DiagnosticOptions

    func validate() throws {
        try PathCheck.existing(model, "--model")   // ModelOptions.validate explains the default
        var isDirectory: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: model, isDirectory: &isDirectory)
        guard isDirectory.boolValue || model.lowercased().hasSuffix(".gguf") else {
            throw ValidationError("--model \(model) is a file but not a .gguf; pass a GGUF file or a Hugging Face model directory.")
        }
        try ArgumentCheck.lanes(lanes)
        try PathCheck.outputDirectory(out, kind: .residualModel, inputs: inputs, overwrite: overwrite)
        if dequantized && quant.quant == nil { throw ValidationError("--dequantized needs --quant nf4.") }
        if adapter.initMethod == .loftq && quant.quant == nil {
            throw ValidationError("--init loftq quantises the residual: add --quant nf4 (and --iters T).")
        }
        if adapter.initMethod.needsCalibration {
            guard calibration.calibData != nil else {
                throw ValidationError("--init \(adapter.initMethod) is made from data: pass --calib-data FILE (.jsonl or .txt, as for training).")
            }
            if quant.quant != nil { throw ValidationError("--init \(adapter.initMethod) starts on a float32 base; drop --quant.") }
        } else if calibration.calibData != nil {
            throw ValidationError("--calib-data is the data of --init corda, eva or lora_ga; drop it or choose one of them.")
        }
        try ArgumentCheck.integer(batchSize, "--batch-size", in: 1...65536)
        try ArgumentCheck.integer(maxSeqLen, "--max-seq-len", in: 2...1 << 20)
    }

    /// The statistics of a data-driven start, measured on the model as it is given (then released).
    private func measureCalibration(_ settings: AdapterSettings, line: ProgressLine) throws -> CalibrationResult? {
        guard settings.initMethod.needsCalibration, let path = calibration.calibData else { return nil }
        line.update("\(settings.initMethod): running the model over \(calibration.calibBatches) calibration batches of \(path)", force: true)
        let (weights, tokenizer) = try LanguageModel.loadParts(path: model)
        return try CalibrationLoader.measure(weights: weights, tokenizer: tokenizer, settings: settings, path: path, batchSize: batchSize,
                                             maxSeqLen: maxSeqLen, count: calibration.calibBatches, lanes: lanes)
    }

    private var inputs: [OutputDirectory.Input] {
        [.init("--model", model)] + (calibration.calibData.map { [.init("--calib-data", $0)] } ?? [])
    }

    func run() throws {
        let settings = adapter.settings
        let line = ProgressLine()
        var report: InitReport
        do {
            let isGGUF = model.lowercased().hasSuffix(".gguf")
            let run = isGGUF ? ModelDecomposer.runOnGGUF : ModelDecomposer.run
            if isGGUF { line.update("converting \(model) to float32 before decomposing", force: true) }
            let calibrated = try measureCalibration(settings, line: line)
            report = try OutputWriting.write(out, kind: .residualModel, inputs: inputs, overwrite: overwrite) { staging in
                let options = ModelDecomposer.Options(
                    model: URL(fileURLWithPath: model), output: staging,
                    settings: settings, check: check, lanes: lanes, quant: quant.settings, dequantized: dequantized, calibration: calibrated)
                return try run(options) { event in
                    switch event {
                    case .planned(let n):
                        let q = quant.settings.map { " nf4 T=\($0.iterations)\($0.doubleQuant ? " double-quant" : "")" } ?? ""
                        line.update("\(settings.initMethod) r=\(settings.rank)\(q): \(n) modules", force: true)
                    case let .moduleDone(i, n, module, elapsed):
                        let eta = elapsed / Double(i) * Double(n - i)
                        line.update("[\(i)/\(n)] \(module)  elapsed \(formatDuration(elapsed))  ETA \(formatDuration(eta))",
                                    force: i == n)
                    case .writingAdapter:
                        line.update("writing adapter", force: true)
                    }
                }
            }
        } catch {
            line.finish()
            throw error
        }
        line.finish()
        report.output = URL(fileURLWithPath: out).path   // not the temporary directory it was written in
        report.adapter = URL(fileURLWithPath: out).appendingPathComponent(ModelDecomposer.adapterDirectoryName(for: settings.initMethod)).path
        if json {
            try printJSON(report)
        } else {
            printSummary(report)
        }
    }

    private func printSummary(_ report: InitReport) {
        print("residual model: \(report.output)")
        print("adapter:        \(report.adapter)")
        print(String(format: "%d modules, decomposition %.2f s (lane-seconds), total %.2f s",
                     report.modules.count, report.decompositionSeconds, report.totalSeconds))
        if let seconds = report.calibrationSeconds, let batches = report.calibrationBatches {
            print(String(format: "calibration:    %d batches, %.2f s", batches, seconds))
        }
        if let dropped = report.droppedModules, !dropped.isEmpty {
            print("rank 0 (EVA):   \(dropped.count) modules without an adapter")
        }
        print("adapted:        " + report.adaptedModulePatterns.map { "\($0.pattern) ×\($0.count)" }.joined(separator: ", "))
        let quantErrors = report.modules.compactMap(\.quantizationError)
        if !quantErrors.isEmpty {
            print(String(format: "‖W − (nf4(W_res) + sBA)‖_F/‖W‖_F: mean %.4f, max %.4f",
                         quantErrors.reduce(0, +) / Double(quantErrors.count), quantErrors.max()!))
        }
        if check {
            let rec = report.modules.compactMap(\.reconstructionError).max() ?? 0
            print(String(format: "max ‖W_res + sBA − W‖/‖W‖ = %.2e", rec))
            let errs = report.modules.compactMap(\.rankProductError).sorted()
            if !errs.isEmpty {
                print(String(format: "rank-r product vs exact SVD: median %.2e, max %.2e", errs[errs.count / 2], errs.last!))
            }
        }
    }
}
