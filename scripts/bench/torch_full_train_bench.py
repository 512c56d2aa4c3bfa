#!/usr/bin/env python3
"""PyTorch side of the full fine-tuning benchmark (BENCHMARKS.md): every weight trained.

    python3 scripts/bench/torch_full_train_bench.py GGUF --data text|MATH.jsonl
        [--batch 4] [--seq 256] [--steps 5] [--threads 2] [--json OUT]

SmolLM2 from the GGUF (float32), all parameters trainable (the tied embedding / head once),
AdamW (lr 2e-5, weight decay 0, foreach off as on CPU by default). Each step = forward + backward +
optimizer.step on one batch; the batches are those of peft_train_bench.py (text: loss on every
token; math: prompt masked). Reports the median step time after one warm-up step, tokens/s (padding
excluded) and the peak RSS of the process — as `pissa bench train --method full` does.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peft_train_bench import math_batches, text_batches  # noqa: E402
import machine  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gguf")
    ap.add_argument("--data", default="text")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    d, f = os.path.split(args.gguf)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=2e-5, weight_decay=0.0)
    batches = text_batches(args.batch, args.seq, args.steps) if args.data == "text" else math_batches(args.data, tok, args.batch, args.steps)
    times, tokens = [], []
    for i, (ids, labels, mask) in enumerate(batches):
        t = time.perf_counter()
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        if i > 0:
            times.append(time.perf_counter() - t)
            tokens.append(int(mask.sum()))
    out = {"method": "full", "data": args.data, "batch": args.batch, "parameters": sum(p.numel() for p in params),
           "median_step_s": statistics.median(times), "tokens_per_s": sum(tokens) / sum(times),
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "steps": len(times), "threads": args.threads, "torch": torch.__version__}
    out["machine"] = machine.record()
    print(json.dumps(out, indent=1))
    if args.json:
        json.dump(out, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
