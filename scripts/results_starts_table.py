#!/usr/bin/env python3
"""Tables of docs/RESULTS.md §4 ("Which start?") from the comparisons' results.json and the
preprocessing table:

    python3 scripts/results_starts_table.py docs/results/starts-math/results.json [STEPS]
    python3 scripts/results_starts_table.py --prep docs/results/starts-prep/prep.tsv
    python3 scripts/results_starts_table.py --factors runs/results/starts-math-s0

--factors reads each run's saved start (RUN_DIR/runs/METHOD-seedS/*_init/adapter_model.safetensors)
and prints the sizes of its factors: one Adam step moves every entry of A and B by about the
learning rate, so the same rate changes W = W_res + s·B·A further for a start whose factors are
large or unbalanced.

For a comparison, two tables:
1. per method, mean ± sample std over seeds of the training loss at STEPS (default 1,5,10,20) and
   of the held-out loss at the start and the end, its start time (s), and in how many seeds its
   final held-out loss is below LoRA's and below PiSSA's (same seed: the same batches);
2. per method, its final held-out loss minus LoRA's and minus PiSSA's, in nats per supervised
   token, with a 95 % t-interval and a paired t-test over the held-out examples (each example's
   Σ NLL difference averaged over the seeds, as `pissa compare`'s findings test PiSSA vs LoRA),
   Holm-corrected over every test of the table. An interval over examples holds the examples'
   spread, not the seeds': with 3 seeds, "3 of 3 seeds" (table 1) is the other half of the story,
   and a difference is called significant only when the Holm-adjusted p is below 0.05.
"""
import glob
import json
import math
import os
import statistics
import struct
import sys

import numpy as np

from scipy import stats


def mean_std(values, digits=4):
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def loss_at(run, step):
    for m in run["metrics"]:
        if m["step"] == step:
            return m.get("loss")
    return None


def comparison(path, steps):
    results = json.load(open(path))
    runs = results["runs"]
    methods = results["config"]["methods"]
    by = {(r["method"], r["seed"]): r for r in runs}
    seeds = sorted({r["seed"] for r in runs})
    header = "| method | " + " | ".join(f"loss step {s}" for s in steps) + " | held-out start → end | start (s) | below LoRA | below PiSSA |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for method in methods:
        rs = [by[(method, s)] for s in seeds if (method, s) in by]
        if not rs:
            continue
        cells = [mean_std([loss_at(r, s) for r in rs]) for s in steps]
        held = f"{mean_std([r.get('initialHeldOutLoss') for r in rs])} → {mean_std([r.get('heldOutLoss') for r in rs])}"
        start = mean_std([r["setupSeconds"] for r in rs], digits=0)
        wins = []
        for base in ["lora", "pissa"]:
            if base == method:
                wins.append("—")
                continue
            pairs = [(by[(method, s)]["heldOutLoss"], by[(base, s)]["heldOutLoss"]) for s in seeds
                     if (method, s) in by and (base, s) in by]
            wins.append(f"{sum(a < b for a, b in pairs)} of {len(pairs)}" if pairs else "—")
        print(f"| {method} | " + " | ".join(cells) + f" | {held} | {start} | {wins[0]} | {wins[1]} |")


def holm(ps):
    order = sorted(range(len(ps)), key=lambda i: ps[i])
    adjusted, running = [0.0] * len(ps), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(ps) - rank) * ps[i]))
        adjusted[i] = running
    return adjusted


def paired(path):
    """Held-out loss of each method minus LoRA's and PiSSA's, over the held-out examples."""
    results = json.load(open(path))
    runs, methods = results["runs"], results["config"]["methods"]
    by = {(r["method"], r["seed"]): r for r in runs}
    seeds = sorted({r["seed"] for r in runs})
    tests = []   # (method, base, per-token difference, half-width of its 95 % interval, p, seeds)
    for method in methods:
        for base in ["lora", "pissa"]:
            both = [s for s in seeds if (method, s) in by and (base, s) in by
                    and by[(method, s)].get("heldOutExampleLosses") and by[(base, s)].get("heldOutExampleLosses")]
            if method == base or (method, base) == ("lora", "pissa") or not both:
                continue
            n = len(by[(method, both[0])]["heldOutExampleLosses"])
            # Supervised tokens of the held-out set: Σ NLL over the examples / the per-token loss.
            tokens = sum(by[(base, both[0])]["heldOutExampleLosses"]) / by[(base, both[0])]["heldOutLoss"]
            d = [statistics.mean(by[(method, s)]["heldOutExampleLosses"][i] - by[(base, s)]["heldOutExampleLosses"][i] for s in both)
                 for i in range(n)]
            t = stats.ttest_1samp(d, 0.0)
            half = stats.t.ppf(0.975, n - 1) * statistics.stdev(d) / math.sqrt(n)
            scale = n / tokens   # mean Σ NLL difference per example → difference of the per-token loss
            tests.append((method, base, statistics.mean(d) * scale, half * scale, float(t.pvalue), len(both), n))
    adjusted = holm([t[4] for t in tests])
    label = {"lora": "LoRA", "pissa": "PiSSA"}
    print("| method | vs | held-out loss difference [95 % CI] | p | Holm-adjusted p | |")
    print("|---|---|---|---|---|---|")
    for (method, base, diff, half, p, k, n), q in zip(tests, adjusted):
        verdict = ("**lower**" if diff < 0 else "**higher**") if q < 0.05 else "no significant difference"
        print(f"| {method} | {label[base]} | {diff:+.4f} [{diff - half:+.4f}, {diff + half:+.4f}] | {p:.2g} | {q:.2g} | {verdict} |")
    print(f"\n{len(tests)} tests, each a paired t-test over {n} held-out examples ({'each averaged over ' + str(k) + ' seeds' if k > 1 else 'one seed'}), Holm-corrected together.")


def safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", (path, name, info["dtype"])
        begin, end = info["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + begin:8 + n + end], dtype=np.float32).reshape(info["shape"])
    return out


def factors(run_dir):
    print("| start | ‖A‖_F, median over modules | ‖B‖_F, median | largest row of A | largest column of B |")
    print("|---|---|---|---|---|")
    for d in sorted(glob.glob(os.path.join(run_dir, "runs", "*-seed*", "*_init"))):
        t = safetensors(os.path.join(d, "adapter_model.safetensors"))
        names = sorted(k for k in t if ".lora_A." in k)
        a = [t[k] for k in names]
        b = [t[k.replace(".lora_A.", ".lora_B.")] for k in names]
        worst_row = max(range(len(a)), key=lambda i: np.linalg.norm(a[i], axis=1).max())
        module = names[worst_row].split(".lora_A.")[0].removeprefix("base_model.model.")
        print(f"| {os.path.basename(os.path.dirname(d))} | {np.median([np.linalg.norm(x) for x in a]):.3g} | "
              f"{np.median([np.linalg.norm(x) for x in b]):.3g} | {np.linalg.norm(a[worst_row], axis=1).max():.3g} (`{module}`) | "
              f"{max(np.linalg.norm(x, axis=0).max() for x in b):.3g} |")


def prep(path):
    rows = [line.rstrip("\n").split("\t") for line in open(path)][1:]
    print("| start | pissa init wall time (s) | peak RSS (MB) |")
    print("|---|---|---|")
    for start, seconds, rss in rows:
        print(f"| `{start}` | {float(seconds):.1f} | {int(rss) / 1024:.0f} |")


if __name__ == "__main__":
    if sys.argv[1] == "--prep":
        prep(sys.argv[2])
    elif sys.argv[1] == "--factors":
        factors(sys.argv[2])
    else:
        comparison(sys.argv[1], [int(s) for s in (sys.argv[2] if len(sys.argv) > 2 else "1,5,10,20").split(",")])
        print()
        paired(sys.argv[1])
