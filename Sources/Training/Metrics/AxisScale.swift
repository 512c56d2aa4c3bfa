import Foundation

/// Axis ranges and tick positions that read well: 1, 2, 5 × 10ᵏ steps (Heckbert, "Nice numbers
/// for graph labels", Graphics Gems 1990) on linear axes; decades or 1-2-5 mantissas on log axes.
public struct AxisScale: Sendable, Equatable {
    /// The axis runs from `lower` to `upper` (data units, not logarithms).
    public var lower: Double
    public var upper: Double
    /// Tick positions in [lower, upper], increasing.
    public var ticks: [Double]
    /// Decimals that print every tick exactly (linear axes; log labels choose per tick).
    public var decimals: Int
    public var logarithmic: Bool

    /// A linear axis covering [min, max] with about `targetTicks` ticks (the step is the nice
    /// number nearest to (max − min) / (targetTicks − 1)), its ends on ticks.
    /// A degenerate range is widened (by 1 around 0, else by 10 % of the value each way).
    public static func linear(min lo: Double, max hi: Double, targetTicks: Int = 6) -> AxisScale {
        var lo = lo, hi = hi
        if !(lo.isFinite && hi.isFinite) { lo = 0; hi = 1 }
        if lo > hi { swap(&lo, &hi) }
        if hi - lo <= Swift.max(abs(lo), abs(hi)) * 1e-12 {
            let pad = lo == 0 ? 1 : abs(lo) * 0.1
            lo -= pad
            hi += pad
        }
        let step = niceNumber((hi - lo) / Double(Swift.max(1, targetTicks - 1)), round: true)
        let lower = (lo / step).rounded(.down) * step
        let upper = (hi / step).rounded(.up) * step
        let count = Int(((upper - lower) / step).rounded()) + 1
        let ticks = (0..<count).map { Self.clean(lower + Double($0) * step, step: step) }
        let decimals = Swift.max(0, Int((-log10(step)).rounded(.up)))
        return AxisScale(lower: ticks.first ?? lower, upper: ticks.last ?? upper, ticks: ticks,
                         decimals: decimals, logarithmic: false)
    }

    /// A logarithmic axis covering [min, max] (both > 0). Ticks are decades (every k-th decade
    /// past six), or 1-2-5 × 10ᵏ within about two decades, or 1…9 × 10ᵏ within half a decade;
    /// the axis ends on the nearest ticks outside the data.
    public static func logarithmic(min lo: Double, max hi: Double) -> AxisScale {
        var lo = lo, hi = hi
        if !(lo > 0 && lo.isFinite) { lo = 1 }
        if !(hi > 0 && hi.isFinite) { hi = lo * 10 }
        if lo > hi { swap(&lo, &hi) }
        if hi / lo < 1 + 1e-9 { lo /= 1.5; hi *= 1.5 }
        let span = log10(hi / lo)
        let mantissas: [Double]
        var decadeStride = 1
        if span > 6 {
            mantissas = [1]
            decadeStride = Int((span / 6).rounded(.up))
        } else if span > 2 {
            mantissas = [1]
        } else if span > 0.5 {
            mantissas = [1, 2, 5]
        } else {
            mantissas = [1, 2, 3, 4, 5, 6, 7, 8, 9]
        }
        let firstExponent = Int(log10(lo).rounded(.down)) - 1
        let lastExponent = Int(log10(hi).rounded(.up)) + 1
        var candidates: [Double] = []
        for exponent in (firstExponent - decadeStride)...(lastExponent + decadeStride) {
            guard (exponent % decadeStride + decadeStride) % decadeStride == 0 else { continue }
            for m in mantissas { candidates.append(m * pow(10, Double(exponent))) }
        }
        let tolerance = 1e-12
        let lower = candidates.last { $0 <= lo * (1 + tolerance) } ?? lo
        let upper = candidates.first { $0 >= hi * (1 - tolerance) } ?? hi
        let ticks = candidates.filter { $0 >= lower && $0 <= upper }
        return AxisScale(lower: lower, upper: upper, ticks: ticks, decimals: 0, logarithmic: true)
    }

    /// The tick's label: fixed decimals on linear axes ("0.25", "1500", "20k" for multiples of
    /// 1000 from 10 000), and on log axes plain numbers from 0.0001 to 99 999, else "1e-5".
    public func label(_ value: Double) -> String {
        if logarithmic {
            let exponent = Int(log10(abs(value)).rounded(.down))
            if value >= 1e-4 && value < 1e5 {
                let mantissa = value / pow(10, Double(exponent))
                let extra = abs(mantissa - mantissa.rounded()) > 1e-9 ? 1 : 0
                return Self.fixed(value, decimals: Swift.max(0, -exponent + extra))
            }
            let mantissa = value / pow(10, Double(exponent))
            let m = abs(mantissa - 1) < 1e-9 ? "" : Self.fixed(mantissa, decimals: 0) + "×"
            return m + "1e\(exponent)"
        }
        if abs(value) >= 10_000, decimals == 0, value.truncatingRemainder(dividingBy: 1000) == 0 {
            return Self.fixed(value / 1000, decimals: 0) + "k"
        }
        return Self.fixed(value, decimals: decimals)
    }

    // MARK: Helpers

    /// The 1, 2, 5 (or 10) × 10ᵏ nearest to `x` (geometrically, Heckbert's thresholds) or,
    /// without `round`, the smallest not below it.
    static func niceNumber(_ x: Double, round: Bool) -> Double {
        let exponent = log10(x).rounded(.down)
        let fraction = x / pow(10, exponent)
        let nice: Double
        if round {
            nice = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10
        } else {
            nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10
        }
        return nice * pow(10, exponent)
    }

    /// `value` rounded to the step's precision, so 0.1 + 0.2 prints and compares as 0.3.
    private static func clean(_ value: Double, step: Double) -> Double {
        let scale = pow(10, Swift.max(0, (-log10(step)).rounded(.up)) + 2)
        let cleaned = (value * scale).rounded() / scale
        return cleaned == 0 ? 0 : cleaned  // no -0
    }

    static func fixed(_ value: Double, decimals: Int) -> String {
        let text = String(format: "%.\(Swift.min(decimals, 12))f", value)
        if text.hasPrefix("-"), text.dropFirst().allSatisfy({ $0 == "0" || $0 == "." }) { return String(text.dropFirst()) }
        return text
    }
}
