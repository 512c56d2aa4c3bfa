#!/usr/bin/env python3
"""Reference values for the statistics `pissa compare` reports (Sources/Training/Statistics/),
computed with scipy, never by the Swift code's formulas:

    python3 scripts/reference/make_statistics_fixtures.py   (scipy >= 1.11; measured with 1.17.1)

Writes Tests/TrainingTests/Fixtures/statistics/statistics_reference.json:
- wilson: 95 % Wilson score intervals, scipy.stats.binomtest(k, n).proportion_ci(method="wilson").
- mcnemar_exact: two-sided exact McNemar p-value on b and c discordant pairs,
  scipy.stats.binomtest(b, b + c, 0.5).pvalue (1 when b + c = 0).
- paired_t: scipy.stats.ttest_rel(x, y) on seeded samples (statistic, p-value, mean difference).
- holm: Holm-Bonferroni adjusted p-values, from the definition (step-down, running maximum,
  capped at 1), written here independently of the Swift code.
- normal_quantile: scipy.stats.norm.ppf.
- power: the power of the two-sided exact McNemar test at level 0.05 with n problems when a
  problem is answered by the first method only with probability p10 and by the second only with
  p01 (discordance psi = p10 + p01, difference d = p10 - p01), by enumeration over the binomial
  number of discordant pairs m and their split k (scipy.stats.binom); the minimum detectable
  difference, the d at which that power is 0.8 for a given n and psi (scipy.optimize.brentq); and,
  for the docs' sample-size reasoning, Connor's (1987) normal approximation of the n that gives
  80 % power, n = (z_{1-a/2} sqrt(psi) + z_{0.8} sqrt(psi - d^2))^2 / d^2 (not used by the Swift
  code: the exact power at that n is printed, about 0.76-0.78).
"""
import json
import math
import os

import numpy as np
from scipy import optimize, stats

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "TrainingTests", "Fixtures", "statistics", "statistics_reference.json")
ALPHA, POWER = 0.05, 0.8


def wilson(k, n):
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return {"successes": k, "trials": n, "lower": float(ci.low), "upper": float(ci.high)}


def mcnemar_exact(b, c):
    p = 1.0 if b + c == 0 else float(stats.binomtest(b, b + c, 0.5).pvalue)
    return {"b": b, "c": c, "p": p}


def paired_t(seed, n, shift):
    rng = np.random.default_rng(seed)
    x = rng.normal(1.0, 0.5, n)
    y = x - shift + rng.normal(0.0, 0.3, n)
    r = stats.ttest_rel(x, y)
    return {"differences": (x - y).tolist(), "statistic": float(r.statistic), "p": float(r.pvalue),
            "mean": float(np.mean(x - y))}


def holm(p):
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return {"p": p, "adjusted": adjusted}


def connor_n(psi, d):
    za, zb = stats.norm.ppf(1 - ALPHA / 2), stats.norm.ppf(POWER)
    return (za * math.sqrt(psi) + zb * math.sqrt(psi - d * d)) ** 2 / (d * d)


def exact_power(n, p10, p01):
    """Power of the two-sided exact McNemar test at level ALPHA with n pairs."""
    psi = p10 + p01
    share = p10 / psi
    total = 0.0
    for m in range(0, n + 1):
        pm = stats.binom.pmf(m, n, psi)
        if pm < 1e-15 or m == 0:
            continue
        ks = np.arange(m + 1)
        # The exact test's p-value for each split k of the m discordant pairs.
        pv = np.minimum(1.0, 2 * stats.binom.cdf(np.minimum(ks, m - ks), m, 0.5))
        total += pm * stats.binom.pmf(ks, m, share)[pv <= ALPHA].sum()
    return float(total)


def power_case(n, psi, d):
    p10, p01 = (psi + d) / 2, (psi - d) / 2
    # None: even d = psi (every discordant pair favours the first method) has less than 80 % power.
    mdd = optimize.brentq(lambda x: exact_power(n, (psi + x) / 2, (psi - x) / 2) - POWER, 1e-6, psi, xtol=1e-12) \
        if exact_power(n, psi, 0) >= POWER else None
    return {"n": n, "discordance": psi, "difference": d, "exact_power": exact_power(n, p10, p01), "mdd": mdd}


def sample_size_table():
    """The docs' sample-size reasoning: Connor's n and the exact power there; the exact MDD at 200 and 500."""
    for psi in [0.05, 0.10, 0.15, 0.20, 0.30]:
        for d in [0.03, 0.05, 0.10]:
            if d >= psi:
                continue
            n = math.ceil(connor_n(psi, d))
            print(f"discordance {psi:.2f}, difference {d:.2f}: Connor n {n}, exact power there "
                  f"{exact_power(n, (psi + d) / 2, (psi - d) / 2):.3f}")
        mdds = [optimize.brentq(lambda x: exact_power(n, (psi + x) / 2, (psi - x) / 2) - POWER, 1e-6, psi, xtol=1e-9)
                if exact_power(n, psi, 0) >= POWER else float("nan") for n in (200, 500, 1500)]
        print(f"discordance {psi:.2f}: 80 % power from a difference of {mdds[0] * 100:.1f} points at n 200, "
              f"{mdds[1] * 100:.1f} at n 500, {mdds[2] * 100:.1f} at n 1500")


def main():
    fixture = {
        "alpha": ALPHA, "power": POWER,
        "wilson": [wilson(k, n) for k, n in [(0, 1), (0, 20), (1, 20), (4, 20), (20, 20), (37, 200),
                                             (100, 200), (250, 500), (3, 1000), (999, 1000)]],
        "mcnemar_exact": [mcnemar_exact(b, c) for b, c in [(0, 0), (0, 1), (1, 1), (3, 10), (7, 8), (12, 0),
                                                           (24, 0), (9, 15), (40, 61), (150, 200)]],
        "paired_t": [paired_t(1, 3, 0.2), paired_t(2, 60, 0.05), paired_t(3, 200, 0.0), paired_t(4, 12, 1.0)],
        "holm": [holm([0.01, 0.04, 0.03, 0.2]), holm([0.5]), holm([0.001, 0.0001, 0.9, 0.02, 0.02])],
        "normal_quantile": [{"p": p, "x": float(stats.norm.ppf(p))}
                            for p in [0.975, 0.8, 0.5, 0.6, 0.999, 0.025, 1e-8, 0.02425, 0.97575]],
        "power": [power_case(n, psi, d) for n, psi, d in [(200, 0.10, 0.05), (500, 0.20, 0.10), (1500, 0.15, 0.05),
                                                           (200, 0.30, 0.10), (200, 0.06, 0.04), (20, 0.10, 0.05)]],
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")
    sample_size_table()
    print("wrote", OUT)


if __name__ == "__main__":
    main()
