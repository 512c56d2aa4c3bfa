#!/usr/bin/env python3
"""Medians of scripts/bench/train_nf4.sh's runs: float32 vs NF4 base, as BENCHMARKS.md tables.

    python3 scripts/bench/summarize_nf4.py [.cache/bench/nf4]
"""
import glob
import json
import os
import statistics
import sys

d = sys.argv[1] if len(sys.argv) > 1 else ".cache/bench/nf4"
runs = {}
for path in sorted(glob.glob(os.path.join(d, "*-*-*.json"))):
    data, quant, _ = os.path.basename(path)[:-5].rsplit("-", 2)
    try:
        runs.setdefault((data, quant), []).append(json.load(open(path)))
    except json.JSONDecodeError:   # a run still in progress or killed
        continue

print("| data | base | runs | tok/s (median) | peak RSS MB (median) | projections MB | NF4 / float32 tok/s | NF4 / float32 RSS |")
print("|---|---|---|---|---|---|---|---|")
for data in sorted({k[0] for k in runs}):
    med = {}
    for quant in ("none", "nf4"):
        rs = runs.get((data, quant))
        if not rs:
            continue
        med[quant] = (statistics.median(r["tokensPerSecond"] for r in rs), statistics.median(r["peakRSSMegabytes"] for r in rs))
        label = "text 4 × 256" if data == "text" else "math, batch 4"
        ratio = ""
        if quant == "nf4" and "none" in med:
            ratio = f"{med['nf4'][0] / med['none'][0]:.2f} | {med['nf4'][1] / med['none'][1]:.2f}"
        else:
            ratio = " | "
        tok = ", ".join(f"{r['tokensPerSecond']:.0f}" for r in rs)
        print(f"| {label} | {'float32' if quant == 'none' else 'NF4'} | {len(rs)} ({tok}) | {med[quant][0]:.0f} | {med[quant][1]:.0f} | "
              f"{rs[0].get('projectionMegabytes', 0):.0f} | {ratio} |")

frozen = os.path.join(d, "frozen.json")
if os.path.exists(frozen):
    print("\n| W (out × in) | n | forward float32 ms | forward NF4 ms | NF4 / float32 time | backward float32 ms | backward NF4 ms | NF4 / float32 time | dequantise W ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in json.load(open(frozen)):
        print(f"| {r['shape'][0]} × {r['shape'][1]} | {r['rows']} | {r['denseForwardMs']:.2f} | {r['nf4ForwardMs']:.2f} | "
              f"{r['nf4ForwardMs'] / r['denseForwardMs']:.2f} | {r['denseBackwardMs']:.2f} | {r['nf4BackwardMs']:.2f} | "
              f"{r['nf4BackwardMs'] / r['denseBackwardMs']:.2f} | {r['dequantizeMs']:.2f} |")
