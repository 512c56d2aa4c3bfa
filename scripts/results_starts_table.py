#!/usr/bin/env python3
"""Tables of docs/RESULTS.md §4 ("Which start?") from the comparisons' results.json and the
preprocessing table:

    python3 scripts/results_starts_table.py docs/results/starts-math/results.json [STEPS]
    python3 scripts/results_starts_table.py --prep docs/results/starts-prep/prep.tsv

For a comparison: per method, mean ± sample std over seeds of the training loss at STEPS (default
1,5,10,20) and of the held-out loss at the end, its start time (s), and in how many seeds its final
held-out loss is below LoRA's and below PiSSA's (same seed: the same batches). No test of
significance is claimed here: with 3 seeds, "3 of 3" is the strongest statement the data allow,
and a difference smaller than the spread between seeds is reported as such.
"""
import json
import math
import statistics
import sys


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


def prep(path):
    rows = [line.rstrip("\n").split("\t") for line in open(path)][1:]
    print("| start | pissa init wall time (s) | peak RSS (MB) |")
    print("|---|---|---|")
    for start, seconds, rss in rows:
        print(f"| `{start}` | {float(seconds):.1f} | {int(rss) / 1024:.0f} |")


if __name__ == "__main__":
    if sys.argv[1] == "--prep":
        prep(sys.argv[2])
    else:
        comparison(sys.argv[1], [int(s) for s in (sys.argv[2] if len(sys.argv) > 2 else "1,5,10,20").split(",")])
