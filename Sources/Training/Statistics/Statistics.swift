import Foundation

/// The statistics a comparison's report states, so that a difference is called a finding only
/// when the data can tell it from noise:
///
/// - an accuracy is k correct of n and carries a 95 % **Wilson score interval**;
/// - two methods answered the **same** problems, so their accuracies are compared by **McNemar's
///   exact test** on the problems only one of them got right (b and c): under "no difference" each
///   such problem is a fair coin, p = min(1, 2·P(Binomial(b + c, ½) ≤ min(b, c))). The exact form
///   is used at every count: it is never anticonservative, and above ~25 discordant pairs it agrees
///   with the chi-squared form to the second digit;
/// - paired measurements that are not counts (per-problem held-out loss, per-seed training loss)
///   take a **paired t-test** on their differences;
/// - the several tests of one report are corrected together by **Holm's** step-down method;
/// - a comparison that finds no significant difference also says how large a difference it could
///   have found: the **minimum detectable difference**, the accuracy difference at which McNemar's
///   exact test at level 0.05 has 80 % power with this many problems and the observed share of
///   discordant problems (exact power, by enumeration).
///
/// Checked against scipy in `StatisticsTests` (scripts/reference/make_statistics_fixtures.py).
public enum Statistics {
    /// The level of every test, and 1 − the coverage of every interval.
    public static let alpha = 0.05
    /// The power at which `minimumDetectableDifference` is stated.
    public static let power = 0.8

    public struct Interval: Codable, Sendable, Equatable {
        public var lower: Double
        public var upper: Double
    }

    /// The Wilson score interval for k successes in n trials (n > 0):
    /// (p̂ + z²/2n ± z·√(p̂(1 − p̂)/n + z²/4n²)) / (1 + z²/n), z the normal quantile at 1 − α/2.
    public static func wilson(successes k: Int, trials n: Int, confidence: Double = 1 - alpha) -> Interval {
        precondition(n > 0 && k >= 0 && k <= n, "Wilson interval of \(k) in \(n)")
        let z = Distributions.normalQuantile(1 - (1 - confidence) / 2), nn = Double(n), p = Double(k) / nn
        let denominator = 1 + z * z / nn
        let center = (p + z * z / (2 * nn)) / denominator
        let half = z * (p * (1 - p) / nn + z * z / (4 * nn * nn)).squareRoot() / denominator
        // At k = 0 (k = n) the bound is exactly 0 (1); rounding would leave ≈ 1e-17.
        return Interval(lower: k == 0 ? 0 : max(0, center - half), upper: k == n ? 1 : min(1, center + half))
    }

    /// Two-sided p-value of McNemar's exact test: b problems only the first method got right,
    /// c only the second. 1 when there is no discordant problem.
    public static func mcNemar(onlyFirst b: Int, onlySecond c: Int) -> Double {
        precondition(b >= 0 && c >= 0, "negative counts")
        guard b + c > 0 else { return 1 }
        return min(1, 2 * Distributions.binomialCDF(min(b, c), b + c, 0.5))
    }

    public struct TTest: Sendable, Equatable {
        /// Mean of the differences.
        public var mean: Double
        public var statistic: Double
        public var degreesOfFreedom: Int
        public var pValue: Double
    }

    /// Paired t-test of "mean difference 0" on the differences (first − second) of n ≥ 2 pairs;
    /// nil for fewer. Differences that are all equal give p 0 (1 when they are all 0).
    public static func pairedT(_ differences: [Double]) -> TTest? {
        let n = differences.count
        guard n >= 2 else { return nil }
        let mean = differences.reduce(0, +) / Double(n)
        let variance = differences.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n - 1)
        let se = (variance / Double(n)).squareRoot()
        guard se > 0 else {
            return TTest(mean: mean, statistic: mean == 0 ? 0 : (mean > 0 ? .infinity : -.infinity),
                         degreesOfFreedom: n - 1, pValue: mean == 0 ? 1 : 0)
        }
        let t = mean / se
        return TTest(mean: mean, statistic: t, degreesOfFreedom: n - 1,
                     pValue: Distributions.studentTwoSided(t, df: Double(n - 1)))
    }

    /// Holm's adjusted p-values (each compared with α controls the family-wise error of all of
    /// them): sorted ascending, the i-th (from 0) is multiplied by m − i, then made non-decreasing
    /// and capped at 1. Returned in the input's order.
    public static func holm(_ pValues: [Double]) -> [Double] {
        let m = pValues.count
        var adjusted = [Double](repeating: 0, count: m), running = 0.0
        for (rank, i) in pValues.indices.sorted(by: { pValues[$0] < pValues[$1] }).enumerated() {
            running = max(running, min(1, Double(m - rank) * pValues[i]))
            adjusted[i] = running
        }
        return adjusted
    }

    /// Power of McNemar's exact two-sided test at `alpha` on n problems, when each problem is
    /// answered right by the first method only with probability p10 and by the second only with
    /// p01: Σ over the number m of discordant problems (Binomial(n, p10 + p01)) of the chance
    /// that their split (Binomial(m, p10 / (p10 + p01))) lands in the test's rejection region.
    public static func mcNemarPower(problems n: Int, onlyFirst p10: Double, onlySecond p01: Double,
                                    alpha: Double = alpha) -> Double {
        McNemarPower(problems: n, discordance: p10 + p01, alpha: alpha).power(difference: p10 - p01)
    }

    /// The smallest difference in accuracy d (first − second) that McNemar's exact test detects
    /// with probability `power` on n problems when a share `discordance` of them is answered right
    /// by exactly one method (bisection: the power grows with d); nil when even d = discordance
    /// (every discordant problem going one way) does not reach that power.
    public static func minimumDetectableDifference(problems n: Int, discordance psi: Double,
                                                   power: Double = power, alpha: Double = alpha) -> Double? {
        guard n > 0, psi > 0, psi <= 1 else { return nil }
        let table = McNemarPower(problems: n, discordance: psi, alpha: alpha)
        guard table.power(difference: psi) >= power else { return nil }
        var (low, high) = (0.0, psi)
        for _ in 0..<50 {
            let mid = (low + high) / 2
            if table.power(difference: mid) >= power { high = mid } else { low = mid }
        }
        return high
    }
}

/// The parts of the exact test's power that do not depend on the difference: for each likely
/// number m of discordant problems, its probability and the test's critical count (reject when
/// the smaller side has at most that many).
private struct McNemarPower {
    let discordance: Double
    /// (m, P(M = m), critical count), for the m with P(M = m) ≥ 1e-15 and some rejection region.
    var terms: [(m: Int, probability: Double, critical: Int)] = []

    init(problems n: Int, discordance psi: Double, alpha: Double) {
        discordance = psi
        guard n > 0, psi > 0 else { return }
        for m in 1...n {
            let pm = Distributions.binomialPMF(m, n, psi)
            guard pm >= 1e-15 else { continue }
            var k = -1, tail = 0.0   // the largest k with 2·P(Binomial(m, ½) ≤ k) ≤ alpha
            while k + 1 < m {
                let next = tail + Distributions.binomialPMF(k + 1, m, 0.5)
                guard 2 * next <= alpha else { break }
                tail = next; k += 1
            }
            if k >= 0 { terms.append((m, pm, k)) }
        }
    }

    /// With p10 − p01 = d: P(K ≤ k) + P(K ≥ m − k) for K ~ Binomial(m, s), s = p10 / discordance,
    /// through I_x(m − k, k + 1) (P(K ≤ k) = I_{1−s}, P(K ≥ m − k) = I_s).
    func power(difference d: Double) -> Double {
        let s = min(1, max(0, (discordance + d) / (2 * discordance)))
        var total = 0.0
        for t in terms {
            let (a, b) = (Double(t.m - t.critical), Double(t.critical + 1))
            total += t.probability * (Distributions.regularizedIncompleteBeta(a, b, 1 - s)
                                      + Distributions.regularizedIncompleteBeta(a, b, s))
        }
        return min(1, total)
    }
}

/// Two methods' right/wrong answers to the same problems, as McNemar's test reads them.
public struct PairedOutcomes: Sendable, Equatable {
    public var bothRight = 0, onlyFirst = 0, onlySecond = 0, bothWrong = 0

    public init() {}

    /// The outcomes of problems answered by both (the shorter list's length).
    public init(first: [Bool], second: [Bool]) {
        for (a, b) in zip(first, second) { add(a, b) }
    }

    public mutating func add(_ first: Bool, _ second: Bool) {
        switch (first, second) {
        case (true, true): bothRight += 1
        case (true, false): onlyFirst += 1
        case (false, true): onlySecond += 1
        case (false, false): bothWrong += 1
        }
    }

    public static func + (a: PairedOutcomes, b: PairedOutcomes) -> PairedOutcomes {
        var s = a
        s.bothRight += b.bothRight; s.onlyFirst += b.onlyFirst; s.onlySecond += b.onlySecond; s.bothWrong += b.bothWrong
        return s
    }

    public var problems: Int { bothRight + onlyFirst + onlySecond + bothWrong }
    /// (first right − second right) / problems.
    public var difference: Double { problems == 0 ? .nan : Double(onlyFirst - onlySecond) / Double(problems) }
    public var discordance: Double { problems == 0 ? .nan : Double(onlyFirst + onlySecond) / Double(problems) }
    public var pValue: Double { Statistics.mcNemar(onlyFirst: onlyFirst, onlySecond: onlySecond) }
    /// At the observed discordance; nil when nothing would be detectable.
    public var minimumDetectableDifference: Double? {
        Statistics.minimumDetectableDifference(problems: problems, discordance: discordance)
    }
}
