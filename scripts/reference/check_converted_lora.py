#!/usr/bin/env python3
"""Check `pissa convert` in PEFT: the original model + the converted LoRA must compute what the
residual model + the trained PiSSA adapter computes.

    python3 scripts/reference/check_converted_lora.py ORIGINAL_DIR RUN [--converted DIR] [--tol 1e-4]

ORIGINAL_DIR: the Hugging Face model before decomposition (for a GGUF run: `pissa convert-model GGUF ORIGINAL_DIR`).
RUN:          a `pissa train` run directory with pissa_init/ (the initial adapter) and adapter/ (trained);
              --converted defaults to RUN/lora_converted (what `pissa train --convert` writes).

The residual model is built here from the original and pissa_init exactly as PiSSA defines it,
W_res = W - s * B0 @ A0 in float32 (s = lora_alpha / r, or / sqrt(r) with rsLoRA), so no residual
directory is needed. Both sides go through PEFT's own loading (PeftModel.from_pretrained), on the same
seeded random token ids; the script prints max |diff| and ||diff||_F / ||ref||_F of the logits, also
against the original model without adapter (to show that the adapter changes the output), and exits 1
if the relative difference exceeds --tol.
"""
import argparse
import json
import math
import os
import sys

import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM


def logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.float()


def rel(a, b):
    return ((a - b).norm() / b.norm()).item(), (a - b).abs().max().item()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("original_dir")
    ap.add_argument("run")
    ap.add_argument("--converted")
    ap.add_argument("--residual", help="the residual model `pissa init` wrote (RUN was trained on it from "
                    "RESIDUAL/pissa_init); default: built here from ORIGINAL_DIR and RUN/pissa_init")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--seq", type=int, default=24)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    initial = os.path.join(args.residual, "pissa_init") if args.residual else os.path.join(args.run, "pissa_init")
    trained = os.path.join(args.run, "adapter")
    converted = args.converted or os.path.join(args.run, "lora_converted")

    cfg = json.load(open(os.path.join(initial, "adapter_config.json")))
    conv_cfg = json.load(open(os.path.join(converted, "adapter_config.json")))
    print(f"initial r={cfg['r']} alpha={cfg['lora_alpha']} rslora={cfg.get('use_rslora', False)}; "
          f"converted r={conv_cfg['r']} alpha={conv_cfg['lora_alpha']} init_lora_weights={conv_cfg['init_lora_weights']}")

    torch.manual_seed(args.seed)
    original = AutoModelForCausalLM.from_pretrained(args.original_dir, dtype=torch.float32).eval()
    ids = torch.randint(0, original.config.vocab_size, (args.batch, args.seq))
    base_logits = logits(original, ids)

    # Residual: W_res = W - s * B0 @ A0 for every module of the initial adapter.
    residual = AutoModelForCausalLM.from_pretrained(args.residual or args.original_dir, dtype=torch.float32).eval()
    init_tensors = {} if args.residual else load_file(os.path.join(initial, "adapter_model.safetensors"))
    params = dict(residual.named_parameters())
    n = 0
    for name, a0 in init_tensors.items():
        if not name.endswith(".lora_A.weight"):
            continue
        stem = name[: -len(".lora_A.weight")]
        b0 = init_tensors[stem + ".lora_B.weight"].float()
        r = a0.shape[0]
        s = cfg["lora_alpha"] / (math.sqrt(r) if cfg.get("use_rslora") else r)
        w = params[stem.removeprefix("base_model.model.") + ".weight"]
        with torch.no_grad():
            w -= s * (b0 @ a0.float())
        n += 1
    print(f"residual read from {args.residual}" if args.residual else f"residual built from {n} modules")

    reference = logits(PeftModel.from_pretrained(residual, trained).eval(), ids)
    candidate = logits(PeftModel.from_pretrained(original, converted).eval(), ids)
    r_adapter, m_adapter = rel(base_logits, reference)
    r_conv, m_conv = rel(candidate, reference)
    print(f"original (no adapter) vs residual + trained adapter: rel {r_adapter:.3e}  max|d| {m_adapter:.3e}")
    print(f"original + converted LoRA vs residual + trained adapter: rel {r_conv:.3e}  max|d| {m_conv:.3e}  (tol {args.tol:g})")
    if r_conv > args.tol:
        print("FAIL")
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
