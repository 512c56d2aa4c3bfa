#!/usr/bin/env python3
"""Prints a BENCHMARKS.md table from the JSON that rounds.py leaves in a results folder.

    python3 scripts/bench/summarize.py train|forward|decode|init|calib DIR

Every table starts with the CPU (the runs' machine records and DIR/doctor.json: BLAS build and
kernels, pissa's kernel level), the dates and the load averages around the runs, and gives each
side's per-round figures beside their medians. Ratios are of the medians (pissa / peer for rates,
peer / pissa for times), and the per-round ratios of the runs made side by side are listed too.
"""
import glob
import json
import os
import statistics
import sys


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")


def runs(d):
    """{side: [record, …] by round}."""
    out = {}
    for f in glob.glob(os.path.join(d, "*_*.json")):
        r = json.load(open(f))
        if isinstance(r, dict) and "side" in r:
            out.setdefault(r["side"], []).append(r)
    for v in out.values():
        v.sort(key=lambda r: r["round"])
    return out


def header(d, sides):
    recs = [r for v in sides.values() for r in v]
    if not recs:
        sys.exit(f"no runs in {d}")
    m = recs[0]["machine"]
    text = f"CPU: {m['cpuModel']} ({m['cpuID']}, {m['logicalCores']} logical cores; {' '.join(m['cpuFeatures'])})"
    doc = os.path.join(d, "doctor.json")
    if os.path.exists(doc):
        doc = json.load(open(doc))
        text += (f". BLAS: {doc['blasBuild']}, kernels {doc['blasKernel']}"
                 + (f" (OPENBLAS_CORETYPE={doc['blasCoreTypeOverride']})" if doc.get("blasCoreTypeOverride") else "")
                 + f"; pissa kernels {doc['kernelLevel']}")
    if "torch" in m:
        text += f". torch {m['torch']} ({m.get('torchCPUCapability')}, {m.get('torchThreads')} threads by default)"
    starts = sorted(r["startUTC"] for r in recs)
    loads = [x for r in recs for x in (r["loadBefore"], r["loadAfter"])]
    rounds = max(r["round"] for r in recs)
    text += (f".\n{rounds} rounds, {starts[0].replace('T', ' ')[:16]}–{starts[-1][11:16]} UTC; "
             f"1-minute load average around the runs {min(loads):.1f}–{max(loads):.1f} (median {med(loads):.1f}).")
    print(text + "\n")


def fmt(xs, digits=0):
    return "/".join(f"{x:.{digits}f}" for x in xs)


def ratios(a, b):
    """Per-round a/b for the rounds both sides ran."""
    bb = {r: x for r, x in b}
    return [x / bb[r] for r, x in a if r in bb and bb[r]]


def train(d):
    sides = runs(d)
    header(d, sides)
    cases = sorted({s.split("-", 1)[1] for s in sides if s.startswith("peft-")})
    print("| case | PyTorch + PEFT tok/s (rounds) | pissa tok/s (rounds) | PEFT median | pissa median | speed-up (per round) "
          "| pissa GFLOP/s (sgemm in the same run) | PEFT peak RSS | pissa peak RSS | RSS ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for c in cases:
        p, s = sides.get("peft-" + c, []), sides.get("pissa-" + c, [])
        pt = [(r["round"], r["result"]["tokens_per_s"]) for r in p if r["result"]]
        st = [(r["round"], r["result"]["tokensPerSecond"]) for r in s if r["result"]]
        prss = med([r["result"]["peak_rss_mb"] for r in p if r["result"]])
        srss = med([r["result"]["peakRSSMegabytes"] for r in s if r["result"]])
        gf = med([r["result"].get("gflopPerSecond") for r in s if r["result"]])
        sg = med([r["result"].get("sgemmGFLOPPerSecond") for r in s if r["result"]])
        pm, sm = med([x for _, x in pt]), med([x for _, x in st])
        print(f"| {c} | {fmt([x for _, x in pt])} | {fmt([x for _, x in st])} | {pm:.0f} | {sm:.0f} | "
              f"**{sm / pm:.2f}×** ({fmt(ratios(st, pt), 2)}) | {gf:.0f} ({sg:.0f}) | {prss:.0f} MB | {srss:.0f} MB | {srss / prss:.2f} |")


def forward(d):
    sides = runs(d)
    header(d, sides)
    get = {
        "transformers": lambda r: (r["prefill_tok_s"], r["decode_tok_s"]),
        "pissa-float32": lambda r: (r["prefillTokensPerSecond"], r["decodeTokensPerSecond"]),
        "pissa-blocks": lambda r: (r["prefillTokensPerSecond"], r["decodeTokensPerSecond"]),
        "llamacpp": lambda r: (next(x["avg_ts"] for x in r if x["n_gen"] == 0), next(x["avg_ts"] for x in r if x["n_prompt"] == 0)),
    }
    vals = {s: [(r["round"], get[s](r["result"])) for r in sides.get(s, []) if r["result"]] for s in get}
    present = [s for s in get if vals[s]]
    print("| tokens/s | " + " | ".join(f"{s} (rounds)" for s in present) + " | pissa float32 / transformers | "
          "pissa blocks / transformers | pissa blocks / llama.cpp |")
    print("|---|" + "---|" * (len(present) + 3))
    for i, what in enumerate(["prefill 1 × 512 (all logits)", "greedy decode 128"]):
        m = {s: med([v[i] for _, v in vals[s]]) for s in present}
        cells = [f"**{m[s]:.1f}** ({fmt([v[i] for _, v in vals[s]], 1)})" for s in present]

        def ratio(a, b):
            if a not in m or b not in m:
                return "—"
            per = ratios([(r, v[i]) for r, v in vals[a]], [(r, v[i]) for r, v in vals[b]])
            return f"**{m[a] / m[b]:.2f}×** ({fmt(per, 2)})"
        print(f"| {what} | " + " | ".join(cells) + f" | {ratio('pissa-float32', 'transformers')} | "
              f"{ratio('pissa-blocks', 'transformers')} | {ratio('pissa-blocks', 'llamacpp')} |")


def decode(d):
    sides = runs(d)
    header(d, sides)
    print("| threads | pissa blocks tok/s (rounds) | llama.cpp tok/s (rounds) | pissa median | llama.cpp median | pissa / llama.cpp (per round) |")
    print("|---|---|---|---|---|---|")
    for t in sorted({s.rsplit("-t", 1)[1] for s in sides}, key=int):
        o = [(r["round"], r["result"]["decodeTokensPerSecond"]) for r in sides.get(f"pissa-blocks-t{t}", []) if r["result"]]
        ll = [(r["round"], r["result"][0]["avg_ts"]) for r in sides.get(f"llamacpp-t{t}", []) if r["result"]]
        om, lm = med([x for _, x in o]), med([x for _, x in ll])
        print(f"| {t} | {fmt([x for _, x in o], 1)} | {fmt([x for _, x in ll], 1)} | {om:.1f} | {lm:.1f} | "
              f"**{om / lm:.2f}×** ({fmt(ratios(o, ll), 2)}) |")


def init(d):
    sides = runs(d)
    header(d, sides)
    peft = sides.get("peft", [])
    lora = {r["round"]: r["wallSeconds"] for r in sides.get("pissa-lora", [])}
    own = lambda r: (r.get("result") or {}).get("totalSeconds")
    print("| mode | PEFT get_peft_model s (rounds) | PEFT − PEFT lora s | `pissa init` wall s (rounds) | its own clock s "
          "(totalSeconds) | `pissa init` − `--init lora` s (rounds) | speed-up vs get_peft_model (per round) | speed-up vs PEFT − lora |")
    print("|---|---|---|---|---|---|---|---|")
    if lora:
        print(f"| lora | {fmt([r['result']['modes']['lora']['decompose_median_s'] for r in peft], 2)} | — | "
              f"{fmt(list(lora.values()), 2)} | {fmt([own(r) for r in sides['pissa-lora'] if own(r) is not None], 2)} | — | — | — |")
    for mode in ("pissa", "pissa_niter_4"):
        ours = [(r["round"], r["wallSeconds"] - lora[r["round"]]) for r in sides.get(f"pissa-{mode}", []) if r["round"] in lora]
        whole = [r["wallSeconds"] for r in sides.get(f"pissa-{mode}", [])]
        clock = [own(r) for r in sides.get(f"pissa-{mode}", []) if own(r) is not None]
        pt = [(r["round"], r["result"]["modes"][mode]["decompose_median_s"]) for r in peft]
        pl = [(r["round"], r["result"]["modes"][mode]["decompose_median_s"] - r["result"]["modes"]["lora"]["decompose_median_s"])
              for r in peft if "lora" in r["result"]["modes"]]
        om, pm, plm = med([x for _, x in ours]), med([x for _, x in pt]), med([x for _, x in pl])
        print(f"| {mode} | {fmt([x for _, x in pt], 2)} | {plm:.2f} | {fmt(whole, 2)} | {fmt(clock, 2)} | **{om:.2f}** "
              f"({fmt([x for _, x in ours], 2)}) | **{pm / om:.2f}×** ({fmt(ratios(pt, ours), 2)}) | {plm / om:.2f}× |")
    for r in peft[:1]:
        for mode, v in r["result"]["modes"].items():
            rel = v.get("rel_fro_vs_exact")
            if rel:
                print(f"\nPEFT {mode}: rank-r product vs exact, median {rel['median']:.2e}")


def calib(d):
    sides = runs(d)
    header(d, sides)
    print("| method | PEFT s (rounds) | pissa s (rounds) | pissa calibration + decomposition/writing s (medians) | PEFT median | pissa median | speed-up (per round) |")
    print("|---|---|---|---|---|---|---|")
    for m in sorted({s.split("-", 1)[1] for s in sides}):
        p = [(r["round"], r["result"]["median"]) for r in sides.get(f"peft-{m}", []) if r["result"]]
        s = [(r["round"], r["result"]["calibrationSeconds"] + r["result"]["totalSeconds"]) for r in sides.get(f"pissa-{m}", []) if r["result"]]
        cal = med([r["result"]["calibrationSeconds"] for r in sides.get(f"pissa-{m}", []) if r["result"]])
        tot = med([r["result"]["totalSeconds"] for r in sides.get(f"pissa-{m}", []) if r["result"]])
        pm, sm = med([x for _, x in p]), med([x for _, x in s])
        print(f"| {m} | {fmt([x for _, x in p], 1)} | {fmt([x for _, x in s], 1)} | {cal:.1f} + {tot:.1f} | {pm:.1f} | {sm:.1f} | "
              f"**{pm / sm:.2f}×** ({fmt(ratios(p, s), 2)}) |")


if __name__ == "__main__":
    kinds = {"train": train, "forward": forward, "decode": decode, "init": init, "calib": calib}
    if len(sys.argv) != 3 or sys.argv[1] not in kinds:
        sys.exit(__doc__)
    kinds[sys.argv[1]](sys.argv[2])
