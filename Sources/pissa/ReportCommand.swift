import ArgumentParser
import Experiments
import Formats
import Foundation
import Training

/// `pissa report REPORT`: a comparison's report and figures made again from its results.json.
struct ReportCommand: ParsableCommand, Diagnosable {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Re-make a `pissa compare` report and its figures from REPORT/results.json, without training.",
        discussion: """
        For a report written by an older version of the tool, or whose report.md or figures were \
        lost. Every number comes from results.json, as when `pissa compare` wrote it; only the \
        files made from it are replaced, while holding REPORT's lock (not during a `pissa compare` \
        writing it).
        """)

    @Argument(help: "The report directory of a `pissa compare` run (it holds results.json).")
    var report: String

    @OptionGroup var diagnostics: DiagnosticOptions

    func validate() throws {
        guard FileManager.default.fileExists(atPath: (report as NSString).appendingPathComponent("results.json")) else {
            throw ValidationError("\(report) has no results.json; is it the --out of `pissa compare`?")
        }
    }

    func run() throws {
        // REPORT is both what is read (results.json) and where the report goes: the one command
        // that writes beside its input, and only files made from it.
        let paths = try OutputWriting.write(report, "REPORT", kind: .comparison, inputs: [], overwrite: true, staged: false) { directory in
            try Comparison.rewriteReport(in: directory)
        }
        for path in paths { print("wrote \(path)") }
    }
}
