#!/usr/bin/env python3
"""transformers' side of the forward/generation benchmark (BENCHMARKS.md).

    python3 scripts/bench/transformers_forward_bench.py GGUF [--tokens 512] [--new 128] [--repeats 3] [--threads 2] [--json OUT]

Loads the model from the GGUF (SmolLM2, Gemma 3, …) with transformers (dequantised to float32; load time reported), then:
- prefill: model(input_ids) on 1 × --tokens tokens (all logits, as transformers computes them),
  median of --repeats, tokens/s;
- decode: model.generate(greedy, --new new tokens, min_new_tokens=--new) after a 5-token prompt;
  decode tokens/s = new tokens / (generate time − one 5-token prefill).
The token ids are (i·7919 + 13) mod (V − 3) + 3 with V the vocabulary (49149 for SmolLM2), as in
`pissa bench forward`, so both sides see the same input.
"""
import argparse
import json
import os
import statistics
import time

import sys
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine  # noqa: E402  (scripts/bench/machine.py)
from transformers import AutoModelForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gguf")
    ap.add_argument("--tokens", type=int, default=512)
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    d, f = os.path.split(args.gguf)
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32).eval()
    load = time.perf_counter() - t0
    vocab = model.config.get_text_config().vocab_size - 3
    ids = torch.tensor([[(i * 7919 + 13) % vocab + 3 for i in range(args.tokens)]])
    prompt = ids[:, :5]
    with torch.inference_mode():
        model(ids[:, :16])  # warm up
        prefill = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            model(ids)
            prefill.append(time.perf_counter() - t)
        short = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            model(prompt)
            short.append(time.perf_counter() - t)
        decode = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            model.generate(prompt, max_new_tokens=args.new, min_new_tokens=args.new, do_sample=False)
            decode.append(time.perf_counter() - t - statistics.median(short))
    out = {"load_s": load, "prefill_tokens": args.tokens, "prefill_s": statistics.median(prefill),
           "prefill_tok_s": args.tokens / statistics.median(prefill), "decode_tokens": args.new,
           "decode_s": statistics.median(decode), "decode_tok_s": args.new / statistics.median(decode),
           "threads": args.threads, "torch": torch.__version__}
    out["machine"] = machine.record()
    print(json.dumps(out, indent=1))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
