#!/usr/bin/env python3
"""Checks a `pissa init --quant nf4` residual model with bitsandbytes and transformers.

    python3 scripts/reference/check_nf4_residual.py NF4_DIR [DEQUANTIZED_DIR]

1. Every NF4 weight of NF4_DIR/*.safetensors (the tensors of transformers' Linear4bit layout) is
   parsed with bitsandbytes' own `QuantState.from_dict` and dequantised with
   `bitsandbytes.functional.dequantize_4bit`; with DEQUANTIZED_DIR (the same init run with
   --dequantized, float32 model) the result must equal its tensor bit for bit.
2. transformers loads NF4_DIR with `AutoModelForCausalLM.from_pretrained` (its config.json carries
   the quantization_config) and runs a forward pass, where bitsandbytes' CPU backend allows it.
"""
import glob
import os
import sys

import torch
import bitsandbytes.functional as F
from safetensors.torch import load_file


def main():
    nf4_dir = sys.argv[1]
    deq_dir = sys.argv[2] if len(sys.argv) > 2 else None
    tensors = {}
    for path in sorted(glob.glob(os.path.join(nf4_dir, "*.safetensors"))):
        tensors.update(load_file(path))
    reference = {}
    if deq_dir:
        for path in sorted(glob.glob(os.path.join(deq_dir, "*.safetensors"))):
            reference.update(load_file(path))
    suffix = ".quant_state.bitsandbytes__nf4"
    names = sorted(k[: -len(suffix)] for k in tensors if k.endswith(suffix))
    worst = 0
    for name in names:
        parts = {k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(name + ".")}
        state = F.QuantState.from_dict(parts, device=torch.device("cpu"))
        w = F.dequantize_4bit(tensors[name], state)
        if deq_dir:
            ref = reference[name].to(torch.float32)
            same = torch.equal(w.to(torch.float32), ref)
            worst = max(worst, (w.float() - ref).abs().max().item())
            if not same:
                print(f"MISMATCH {name}: max |diff| {(w.float() - ref).abs().max().item():.3e}")
    print(f"{len(names)} NF4 weights parsed by bitsandbytes" + (f"; max |bnb dequant - --dequantized| = {worst:.3e}" if deq_dir else ""))
    try:
        from transformers import AutoModelForCausalLM
        model = AutoModelForCausalLM.from_pretrained(nf4_dir, device_map="cpu")
        kinds = {type(m).__name__ for m in model.modules()}
        ids = torch.arange(8).view(1, 8) % model.config.vocab_size
        logits = model(ids).logits
        print(f"transformers loaded it: Linear4bit present: {'Linear4bit' in kinds}; logits {tuple(logits.shape)}, finite: {bool(torch.isfinite(logits).all())}")
    except Exception as e:  # report, do not hide: CPU support varies between versions
        print(f"transformers could not load it: {type(e).__name__}: {e}")


if __name__ == "__main__":
    main()
