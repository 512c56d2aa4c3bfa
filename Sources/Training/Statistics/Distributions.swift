import Foundation

/// The few distribution functions the comparison statistics need, in Double. Checked against
/// scipy in `StatisticsTests` (fixture made by scripts/reference/make_statistics_fixtures.py).
enum Distributions {
    /// The standard normal quantile Φ⁻¹(p), 0 < p < 1: Acklam's rational approximation (relative
    /// error ≈ 1e-9), then one Halley step on erfc, which brings it to ≈ 1e-15.
    static func normalQuantile(_ p: Double) -> Double {
        precondition(p > 0 && p < 1, "normal quantile of \(p)")
        let a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00]
        let b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                 6.680131188771972e+01, -1.328068155288572e+01]
        let c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                 -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00]
        let d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
        let low = 0.02425
        var x: Double
        if p < low || p > 1 - low {
            let q = (-2 * log(p < low ? p : 1 - p)).squareRoot()
            x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
            if p > 1 - low { x = -x }
        } else {
            let q = p - 0.5, r = q * q
            x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
                / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
        }
        let e = 0.5 * erfc(-x / 2.0.squareRoot()) - p
        let u = e * (2 * Double.pi).squareRoot() * exp(x * x / 2)
        return x - u / (1 + x * u / 2)
    }

    /// log C(n, k).
    static func logChoose(_ n: Int, _ k: Int) -> Double {
        lgamma(Double(n + 1)) - lgamma(Double(k + 1)) - lgamma(Double(n - k + 1))
    }

    /// P(X = k) for X ~ Binomial(n, p).
    static func binomialPMF(_ k: Int, _ n: Int, _ p: Double) -> Double {
        guard k >= 0 && k <= n else { return 0 }
        if p == 0 { return k == 0 ? 1 : 0 }
        if p == 1 { return k == n ? 1 : 0 }
        return exp(logChoose(n, k) + Double(k) * log(p) + Double(n - k) * log1p(-p))
    }

    /// P(X ≤ k) for X ~ Binomial(n, p), summed term by term (exact to rounding for the n of an
    /// evaluation, up to a few thousand).
    static func binomialCDF(_ k: Int, _ n: Int, _ p: Double) -> Double {
        guard k >= 0 else { return 0 }
        guard k < n else { return 1 }
        var sum = 0.0
        for i in 0...k { sum += binomialPMF(i, n, p) }
        return min(1, sum)
    }

    /// Two-sided p-value of Student's t with `df` degrees of freedom: P(|T| ≥ |t|) = I_{df/(df+t²)}(df/2, 1/2).
    static func studentTwoSided(_ t: Double, df: Double) -> Double {
        guard t.isFinite else { return t.isNaN ? .nan : 0 }
        return regularizedIncompleteBeta(df / 2, 0.5, df / (df + t * t))
    }

    /// I_x(a, b), the regularised incomplete beta function: the continued fraction of Numerical
    /// Recipes (§6.4, modified Lentz), on whichever of x and 1 − x converges faster.
    static func regularizedIncompleteBeta(_ a: Double, _ b: Double, _ x: Double) -> Double {
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        let front = exp(lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x))
        if x < (a + 1) / (a + b + 2) { return front * betaContinuedFraction(a, b, x) / a }
        return 1 - front * betaContinuedFraction(b, a, 1 - x) / b
    }

    private static func betaContinuedFraction(_ a: Double, _ b: Double, _ x: Double) -> Double {
        let tiny = 1e-300, epsilon = 1e-16
        var c = 1.0, d = 1 - (a + b) * x / (a + 1)
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var h = d
        for m in 1...1000 {
            let m = Double(m), m2 = 2 * m
            var aa = m * (b - m) * x / ((a + m2 - 1) * (a + m2))
            d = 1 + aa * d; if abs(d) < tiny { d = tiny }
            c = 1 + aa / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            h *= d * c
            aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))
            d = 1 + aa * d; if abs(d) < tiny { d = tiny }
            c = 1 + aa / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            h *= delta
            if abs(delta - 1) < epsilon { break }
        }
        return h
    }
}
