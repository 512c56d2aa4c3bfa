#!/usr/bin/env python3
"""Two Hugging Face model directories compute the same logits in transformers.

    python3 scripts/reference/check_same_model.py A_DIR B_DIR [--tol 1e-5] [--seq 24] [--batch 2]

Both are loaded in float32 with AutoModelForCausalLM and run on the same seeded random token ids;
prints ||A − B||_F / ||B||_F of the logits and exits 1 above --tol. Used on a `pissa convert-model`
output against the model the GGUF was written from (check_family_commands.sh).
"""
import argparse
import sys

import torch
from transformers import AutoModelForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--tol", type=float, default=1e-5)
    ap.add_argument("--seq", type=int, default=24)
    ap.add_argument("--batch", type=int, default=2)
    args = ap.parse_args()
    torch.manual_seed(0)
    a = AutoModelForCausalLM.from_pretrained(args.a, dtype=torch.float32).eval()
    b = AutoModelForCausalLM.from_pretrained(args.b, dtype=torch.float32).eval()
    ids = torch.randint(0, b.config.vocab_size, (args.batch, args.seq))
    with torch.no_grad():
        la, lb = a(input_ids=ids).logits, b(input_ids=ids).logits
    rel = ((la - lb).norm() / lb.norm()).item()
    print(f"{args.a} vs {args.b}: logits relative difference {rel:.3e} (tol {args.tol:g})")
    sys.exit(0 if rel <= args.tol else 1)


if __name__ == "__main__":
    main()
