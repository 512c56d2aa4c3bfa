import Adapters
import ArgumentParser
import Foundation

struct QuantErrorCommand: ParsableCommand, Diagnosable {
    static let configuration = CommandConfiguration(
        commandName: "quant-error",
        abstract: "NF4 quantisation error of QLoRA, QPiSSA (and LoftQ) starts, per module type (the paper's Tables 4/8).",
        discussion: """
        For every target weight W: QLoRA's error ‖W − nf4(W)‖ and QPiSSA's ‖W − (nf4(W_res) + BA)‖ \
        for each rank and iteration count (exact SVD, alpha = r), in nuclear norm (the paper's \
        measure) and Frobenius norm. Per module type the errors and the reduction ratio \
        (1 − QPiSSA/QLoRA)·100 % are averaged over layers; "total" averages over every module.
        """
    )

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Comma-separated adapter ranks.")
    var rank: String = "16,64,128"

    @Option(help: "Comma-separated QPiSSA iteration counts T.")
    var iters: String = "1,5"

    @Option(help: "Comma-separated module-name suffixes (PEFT's matching), or all-linear.")
    var targets: String = "all-linear"

    @Option(help: "Comma-separated layer indices to measure (default: all layers).")
    var layers: String?

    @Flag(help: "Also measure LoftQ's start with the same ranks and iterations.")
    var loftq = false

    @Flag(help: "Quantise with double quantisation of the absmax values.")
    var doubleQuant = false

    @Flag(help: "Print the full report (every module) as JSON on standard output.")
    var json = false

    @Option(help: "Modules measured at once (each with single-threaded BLAS).")
    var lanes: Int = 2

    private static func integers(_ text: String) -> [Int]? {
        let parts = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        return parts.isEmpty || parts.contains(nil) ? nil : parts.map { $0! }
    }

    @OptionGroup var diagnostics: DiagnosticOptions

    func validate() throws {
        guard let ranks = Self.integers(rank), ranks.allSatisfy({ $0 >= 1 }) else {
            throw ValidationError("--rank must be a comma-separated list of positive integers (got '\(rank)').")
        }
        guard let its = Self.integers(iters), its.allSatisfy({ (1...1000).contains($0) }) else {
            throw ValidationError("--iters must be a comma-separated list of integers in 1…1000 (got '\(iters)').")
        }
        _ = (ranks, its)
        if let layers, Self.integers(layers).map({ $0.allSatisfy { $0 >= 0 } }) != true {
            throw ValidationError("--layers must be a comma-separated list of layer indices (got '\(layers)').")
        }
        try ArgumentCheck.lanes(lanes)
    }

    func run() throws {
        let path = modelOptions.path
        let options = QuantErrorAnalysis.Options(
            model: URL(fileURLWithPath: path), ranks: Self.integers(rank)!, iterations: Self.integers(iters)!,
            targets: targets.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) },
            layers: layers.flatMap(Self.integers), loftq: loftq, doubleQuant: doubleQuant, lanes: lanes)
        let line = ProgressLine()
        let progress: @Sendable (QuantErrorAnalysis.Progress) -> Void = { event in
            switch event {
            case .planned(let n): line.update("quant-error: \(n) modules", force: true)
            case let .moduleDone(i, n, module, elapsed):
                let eta = elapsed / Double(i) * Double(n - i)
                line.update("[\(i)/\(n)] \(module)  elapsed \(formatDuration(elapsed))  ETA \(formatDuration(eta))", force: i == n)
            }
        }
        let report: QuantErrorAnalysis.Report
        do {
            if path.lowercased().hasSuffix(".gguf") {
                line.update("converting \(path) to float32", force: true)
                report = try QuantErrorAnalysis.runOnGGUF(options, scratch: FileManager.default.temporaryDirectory, progress: progress)
            } else {
                report = try QuantErrorAnalysis.run(options, progress: progress)
            }
        } catch {
            line.finish()
            throw error
        }
        line.finish()
        if json { try printJSON(report) } else { printTable(report) }
    }

    private func printTable(_ report: QuantErrorAnalysis.Report) {
        print(QuantErrorAnalysis.markdown(report))
        print(String(format: "%d modules, %.1f s", report.modules.count, report.seconds))
    }
}
