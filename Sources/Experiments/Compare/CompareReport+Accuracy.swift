import Adapters
import Formats
import Foundation
import LinearAlgebra
import Model
import Tokenizer
import Training

/// The report's exact-match section: each run's accuracy with its 95 % Wilson interval, the
/// paired counts and McNemar's test of the paper's pairs, what the number of problems can
/// resolve, and a few answers of each method.
extension CompareReport {
    /// Correct answers and problems of a run (from its per-problem answers, else from its
    /// accuracy and count, as older results hold them).
    public static func counts(_ run: CompareRun) -> (right: Int, of: Int)? {
        if let a = run.answers, a.count > 0 { return (a.rightCount, a.count) }
        guard let accuracy = run.accuracy, let n = run.answered, n > 0 else { return nil }
        return (Int((accuracy * Double(n)).rounded()), n)
    }

    /// "14.5 % (29/200) [10.3, 20.1]": the accuracy, its counts and its 95 % Wilson interval.
    public static func accuracyCell(right: Int, of n: Int) -> String {
        let w = Statistics.wilson(successes: right, trials: n)
        return "\(format(100 * Double(right) / Double(n), digits: 1)) % (\(right)/\(n)) "
            + "[\(format(100 * w.lower, digits: 1)), \(format(100 * w.upper, digits: 1))]"
    }

    /// The results table's cell: one run's, or all seeds' answers pooled.
    static func pooledAccuracyCell(_ runs: [CompareRun]) -> String {
        let c = runs.compactMap(counts)
        guard !c.isEmpty else { return "—" }
        return accuracyCell(right: c.reduce(0) { $0 + $1.right }, of: c.reduce(0) { $0 + $1.of })
    }

    static func exactMatchSection(_ results: ComparisonResults, findings: [CompareFinding]) -> String {
        let methods = results.config.methods.filter { m in results.runs.contains { $0.method == m && counts($0) != nil } }
        guard !methods.isEmpty else { return "" }
        let seeds = results.config.seeds.filter { s in results.runs.contains { $0.seed == s && counts($0) != nil } }
        var md = "## Exact match on held-out problems\n\n"
        let n = results.runs.compactMap(counts).map(\.of).max() ?? 0
        md += "Greedy answers to the first \(n) held-out problems, graded on the final number; each cell is the accuracy, "
            + "right/answered, and its 95 % Wilson interval"
            + (seeds.count > 1 ? " (the pooled column counts every seed's answers as one sample: it ignores that the seeds "
                + "answer the same problems, so its interval is a little too narrow)" : "") + ".\n\n"
        md += "| method | " + seeds.map { "seed \($0)" }.joined(separator: " | ") + (seeds.count > 1 ? " | seeds pooled |" : " |") + "\n"
        md += "|---|" + String(repeating: "---|", count: seeds.count + (seeds.count > 1 ? 1 : 0)) + "\n"
        for m in methods {
            let runs = seeds.map { s in results.runs.first { $0.method == m && $0.seed == s } }
            md += "| \(m.label) | " + runs.map { $0.flatMap(counts).map { accuracyCell(right: $0.right, of: $0.of) } ?? "—" }
                .joined(separator: " | ")
            md += seeds.count > 1 ? " | \(pooledAccuracyCell(runs.compactMap { $0 })) |\n" : " |\n"
        }
        let paired = findings.filter { $0.outcomes != nil }
        if !paired.isEmpty {
            md += "\nThe same problems, method against baseline" + (seeds.count > 1 ? " (seeds pooled)" : "")
                + ": both right, only one right, both wrong; "
                + "McNemar's exact test on the problems only one got right; Holm's correction over every test of this report; "
                + "the difference that McNemar's test would find 80 % of the time with these problems and this share of "
                + "discordant answers (\"detectable\").\n\n"
            md += "| comparison | problems | both right | only first | only second | both wrong | difference | p | Holm | detectable |\n"
            md += "|---|---|---|---|---|---|---|---|---|---|\n"
            for f in paired {
                let o = f.outcomes!
                md += "| \(f.method.label) vs \(f.baseline.label) | \(o.problems) | \(o.bothRight) | \(o.onlyFirst) | \(o.onlySecond) | "
                    + "\(o.bothWrong) | \(String(format: "%+.1f", 100 * o.difference)) points | \(formatP(f.pValue!)) | "
                    + "\(formatP(f.adjustedP!)) | " + (o.minimumDetectableDifference.map { "\(format(100 * $0, digits: 1)) points" } ?? "none")
                    + " |\n"
            }
        }
        md += "\n" + resolutionNote(problems: n) + "\n"
        return md
    }

    /// What n problems per run can tell apart, for a few shares of discordant answers.
    static func resolutionNote(problems n: Int) -> String {
        guard n > 0 else { return "" }
        let shares = [0.05, 0.10, 0.20, 0.30]
        let detectable = shares.map { Statistics.minimumDetectableDifference(problems: n, discordance: $0) }
        return "What \(n) problems per run can resolve: the difference in accuracy that McNemar's exact test (level 0.05) "
            + "finds 80 % of the time, by the share of problems that exactly one of the two methods gets right.\n\n"
            + "| answered right by one method only | " + shares.map { "\(Int(100 * $0)) %" }.joined(separator: " | ") + " |\n"
            + "|---|" + String(repeating: "---|", count: shares.count) + "\n"
            + "| detectable difference | " + detectable.map { $0.map { "\(format(100 * $0, digits: 1)) points" } ?? "none" }
                .joined(separator: " | ") + " |\n"
            + (detectable.contains(nil) ? "\nNone: too few problems are answered differently for even a one-sided split of them "
                + "to be found 80 % of the time.\n" : "")
    }

    /// A few answers of each method (its first seed with samples), right and wrong.
    static func samplesSection(_ results: ComparisonResults) -> String {
        var md = ""
        for m in results.config.methods {
            guard let run = results.runs.first(where: { $0.method == m && !($0.samples ?? []).isEmpty }) else { continue }
            md += "### \(m.label), seed \(run.seed)\n\n"
            for s in run.samples! {
                let reference = MathAnswer.extract(from: s.reference) ?? "?"
                let got = MathAnswer.extract(from: s.generated) ?? "no number"
                md += "- problem \(s.index + 1), **\(s.correct ? "right" : "wrong")** (answer \(got), reference \(reference)): "
                    + oneLine(s.prompt) + "\n\n  ```text\n" + s.generated.split(separator: "\n", omittingEmptySubsequences: false)
                        .map { "  " + $0 }.joined(separator: "\n") + "\n  ```\n"
            }
            md += "\n"
        }
        return md.isEmpty ? "" : "## Sample answers\n\nThe first right and wrong answers of each method, as generated.\n\n" + md
    }

    private static func oneLine(_ text: String) -> String {
        text.replacingOccurrences(of: "\n", with: " ").trimmingCharacters(in: .whitespaces)
    }
}
