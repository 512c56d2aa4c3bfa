#!/usr/bin/env python3
"""PyTorch + PEFT side of the training-speed benchmark (BENCHMARKS.md).

    python3 scripts/bench/peft_train_bench.py GGUF|HF_DIR --init lora|pissa_niter_4 --data text|MATH.jsonl
        [--batch 4] [--seq 256] [--steps 5] [--threads 2] [--json OUT]

The model from a GGUF (SmolLM2) or a Hugging Face directory (e.g. the Qwen2.5-0.5B-shaped model
of make_qwen25_shape.py), float32, get_peft_model with r = 16, alpha = 16 on all seven projections,
AdamW (lr 2e-5). Each step = forward + backward + optimizer.step on one batch:
- text: batch × seq tokens with ids (i·7919 + 13) mod (V − 3) + 3 (as `pissa bench train`; V the
  vocabulary, 49149 for SmolLM2), loss on every token;
- a math JSONL (from `pissa data math`): the first batch·steps records, prompt tokens masked (labels −100),
  completion + EOS supervised, right-padded to the longest in each batch (as `pissa train` does).
Reports the median step time after one warm-up step, tokens/s (all tokens in the batch, padding
excluded) and the peak RSS of the process.
"""
import argparse
import json
import os
import resource
import statistics
import time

import sys
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine  # noqa: E402  (scripts/bench/machine.py)
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def text_batches(batch, seq, steps, vocab):
    ids = torch.tensor([[((b * seq + i) * 7919 + 13) % (vocab - 3) + 3 for i in range(seq)] for b in range(batch)])
    return [(ids, ids.clone(), torch.ones_like(ids))] * (steps + 1)


def math_batches(path, tok, batch, steps):
    recs = [json.loads(l) for l in open(path) if l.strip()][: batch * (steps + 1)]
    out = []
    for i in range(0, len(recs), batch):
        seqs = []
        for r in recs[i:i + batch]:
            p = tok(r["prompt"], add_special_tokens=False).input_ids
            c = tok(r["completion"], add_special_tokens=False).input_ids + [tok.eos_token_id]
            seqs.append((p + c, [-100] * len(p) + c))
        T = max(len(s) for s, _ in seqs)
        ids = torch.full((len(seqs), T), tok.pad_token_id or tok.eos_token_id)
        labels = torch.full((len(seqs), T), -100)
        mask = torch.zeros((len(seqs), T), dtype=torch.long)
        for j, (s, l) in enumerate(seqs):
            ids[j, :len(s)] = torch.tensor(s)
            labels[j, :len(l)] = torch.tensor(l)
            mask[j, :len(s)] = 1
        out.append((ids, labels, mask))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gguf")
    ap.add_argument("--init", default="lora")
    ap.add_argument("--data", default="text")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if os.path.isdir(args.gguf):
        model = AutoModelForCausalLM.from_pretrained(args.gguf, dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(args.gguf)
    else:
        d, f = os.path.split(args.gguf)
        model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    init = True if args.init == "lora" else args.init
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=16, lora_dropout=0.0, target_modules=TARGETS,
                                             init_lora_weights=init))
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-5, weight_decay=0.0)
    batches = text_batches(args.batch, args.seq, args.steps, model.config.vocab_size) if args.data == "text" else math_batches(args.data, tok, args.batch, args.steps)
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
    tok_s = sum(tokens) / sum(times)
    out = {"init": args.init, "data": args.data, "batch": args.batch, "median_step_s": statistics.median(times),
           "tokens_per_s": tok_s, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "steps": len(times), "threads": args.threads, "torch": torch.__version__}
    out["machine"] = machine.record()
    print(json.dumps(out, indent=1))
    if args.json:
        json.dump(out, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
