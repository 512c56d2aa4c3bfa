import Adapters
import Formats
import Foundation
import LinearAlgebra
import Model
import Tokenizer
import Training

/// "What the runs show": each of the paper's claims that a comparison can check (a method
/// against its baseline on one measure), with the test that says whether the difference is
/// larger than noise. Every tested statement of one report is corrected together (Holm), and a
/// statement is called significant only when its corrected p-value is below 0.05.
///
/// Which test: exact match, McNemar's exact test on the problems both answered (seeds pooled:
/// each seed's runs are independent draws, so their discordant problems add up); held-out loss,
/// a paired t-test over held-out examples of the per-example loss difference (averaged over
/// seeds); training losses, a paired t-test over seeds (a training batch is one draw per seed,
/// so one seed cannot be tested).
public struct CompareFinding: Sendable {
    public var method: CompareMethod
    public var baseline: CompareMethod
    public var measure: String
    /// Mean over seeds of each side ("lower is better" for losses, "higher" for accuracy).
    public var value: Double
    public var baselineValue: Double
    public var higherIsBetter: Bool
    /// How the difference was tested, for the reader ("McNemar's exact test on 200 problems").
    public var test: String
    /// nil: not tested (why is in `test`).
    public var pValue: Double?
    /// Holm's adjusted p-value over the report's tested findings.
    public var adjustedP: Double?
    /// For exact match: both methods' outcomes, for the counts and the detectable difference.
    public var outcomes: PairedOutcomes?

    public var significant: Bool { (adjustedP ?? 1) < Statistics.alpha }
}

extension CompareReport {
    /// The pairs whose comparison is one of the paper's claims: the method first, its baseline second.
    static let claimPairs: [(CompareMethod, CompareMethod)] = [(.pissa, .lora), (.qpissa, .qlora), (.pissa, .full)]

    /// Every finding the results allow, Holm-corrected together.
    static func findings(_ results: ComparisonResults) -> [CompareFinding] {
        var out: [CompareFinding] = []
        for (a, b) in claimPairs {
            let seeds = Set(results.runs.filter { $0.method == a }.map(\.seed))
                .intersection(results.runs.filter { $0.method == b }.map(\.seed)).sorted()
            let pairs = seeds.compactMap { s -> (CompareRun, CompareRun)? in
                guard let x = results.runs.first(where: { $0.method == a && $0.seed == s }),
                      let y = results.runs.first(where: { $0.method == b && $0.seed == s }) else { return nil }
                return (x, y)
            }
            guard !pairs.isEmpty else { continue }
            for step in [5, 20] where step <= results.config.steps {
                out += seedFinding(a, b, "training loss at step \(step)", pairs) { run in run.metrics.first { $0.step == step }?.loss }
            }
            out += seedFinding(a, b, "final training loss", pairs) { $0.finalTrainLoss }
            out += heldOutFinding(a, b, pairs)
            out += exactMatchFinding(a, b, pairs)
        }
        let tested = out.indices.filter { out[$0].pValue != nil }
        for (i, adjusted) in zip(tested, Statistics.holm(tested.map { out[$0].pValue! })) { out[i].adjustedP = adjusted }
        return out
    }

    /// A per-run value compared across seeds: paired t over ≥ 2 seeds.
    private static func seedFinding(_ a: CompareMethod, _ b: CompareMethod, _ measure: String,
                                    _ pairs: [(CompareRun, CompareRun)], _ value: (CompareRun) -> Double?) -> [CompareFinding] {
        let values = pairs.compactMap { x, y -> (Double, Double)? in
            guard let u = value(x), let v = value(y), u.isFinite, v.isFinite else { return nil }
            return (u, v)
        }
        guard !values.isEmpty else { return [] }
        let t = Statistics.pairedT(values.map { $0.0 - $0.1 })
        return [CompareFinding(method: a, baseline: b, measure: measure, value: mean(values.map(\.0)), baselineValue: mean(values.map(\.1)),
                               higherIsBetter: false,
                               test: t == nil ? "one seed: not tested (the spread between seeds is unknown)"
                                   : "paired t-test over \(values.count) seeds",
                               pValue: t?.pValue)]
    }

    /// Held-out loss: paired t over examples when every run recorded its per-example losses, else over seeds.
    private static func heldOutFinding(_ a: CompareMethod, _ b: CompareMethod, _ pairs: [(CompareRun, CompareRun)]) -> [CompareFinding] {
        let perExample = pairs.compactMap { x, y -> ([Double], [Double])? in
            guard let u = x.heldOutExampleLosses, let v = y.heldOutExampleLosses, u.count == v.count, !u.isEmpty else { return nil }
            return (u, v)
        }
        guard perExample.count == pairs.count, let n = perExample.first?.0.count, perExample.allSatisfy({ $0.0.count == n }) else {
            return seedFinding(a, b, "held-out loss", pairs) { $0.heldOutLoss }
        }
        // Each example's loss difference (Σ NLL of its supervised tokens), averaged over seeds.
        let differences = (0..<n).map { i in perExample.reduce(0.0) { $0 + $1.0[i] - $1.1[i] } / Double(perExample.count) }
        let t = Statistics.pairedT(differences)
        let seeds = pairs.count == 1 ? "" : ", each averaged over \(pairs.count) seeds"
        return [CompareFinding(method: a, baseline: b, measure: "held-out loss",
                               value: mean(pairs.compactMap(\.0.heldOutLoss)), baselineValue: mean(pairs.compactMap(\.1.heldOutLoss)),
                               higherIsBetter: false, test: "paired t-test over \(n) held-out examples\(seeds)", pValue: t?.pValue)]
    }

    /// Exact match: McNemar's exact test with the seeds' discordant problems pooled.
    private static func exactMatchFinding(_ a: CompareMethod, _ b: CompareMethod, _ pairs: [(CompareRun, CompareRun)]) -> [CompareFinding] {
        let accuracies = pairs.compactMap { x, y -> (Double, Double)? in
            guard let u = x.accuracy, let v = y.accuracy else { return nil }
            return (u, v)
        }
        guard !accuracies.isEmpty else { return [] }
        let value = mean(accuracies.map(\.0)), baselineValue = mean(accuracies.map(\.1))
        let recorded = pairs.compactMap { x, y in x.answers.flatMap { u in y.answers.map { (u, $0) } } }
        guard recorded.count == pairs.count else {
            return [CompareFinding(method: a, baseline: b, measure: "exact match", value: value, baselineValue: baselineValue,
                                   higherIsBetter: true, test: "not tested: these results do not record the per-problem answers")]
        }
        let outcomes = recorded.map { PairedOutcomes(first: $0.0.correct, second: $0.1.correct) }.reduce(PairedOutcomes(), +)
        let perRun = recorded.first.map { min($0.0.count, $0.1.count) } ?? 0
        let seeds = pairs.count == 1 ? "" : " × \(pairs.count) seeds"
        return [CompareFinding(method: a, baseline: b, measure: "exact match", value: value, baselineValue: baselineValue,
                               higherIsBetter: true, test: "McNemar's exact test on \(perRun) problems\(seeds)",
                               pValue: outcomes.pValue, outcomes: outcomes)]
    }

    private static func mean(_ v: [Double]) -> Double { v.isEmpty ? .nan : v.reduce(0, +) / Double(v.count) }

    /// The finding as one sentence of "What the runs show".
    static func sentence(_ f: CompareFinding) -> String {
        let (a, b) = (f.method.label, f.baseline.label)
        let percent = f.measure == "exact match"
        func show(_ x: Double) -> String { percent ? format(100 * x, digits: 1) + " %" : format(x, digits: 4) }
        let d = f.value - f.baselineValue
        let diff = percent ? String(format: "%+.1f points", 100 * d) : String(format: "%+.4f", d)
        var s = "\(a) vs \(b), \(f.measure): \(show(f.value)) vs \(show(f.baselineValue)) (\(diff)); \(f.test)"
        guard let p = f.pValue, let adjusted = f.adjustedP else { return s + "." }
        if let o = f.outcomes { s += " (\(a) alone right on \(o.onlyFirst), \(b) alone on \(o.onlySecond))" }
        s += ": p = \(formatP(p)), Holm-adjusted \(formatP(adjusted)) — "
        if f.significant {
            let better = (d > 0) == f.higherIsBetter
            s += "**\(a) \(percent ? (d > 0 ? "higher" : "lower") : (d < 0 ? "lower" : "higher")), significant** "
                + "(\(better ? "as the paper claims" : "against the paper's claim"))."
        } else {
            s += "**no significant difference**"
            if let o = f.outcomes {
                if let mdd = o.minimumDetectableDifference {
                    s += "; with these problems a difference would need to be about \(format(100 * mdd, digits: 1)) points "
                        + "to be found 80 % of the time"
                } else {
                    s += "; too few problems answered differently for any difference to be found reliably"
                }
            }
            s += "."
        }
        return s
    }

    /// p-values: three decimals, scientific below 0.001.
    static func formatP(_ p: Double) -> String {
        if p >= 0.001 { return String(format: "%.3f", p) }
        if p < 1e-300 { return "< 1e-300" }
        return String(format: "%.1e", p)
    }
}
