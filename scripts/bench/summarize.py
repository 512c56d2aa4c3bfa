#!/usr/bin/env python3
"""Prints the BENCHMARKS.md tables from the JSON that the bench scripts leave in .cache/bench/.

    python3 scripts/bench/summarize.py [.cache/bench] [forward]

Each table names the CPU it was measured on (the JSON's machine record): BENCHMARKS.md keeps a
table per CPU.
"""
import glob
import json
import os
import statistics
import sys

d = sys.argv[1] if len(sys.argv) > 1 else ".cache/bench"
only = sys.argv[2] if len(sys.argv) > 2 else None


def cpu_line(records):
    """'AMD EPYC (AuthenticAMD family 25 model 17), BLAS SkylakeX, kernels avx512; load 0.3–1.2' from machine records."""
    ms = [r.get("machine") for r in records if r.get("machine")]
    if not ms:
        return "CPU not recorded"
    m = ms[0]
    text = f"{m.get('cpuModel')} ({m.get('cpuID')})"
    ours = next((x for x in ms if "blasKernel" in x), None)
    if ours:
        text += f", BLAS {ours['blasKernel']}, pissa kernels {ours['kernelLevel']}"
    loads = [x["loadAverage"] for x in ms if "loadAverage" in x]
    if loads:
        text += f"; load average {min(loads):.1f}–{max(loads):.1f} during the peer's runs"
    return text


def forward_rounds():
    files = glob.glob(os.path.join(d, "forward", "*.json"))
    if not files:
        return
    runs = {}
    for f in files:
        side = os.path.basename(f).rsplit("_", 1)[0]
        runs.setdefault(side, []).append(json.load(open(f)))
    med = lambda xs: statistics.median(xs) if xs else float("nan")
    t = runs.get("transformers", [])
    sides = {"transformers": (med([x["prefill_tok_s"] for x in t]), med([x["decode_tok_s"] for x in t]))}
    for w in ("float32", "blocks"):
        o = runs.get(f"pissa_{w}", [])
        sides[f"pissa {w}"] = (med([x["prefillTokensPerSecond"] for x in o]), med([x["decodeTokensPerSecond"] for x in o]))
    ll = runs.get("llamacpp", [])
    sides["llama.cpp"] = (med([r["avg_ts"] for x in ll for r in x["runs"] if r["n_gen"] == 0]),
                          med([r["avg_ts"] for x in ll for r in x["runs"] if r["n_prompt"] == 0]))
    rounds = max(len(v) for v in runs.values())
    print(f"\n#### Forward and generation, SmolLM2-135M, 2 threads: medians of {rounds} alternating rounds\n")
    print(f"CPU: {cpu_line([x for v in runs.values() for x in v])}\n")
    print("| tokens/s | " + " | ".join(sides) + " | pissa blocks / transformers | pissa blocks / llama.cpp |")
    print("|---|" + "---|" * (len(sides) + 2))
    for i, what in enumerate(["prefill 1 × 512 (all logits)", "greedy decode 128"]):
        tr, ll_ = sides["transformers"][i], sides["llama.cpp"][i]
        ours = sides["pissa blocks"][i]
        print(f"| {what} | " + " | ".join(f"{v[i]:.1f}" for v in sides.values()) + f" | {ours / tr:.2f}× | {ours / ll_:.2f}× |")
    print(f"\npissa float32 / transformers: prefill {sides['pissa float32'][0] / sides['transformers'][0]:.2f}×, "
          f"decode {sides['pissa float32'][1] / sides['transformers'][1]:.2f}×")


if only == "forward":
    forward_rounds()
    sys.exit(0)


def load(name):
    p = os.path.join(d, name + ".json")
    return json.load(open(p)) if os.path.exists(p) else None


def init_table(model, peft, ours):
    if not (peft and ours):
        return
    print(f"\n#### {model}: {ours['modules']} modules, r = {ours['rank']}\n")
    print(f"CPU: {cpu_line([peft, ours])}\n")
    print("| mode | PEFT s | pissa s | speed-up | rank-r product vs exact (median) | residual excess (median / max) |")
    print("|---|---|---|---|---|---|")
    for r in ours["results"]:
        p = peft["modes"].get(r["mode"])
        ps = p["decompose_median_s"] if p else None
        mode = r["mode"] + (f" (oversample {r['oversample']})" if r["mode"] != "pissa" else "")
        exc = r.get("medianResidualExcess")
        exc_s = "—" if exc is None else f"{100 * exc:.2f} % / {100 * r['maxResidualExcess']:.2f} %"
        prod = r.get("medianRankProductError")
        print(f"| {mode} | {ps:.3f} | {r['medianSeconds']:.3f} | {ps / r['medianSeconds']:.2f}× | "
              f"{prod:.2e} | {exc_s} |" if ps else f"| {mode} | — | {r['medianSeconds']:.3f} | — | {prod:.2e} | {exc_s} |")
    for m, p in peft["modes"].items():
        rel = p.get("rel_fro_vs_exact", {})
        if rel:
            excess = sorted(r.get("excess_median", float("nan")) for r in rel.get("per_repeat", [{}]))
            print(f"\nPEFT {m}: rank-r product vs exact median {rel['median']:.2e}, residual excess median "
                  f"{100 * excess[len(excess) // 2]:.2f} %")
    load_p = min(v["load_median_s"] for v in peft["modes"].values())
    print(f"\nLoading (not included above): PEFT {load_p:.3f} s, pissa {ours['loadSeconds']:.3f} s.")


init_table("SmolLM2-135M (float32 HF directory from `pissa convert-model`)", load("peft_init_smollm2"), load("pissa_init_smollm2"))
init_table("all-MiniLM-L6-v2 (float32)", load("peft_init_minilm"), load("pissa_init_minilm"))

cmd, peft = load("pissa_init_command_smollm2"), load("peft_init_smollm2")
if cmd and peft:
    print("\n#### `pissa init` end to end minus the same command with `--init lora`, SmolLM2-135M, r = 16 (medians of 3)\n")
    print(f"CPU: {cpu_line([cmd, peft])}\n")
    print("| mode | PEFT get_peft_model s | pissa init − init lora s | speed-up |")
    print("|---|---|---|---|")
    for m, ours in cmd["minusLora"].items():
        p = peft["modes"][m]["decompose_median_s"]
        print(f"| {m} | {p:.3f} | {ours:.3f} | {p / ours:.2f}× |")

forward_rounds()

rows = []
for init in ["lora", "pissa_niter_4"]:
    for data, label in [("text", "text 4 × 256, loss on every token"), ("train", "math, batch 4, prompt masked")]:
        p, s = load(f"peft_train_{init}-{data}"), load(f"pissa_train_{init}-{data}")
        if p and s:
            rows.append((init, label, p, s))
if rows:
    print("\n#### Training step (forward + backward + AdamW), SmolLM2-135M float32, r = 16 on all 7 projections, 2 threads\n")
    print(f"CPU: {cpu_line([x for r in rows for x in r[2:]])}\n")
    print("| adapter | data | PyTorch + PEFT tok/s | pissa tok/s | speed-up | pissa GFLOP/s (sgemm in the same run) | PEFT peak RSS | pissa peak RSS | RSS ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for init, label, p, s in rows:
        rate = (f"{s['gflopPerSecond']:.0f} ({s['sgemmGFLOPPerSecond']:.0f}, {100 * s['gflopPerSecond'] / s['sgemmGFLOPPerSecond']:.0f} %)"
                if "gflopPerSecond" in s else "—")
        print(f"| {init} | {label} | {p['tokens_per_s']:.0f} | {s['tokensPerSecond']:.0f} | {s['tokensPerSecond'] / p['tokens_per_s']:.2f}× | "
              f"{rate} | {p['peak_rss_mb']:.0f} MB | {s['peakRSSMegabytes']:.0f} MB | {s['peakRSSMegabytes'] / p['peak_rss_mb']:.2f} |")
