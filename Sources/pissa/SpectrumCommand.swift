import ArgumentParser
import Experiments
import Foundation
import Training

struct SpectrumCommand: ParsableCommand, Diagnosable {
    static let configuration = CommandConfiguration(
        commandName: "spectrum",
        abstract: "Singular values of every target weight, and the share of each weight's energy its top r hold.",
        discussion: """
        OUT receives spectrum.json (per module: path, layer, shape, every singular value, and \
        Σ_{i<r} σᵢ² / Σ σᵢ², what PiSSA's rank-r adapter takes from the weight), spectrum.svg \
        (σᵢ/σ₁ per module kind, mean over layers, log scale) and energy.svg (the top-r share per layer).
        """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Output directory (created if needed; an earlier `pissa spectrum` output is replaced).")
    var out: String

    @Flag(help: "Write into a non-empty --out that holds no earlier spectrum (files of the same names are replaced, others kept).")
    var overwrite = false

    @Option(parsing: .unconditional, help: "The rank r whose energy share each module reports.")
    var rank: Int = 16

    @Option(help: "Comma-separated module-name suffixes (PEFT's matching), or all-linear.")
    var targets: String = "all-linear"

    @Option(parsing: .unconditional, help: "Matrices decomposed at once.")
    var lanes: Int = 2

    @Flag(help: "Also print the JSON on standard output.")
    var json = false

    @OptionGroup var diagnostics: DiagnosticOptions

    private var targetList: [String] { targets.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }

    func validate() throws {
        try ArgumentCheck.integer(rank, "--rank", in: 1...Int.max)
        try ArgumentCheck.lanes(lanes)
        guard !targetList.isEmpty else { throw ValidationError("--targets names no module; try --targets all-linear.") }
        try PathCheck.outputDirectory(out, kind: .spectrum, inputs: [.init("--model", modelOptions.path)], overwrite: overwrite)
    }

    func run() throws {
        let line = ProgressLine()
        let report: Spectrum.Report
        do {
            report = try OutputWriting.write(out, kind: .spectrum, inputs: [.init("--model", modelOptions.path)], overwrite: overwrite) { directory in
                let report = try Spectrum.measure(modelPath: modelOptions.path, targets: targetList, rank: rank, lanes: lanes) { event in
                    switch event {
                    case .loaded(let n): line.update("\(n) modules", force: true)
                    case let .moduleDone(i, n): line.update("[\(i)/\(n)] singular values", force: i == n)
                    }
                }
                try Spectrum.write(report, to: directory)
                return report
            }
        } catch {
            line.finish()
            throw error
        }
        line.finish()
        if json { try printJSON(report) }
        let shares = report.modules.map(\.energyTopR).sorted()
        print("\(report.modules.count) modules in \(String(format: "%.2f", report.seconds)) s; top-\(rank) energy share: "
              + String(format: "median %.3f, min %.3f, max %.3f", shares[shares.count / 2], shares.first!, shares.last!))
        var kinds: [String] = []
        for m in report.modules where !kinds.contains(m.kind) { kinds.append(m.kind) }
        for kind in kinds {
            let s = report.modules.filter { $0.kind == kind }.map(\.energyTopR)
            print(String(format: "  %@ mean %.3f", kind.padding(toLength: 10, withPad: " ", startingAt: 0) as NSString, s.reduce(0, +) / Double(s.count)))
        }
        print("wrote \(out)/\(Spectrum.Report.fileName), spectrum.svg, energy.svg")
    }
}
