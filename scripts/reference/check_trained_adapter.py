#!/usr/bin/env python3
"""Checks that an adapter trained by `pissa train` loads in PEFT on the residual model and gives
the same masked loss as `pissa eval`.

    python3 scripts/reference/check_trained_adapter.py RESIDUAL_DIR ADAPTER_DIR DATA.jsonl PISSA_EVAL_JSON [--limit 16]

RESIDUAL_DIR: the residual model written by `pissa init` (the model the adapter was trained on);
ADAPTER_DIR: RUN/adapter, or `none` for a model alone (e.g. RUN/model of --method full); DATA.jsonl: prompt/completion records; PISSA_EVAL_JSON: the output of
`pissa eval --model RESIDUAL_DIR --adapter ADAPTER_DIR --data DATA.jsonl --limit N --json`.
Each record is tokenised as `pissa train` does (prompt and completion separately, EOS appended,
loss on completion + EOS), one sequence at a time; the script sums PEFT's token NLL over the
supervised tokens and compares the mean with pissa's `nll`. Exit 1 above 1e-4 relative.
"""
import argparse
import json
import sys

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("residual")
    ap.add_argument("adapter")
    ap.add_argument("data")
    ap.add_argument("pissa_eval")
    ap.add_argument("--limit", type=int, default=16)
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()
    tok = AutoTokenizer.from_pretrained(args.residual)
    model = AutoModelForCausalLM.from_pretrained(args.residual, dtype=torch.float32).eval()
    if args.adapter != "none":
        model = PeftModel.from_pretrained(model, args.adapter).eval()
    total, count = 0.0, 0
    records = [json.loads(l) for l in open(args.data) if l.strip()][: args.limit]
    with torch.no_grad():
        for r in records:
            # The tokenizer's special tokens around the prompt: BOS where it adds one (Gemma, Llama 3;
            # not SmolLM2), as pissa's encoder does.
            p = tok(r["prompt"], add_special_tokens=True).input_ids
            c = tok(r["completion"], add_special_tokens=False).input_ids + [tok.eos_token_id]
            ids = torch.tensor([p + c])
            logits = model(input_ids=ids).logits[0].double()
            targets = ids[0, 1:]
            nll = torch.nn.functional.cross_entropy(logits[:-1], targets, reduction="none")
            total += nll[len(p) - 1:].sum().item()
            count += len(c)
    peft_nll = total / count
    ours = json.load(open(args.pissa_eval))
    rel = abs(peft_nll - ours["nll"]) / abs(peft_nll)
    print(f"PEFT on {args.residual} + {args.adapter}: mean NLL {peft_nll:.6f} over {count} supervised tokens; "
          f"pissa eval: {ours['nll']:.6f} over {ours['tokens']} tokens; relative difference {rel:.2e}")
    sys.exit(0 if rel <= args.tol and count == ours["tokens"] else 1)


if __name__ == "__main__":
    main()
