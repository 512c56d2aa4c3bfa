#!/usr/bin/env python3
"""Check a `pissa export --format mlx` directory with mlx-lm itself (pip install "mlx[cpu]" mlx-lm; runs on Linux CPU).

    python3 scripts/reference/check_mlx_adapter.py MODEL_DIR MLX_ADAPTER_DIR PEFT_ADAPTER_DIR [--tol 1e-4]

Loads MODEL_DIR (a Hugging Face directory, float32) with mlx_lm.load(MODEL_DIR, adapter_path=MLX_ADAPTER_DIR),
i.e. through mlx-lm's own load_adapters / linear_to_lora_layers, and compares its logits on seeded random
token ids with MODEL_DIR + the PEFT adapter in PEFT (the adapter the mlx directory was exported from).
Prints ||diff||_F / ||ref||_F (also for mlx-lm without the adapter) and exits 1 above --tol.
"""
import argparse
import sys

import mlx.core as mx
import numpy as np
import torch
from mlx_lm import load
from peft import PeftModel
from transformers import AutoModelForCausalLM


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("mlx_dir")
    ap.add_argument("peft_dir")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=torch.float32).eval()
    ids = torch.randint(0, base.config.vocab_size, (2, 16))
    with torch.no_grad():
        reference = PeftModel.from_pretrained(base, args.peft_dir).eval()(input_ids=ids).logits.float().numpy()
    plain_mlx, _ = load(args.model_dir)
    with_adapter, _ = load(args.model_dir, adapter_path=args.mlx_dir)
    x = mx.array(ids.numpy())
    plain = np.array(plain_mlx(x).astype(mx.float32))
    got = np.array(with_adapter(x).astype(mx.float32))
    rel = lambda a, b: float(np.linalg.norm(a - b) / np.linalg.norm(b))
    print(f"mlx-lm without adapter vs model + adapter (PEFT): rel {rel(plain, reference):.3e}")
    r = rel(got, reference)
    print(f"mlx-lm + exported adapter vs model + adapter (PEFT): rel {r:.3e}  max|d| {np.abs(got - reference).max():.3e}  (tol {args.tol:g})")
    if r > args.tol:
        print("FAIL")
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
