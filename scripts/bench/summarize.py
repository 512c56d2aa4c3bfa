#!/usr/bin/env python3
"""Prints the BENCHMARKS.md tables from the JSON that the bench scripts leave in .cache/bench/.

    python3 scripts/bench/summarize.py [.cache/bench]
"""
import json
import os
import sys

d = sys.argv[1] if len(sys.argv) > 1 else ".cache/bench"


def load(name):
    p = os.path.join(d, name + ".json")
    return json.load(open(p)) if os.path.exists(p) else None


def init_table(model, peft, ours):
    if not (peft and ours):
        return
    print(f"\n#### {model}: {ours['modules']} modules, r = {ours['rank']}\n")
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

t, o = load("transformers_forward"), load("pissa_forward")
if t and o:
    print("\n#### Forward and generation, SmolLM2-135M float32, 2 threads\n")
    print("| | transformers | pissa | ratio |")
    print("|---|---|---|---|")
    print(f"| load GGUF (to first token) | {t['load_s']:.2f} s | {o['loadSeconds']:.2f} s | {t['load_s'] / o['loadSeconds']:.1f}× |")
    print(f"| prefill 1 × {o['prefillTokens']} (all logits) | {t['prefill_tok_s']:.0f} tok/s | {o['prefillTokensPerSecond']:.0f} tok/s | {o['prefillTokensPerSecond'] / t['prefill_tok_s']:.2f}× |")
    print(f"| greedy decode {o['decodeTokens']} tokens | {t['decode_tok_s']:.1f} tok/s | {o['decodeTokensPerSecond']:.1f} tok/s | {o['decodeTokensPerSecond'] / t['decode_tok_s']:.2f}× |")

rows = []
for init in ["lora", "pissa_niter_4"]:
    for data, label in [("text", "text 4 × 256, loss on every token"), ("train", "math, batch 4, prompt masked")]:
        p, s = load(f"peft_train_{init}-{data}"), load(f"pissa_train_{init}-{data}")
        if p and s:
            rows.append((init, label, p, s))
if rows:
    print("\n#### Training step (forward + backward + AdamW), SmolLM2-135M float32, r = 16 on all 7 projections, 2 threads\n")
    print("| adapter | data | PyTorch + PEFT tok/s | pissa tok/s | speed-up | pissa GFLOP/s (sgemm in the same run) | PEFT peak RSS | pissa peak RSS | RSS ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for init, label, p, s in rows:
        rate = (f"{s['gflopPerSecond']:.0f} ({s['sgemmGFLOPPerSecond']:.0f}, {100 * s['gflopPerSecond'] / s['sgemmGFLOPPerSecond']:.0f} %)"
                if "gflopPerSecond" in s else "—")
        print(f"| {init} | {label} | {p['tokens_per_s']:.0f} | {s['tokensPerSecond']:.0f} | {s['tokensPerSecond'] / p['tokens_per_s']:.2f}× | "
              f"{rate} | {p['peak_rss_mb']:.0f} MB | {s['peakRSSMegabytes']:.0f} MB | {s['peakRSSMegabytes'] / p['peak_rss_mb']:.2f} |")
