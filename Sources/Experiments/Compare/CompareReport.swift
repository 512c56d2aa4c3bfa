import Adapters
import Formats
import Foundation
import LinearAlgebra
import Model
import Tokenizer
import Training

/// `report.md` and its figures, made from a comparison's results alone (so that a report can be
/// remade from `results.json` without training again).
public enum CompareReport {
    public static let fileName = "report.md"

    /// Writes the report and figures into `directory`; returns the paths written.
    @discardableResult
    public static func write(_ results: ComparisonResults, to directory: URL, extraSections: [String] = []) throws -> [String] {
        var written: [String] = []
        for (name, plot) in figures(results) {
            let url = directory.appendingPathComponent(name)
            try plot.write(to: url)
            written.append(url.path)
        }
        let url = directory.appendingPathComponent(fileName)
        try AtomicFile.write(Data(markdown(results, extraSections: extraSections).utf8), to: url)
        written.append(url.path)
        return written
    }

    // MARK: Figures

    /// (file name, plot) of every figure the report shows.
    public static func figures(_ results: ComparisonResults) -> [(String, SVGPlot)] {
        let methods = results.config.methods
        func curves(_ value: (StepMetrics) -> Double?, maxStep: Int? = nil) -> [SVGPlot.Series] {
            methods.compactMap { method in
                let runs = results.runs.filter { $0.method == method }
                let stats = SeedStatistics.perStep(runs.map(\.metrics), value: value).filter { maxStep == nil || $0.step <= maxStep! }
                guard !stats.isEmpty else { return nil }
                // One colour per method in every report, whichever methods it compares; past the
                // palette's seven colours the methods draw dashed lines.
                let index = CompareMethod.allCases.firstIndex(of: method)!
                let color = SVGPlot.palette[index % SVGPlot.palette.count]
                return SVGPlot.Series(
                    name: method.label + (runs.count > 1 ? " (mean ± std of \(runs.count) seeds)" : ""),
                    points: stats.map { .init(x: Double($0.step), y: $0.mean) },
                    band: runs.count > 1 ? stats.map { .init(x: Double($0.step), lower: $0.mean - $0.std, upper: $0.mean + $0.std) } : [],
                    color: color, lineWidth: 2, dashed: index >= SVGPlot.palette.count, markers: maxStep != nil)
            }
        }
        var out: [(String, SVGPlot)] = [
            ("loss.svg", SVGPlot(title: "Training loss", xLabel: "optimizer step", yLabel: "loss (nats per supervised token)",
                                 series: curves(\.loss))),
            ("loss_first20.svg", SVGPlot(title: "Training loss, first 20 steps", xLabel: "optimizer step",
                                         yLabel: "loss (nats per supervised token)", series: curves(\.loss, maxStep: 20))),
            ("grad_norm.svg", SVGPlot(title: "Gradient norm (before clipping)", xLabel: "optimizer step", yLabel: "global L2 norm",
                                      logY: true, series: curves(\.gradNorm))),
        ]
        let evals = curves(\.evalLoss)
        if evals.contains(where: { $0.points.count > 1 }) {
            out.append(("heldout_loss.svg", SVGPlot(title: "Held-out loss", xLabel: "optimizer step",
                                                   yLabel: "loss (nats per supervised token)",
                                                   series: evals.map { var s = $0; s.markers = true; return s })))
        }
        return out
    }

    // MARK: Markdown

    public static func markdown(_ results: ComparisonResults, extraSections: [String] = []) -> String {
        let c = results.config
        var md = "# PiSSA comparison\n\n"
        md += "Model `\(c.model)`, training data `\(c.data)`" + (c.test.map { ", held-out data `\($0)`" } ?? "")
            + (c.accuracyTest.map { ", held-out problems for exact match `\($0)`" } ?? "") + ".\n"
        md += "Methods \(c.methods.map(\.label).joined(separator: ", ")); seeds \(c.seeds.map(String.init).joined(separator: ", ")); "
        md += "rank \(c.rank), alpha \(format(Double(c.effectiveAlpha))), \(c.steps) steps of batch \(c.batchSize)"
        md += c.gradientAccumulation > 1 ? " × \(c.gradientAccumulation) accumulated" : ""
        md += ", AdamW lr \(c.learningRate) cosine with warmup ratio \(c.warmupRatio), weight decay 0, dropout 0, "
        md += "loss on response tokens only; PiSSA-family SVD `\(c.pissaInit.peftName)`. "
        md += "Every number below was measured by this run (`results.json`).\n\n"

        md += "## Training loss\n\n![training loss](loss.svg)\n\n![first 20 steps](loss_first20.svg)\n\n"
        md += "## Gradient norm\n\n![gradient norm](grad_norm.svg)\n\n"
        if results.runs.contains(where: { $0.metrics.filter { $0.evalLoss != nil }.count > 1 }) {
            md += "## Held-out loss\n\n![held-out loss](heldout_loss.svg)\n\n"
        }
        md += "## Results (mean ± std over seeds)\n\n" + resultsTable(results) + "\n"
        let findings = findings(results)
        if !findings.isEmpty {
            md += "## What the runs show\n\n" + findings.map { "- " + sentence($0) }.joined(separator: "\n")
            md += "\n\nA difference is called significant when its p-value, corrected by Holm's method over the "
                + "\(findings.filter { $0.pValue != nil }.count) tests of this report, is below 0.05; otherwise the runs cannot tell it "
                + "from noise, whatever its sign.\n\n"
        }
        md += exactMatchSection(results, findings: findings)
        if !results.initTimings.isEmpty { md += "## Initialisation: exact vs randomized SVD\n\n" + initTable(results) + "\n" }
        if let q = results.quantError {
            md += "## Quantisation error: QLoRA vs QPiSSA (rank \(c.rank))\n\n" + QuantErrorAnalysis.markdown(q) + "\n\n"
            md += "Nuclear norm of W − (nf4(W_res) + s·B·A) (QLoRA: W − nf4(W)), mean over layers; reduction = "
            md += "(1 − QPiSSA / QLoRA)·100 %, as the paper's Tables 4/8.\n\n"
        }
        md += samplesSection(results)
        for section in extraSections { md += section + "\n" }
        md += "## Command and configuration\n\n```\n\(c.commandLine.isEmpty ? "(library call)" : c.commandLine)\n```\n\n"
        if let data = try? Comparison.jsonData(c), let json = String(data: data, encoding: .utf8) {
            md += "```json\n\(json)\n```\n"
        }
        return md
    }

    static func resultsTable(_ results: ComparisonResults) -> String {
        var rows = ["| method | final train loss | held-out loss: start → end | held-out perplexity | exact match [95 % CI] | start (s) | train time (s) | tokens/s |",
                    "|---|---|---|---|---|---|---|---|"]
        for method in results.config.methods {
            let runs = results.runs.filter { $0.method == method }
            guard !runs.isEmpty else { continue }
            rows.append("| \(method.label) | \(meanStd(runs.map(\.finalTrainLoss), digits: 4)) | "
                + "\(meanStd(runs.compactMap(\.initialHeldOutLoss), digits: 4)) → \(meanStd(runs.compactMap(\.heldOutLoss), digits: 4)) | "
                + "\(meanStd(runs.compactMap { $0.heldOutLoss.map(exp) }, digits: 3)) | "
                + pooledAccuracyCell(runs) + " | "
                + "\(meanStd(runs.map(\.setupSeconds), digits: 1)) | \(meanStd(runs.map(\.trainSeconds), digits: 1)) | \(meanStd(runs.map(\.tokensPerSecond), digits: 0)) |")
        }
        let answered = results.runs.compactMap(\.answered).first
        return rows.joined(separator: "\n") + "\n\nFinal train loss: mean of the last tenth of the steps. "
            + "Held-out perplexity: exp of each run's final held-out loss (per supervised token), then mean ± std over seeds. "
            + (answered.map { "Exact match: greedy answers to the first \($0) held-out problems"
                + (results.config.seeds.count > 1 ? ", every seed's answers pooled" : "") + ", with the 95 % Wilson interval. " } ?? "")
            + "Start: loading the model and data and making the start (calibration passes included). "
            + "Train time includes the periodic held-out evaluations; tokens/s is the median step's.\n"
    }

    static func initTable(_ results: ComparisonResults) -> String {
        var rows = ["| init | modules | seconds (lane-seconds) | residual excess median | residual excess max |", "|---|---|---|---|---|"]
        for t in results.initTimings {
            rows.append("| `\(t.mode)` | \(t.modules) | \(format(t.seconds, digits: 3)) | "
                + "\(format(t.medianResidualExcess * 100, digits: 2)) % | \(format(t.maxResidualExcess * 100, digits: 2)) % |")
        }
        return rows.joined(separator: "\n") + "\n\nResidual excess: ‖W − s·B·A‖_F / ‖W − P_r‖_F − 1 against the best rank-r "
            + "approximation P_r (0 for the exact SVD); rank \(results.config.rank), all target modules, weights in memory.\n"
    }

    static func meanStd(_ values: [Double], digits: Int) -> String {
        let v = values.filter(\.isFinite)
        guard !v.isEmpty else { return "—" }
        let s = SeedStatistics.summary(v)
        return v.count > 1 ? "\(format(s.mean, digits: digits)) ± \(format(s.std, digits: digits))" : format(s.mean, digits: digits)
    }

    static func format(_ x: Double, digits: Int = 2) -> String {
        guard x.isFinite else { return "—" }
        let text = String(format: "%.\(digits)f", x)
        // "-0.00" reads as a sign that is not there.
        return text.hasPrefix("-") && text.dropFirst().allSatisfy({ $0 == "0" || $0 == "." }) ? String(text.dropFirst()) : text
    }
}

/// Mean and sample standard deviation across seeds.
public enum SeedStatistics {
    public struct Summary: Sendable, Equatable {
        public var step: Int
        public var mean: Double
        public var std: Double
        public var count: Int
    }

    /// Mean and sample std (n − 1; 0 for one value) of `values`.
    public static func summary(_ values: [Double], step: Int = 0) -> Summary {
        let n = Double(values.count)
        let mean = values.reduce(0, +) / n
        let variance = values.count > 1 ? values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (n - 1) : 0
        return Summary(step: step, mean: mean, std: variance.squareRoot(), count: values.count)
    }

    /// For every step that any run logged a finite `value` at: the statistics over the runs that did.
    public static func perStep(_ runs: [[StepMetrics]], value: (StepMetrics) -> Double?) -> [Summary] {
        var byStep: [Int: [Double]] = [:]
        for metrics in runs {
            for m in metrics { if let v = value(m), v.isFinite { byStep[m.step, default: []].append(v) } }
        }
        return byStep.keys.sorted().map { summary(byStep[$0]!, step: $0) }
    }
}
