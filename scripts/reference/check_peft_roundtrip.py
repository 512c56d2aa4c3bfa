#!/usr/bin/env python3
"""Check that a PiSSA (or plain LoRA) start written by our Swift tool reproduces the original model in PEFT.

    python3 scripts/reference/check_peft_roundtrip.py ORIGINAL_DIR OUT_DIR [--adapter DIR]
                                                      [--tol T] [--batch 2] [--seq 16] [--seed 0]

ORIGINAL_DIR: the Hugging Face model the tool started from.
OUT_DIR:      what the tool wrote: the residual model (config + safetensors) and OUT_DIR/pissa_init/ with
              adapter_config.json + adapter_model.safetensors (PEFT layout); OUT_DIR/lora_init/ is used
              when there is no pissa_init/. For a plain LoRA start the weights in OUT_DIR are the
              unchanged originals and lora_B = 0.

Both are loaded with transformers in their stored dtype (dtype="auto"): AutoModelForCausalLM when the
config's architectures name a *ForCausalLM class, AutoModel otherwise (e.g. BERT / MiniLM encoders; force
with --encoder / --causal). The adapter is applied with PeftModel.from_pretrained(residual_model, adapter).
Both run on the same seeded batch of random token ids (attention mask all ones); the script prints the max
absolute difference of the outputs (logits, or last_hidden_state for encoders), and the relative difference
||out - ref||_F / ||ref||_F, and exits 1 if the relative difference exceeds --tol (default 1e-4 when the
original is float32, 2e-2 for bfloat16/float16).

It exits 2 if the adapter_config.json says init_lora_weights = "pissa..." : PEFT would then run the SVD again
on load and subtract the principal part from the (already residual) weights a second time. A PiSSA start
must be saved with init_lora_weights = true (as PEFT itself and the PiSSA reference code do).
"""
import argparse
import json
import os
import sys

import torch
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM


def is_causal(model_dir):
    cfg = AutoConfig.from_pretrained(model_dir)
    return any(a.endswith("ForCausalLM") for a in (cfg.architectures or [])), cfg


def load(model_dir, causal, upcast=False):
    cls = AutoModelForCausalLM if causal else AutoModel
    return cls.from_pretrained(model_dir, dtype=torch.float32 if upcast else "auto").eval()


def run(model, ids, causal):
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids))
    t = out.logits if causal else out.last_hidden_state
    return t.to(torch.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("original_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--adapter", help="adapter directory (default OUT_DIR/pissa_init, else OUT_DIR/lora_init)")
    ap.add_argument("--tol", type=float, help="relative tolerance on rel_fro_diff (default 1e-4 f32, 2e-2 bf16/f16)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--causal", action="store_true", help="force AutoModelForCausalLM")
    g.add_argument("--encoder", action="store_true", help="force AutoModel (last_hidden_state)")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--upcast", action="store_true",
                    help="run both models in float32 (stored bf16 weights upcast exactly); isolates the "
                         "residual's storage rounding from bf16 activation noise. Tolerance still follows "
                         "the stored dtype unless --tol is given")
    args = ap.parse_args()

    from peft import PeftModel

    adapter = args.adapter or os.path.join(args.out_dir, "pissa_init")
    if args.adapter is None and not os.path.isdir(adapter) and os.path.isdir(os.path.join(args.out_dir, "lora_init")):
        adapter = os.path.join(args.out_dir, "lora_init")  # our tool's directory for --init lora|gaussian
    with open(os.path.join(adapter, "adapter_config.json")) as f:
        acfg = json.load(f)
    init = acfg.get("init_lora_weights")
    if isinstance(init, str) and init.lower().startswith("pissa"):
        print(f"FAIL: {adapter}/adapter_config.json has init_lora_weights={init!r}; PEFT would re-run the SVD "
              "on load and subtract the principal part twice. Write init_lora_weights: true.")
        return 2

    causal, cfg = is_causal(args.original_dir)
    if args.causal:
        causal = True
    if args.encoder:
        causal = False

    stored = getattr(cfg, "dtype", None) or getattr(cfg, "torch_dtype", None)
    if isinstance(stored, str):
        stored = getattr(torch, stored, None)
    ref_model = load(args.original_dir, causal, args.upcast)
    dtype = next(ref_model.parameters()).dtype
    if args.upcast and stored is not None:
        dtype = stored
    tol = args.tol if args.tol is not None else (1e-4 if dtype == torch.float32 else 2e-2)

    g = torch.Generator().manual_seed(args.seed)
    ids = torch.randint(3, cfg.vocab_size, (args.batch, args.seq), generator=g)
    ref = run(ref_model, ids, causal)
    del ref_model

    res_model = load(args.out_dir, causal, args.upcast)
    res_dtype = next(res_model.parameters()).dtype
    peft_model = PeftModel.from_pretrained(res_model, adapter).eval()
    out = run(peft_model, ids, causal)

    # how much the residual model alone differs (0 for a plain LoRA start, large for PiSSA)
    with peft_model.disable_adapter():
        base_only = run(peft_model, ids, causal)

    diff = (out - ref).abs()
    max_abs = diff.max().item()
    rel = (torch.linalg.norm(out - ref) / torch.linalg.norm(ref)).item()
    rel_max = max_abs / ref.abs().max().item()
    rel_base = (torch.linalg.norm(base_only - ref) / torch.linalg.norm(ref)).item()
    n_lora = sum(1 for n, _ in peft_model.named_parameters() if "lora_A" in n)
    kind = "logits" if causal else "last_hidden_state"
    print(f"original: {args.original_dir} ({dtype}); residual: {args.out_dir} ({res_dtype}); adapter: {adapter}")
    print(f"adapter: r={acfg.get('r')} lora_alpha={acfg.get('lora_alpha')} use_rslora={acfg.get('use_rslora')} "
          f"init_lora_weights={init!r} lora layers={n_lora}")
    print(f"{kind} {tuple(ref.shape)}: max_abs_diff={max_abs:.3e} rel_fro_diff={rel:.3e} "
          f"max_abs/max|ref|={rel_max:.3e} (residual alone, adapter disabled: rel_fro_diff={rel_base:.3e})")
    if not (rel <= tol):
        print(f"FAIL: relative difference {rel:.3e} > tolerance {tol:.1e}")
        return 1
    print(f"OK: relative difference {rel:.3e} <= tolerance {tol:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
